"""The sidecar files of one run folder, written from the finished (or stopped) session."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from tracetool._capture.session import POLL_INTERVAL_S, Session


def write_json(path: Path, obj: Any) -> None:
    """Indented JSON with a final newline."""
    path.write_text(json.dumps(obj, indent=1) + "\n")


def write_run_files(s: Session, outcome: str) -> None:
    """Thread sidecars, query-migrate files, QMP events, version, run.json and cmdline.txt."""
    out = s.opts.out
    sc = s.opts.scenario
    if s.sampler is not None:
        for role in s.sides:
            write_json(out / f"{role}-threads.json", s.sampler.sidecar(role))
    write_json(
        out / "query-migrate.json",
        {
            "status": outcome,
            "expected": sc.expected(),
            "scenario": sc.name,
            "source": s.final.get("source", {}),
            "destination": s.final.get("destination", {}),
        },
    )
    with (out / "query-migrate-history.jsonl").open("w") as f:
        for rec in s.journal.history:
            f.write(json.dumps(rec) + "\n")
    with (out / "qmp-events.jsonl").open("w") as f:
        for ev in s.journal.events:
            f.write(json.dumps(ev) + "\n")
    qv = s.run_info.get("query_version")
    (out / "qemu-version.txt").write_text(
        s.opts.version_text + "\n" + (f"QMP query-version: {json.dumps(qv)}\n" if qv else "")
    )
    o = s.opts
    s.run_info.update(
        {
            "label": o.label,
            "run": o.index,
            "qemu": o.qemu,
            "qemu_version": o.version_text,
            "outcome": outcome,
            "params": {
                "accel": o.accel,
                "mem_mb": o.mem_mb,
                "per_thread": o.per_thread,
                "warmup_s": o.warmup_s,
                "timeout_s": o.timeout_s,
                "scenario": sc.to_json(),
            },
            "t_end": time.time(),
        }
    )
    if "t_migrate" in s.run_info and "t_src_final" in s.run_info:
        s.run_info["migration_wall_s"] = round(s.run_info["t_src_final"] - s.run_info["t_migrate"], 3)
    s.run_info["capture_wall_s"] = round(time.monotonic() - s.start_mono, 3)
    write_json(out / "run.json", s.run_info)
    write_cmdline(s)


def write_cmdline(s: Session) -> None:
    """``cmdline.txt``: the command lines and the QMP conversation."""
    o = s.opts
    lines = [
        f"# migtrace capture, scenario {o.scenario.name}, build {o.label}, run {o.index}",
        "# capture: " + shlex.join([sys.executable, *sys.argv]),
    ]
    guest = s.run_info.get("guest", {})
    if guest:
        lines.append(
            f"# guest: {o.out / 'guest.bin'}, a multiboot kernel that writes one dword per "
            f"4 KiB page of [{guest['dirty_start']}, {guest['dirty_end']}) in an endless loop"
        )
    names = {
        "dst": "destination QEMU",
        "src": "source QEMU (started right after the destination)",
    }
    for role, side in s.sides.items():
        lines += ["", f"# {names[role]}", shlex.join(side.cmd)]
    lines += [
        "",
        "# QMP commands in order (t = wall clock, side, command as sent without "
        'its "id"); polled commands are summarised after the list',
    ]
    lines += [f"{t:.6f} {side} {text}" for t, side, text in s.journal.commands]
    if s.journal.polls:
        lines.append("")
    for rec in s.journal.polls.values():
        where = " (answers in query-migrate-history.jsonl)" if rec.command == "query-migrate" else ""
        lines.append(
            f"# polled: {rec.side} {json.dumps({'execute': rec.command})} x{rec.count}, "
            f"every ~{POLL_INTERVAL_S:g} s from {rec.first:.6f} to {rec.last:.6f}{where}"
        )
    (o.out / "cmdline.txt").write_text("\n".join(lines) + "\n")
