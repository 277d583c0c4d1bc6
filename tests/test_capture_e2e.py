"""End to end: capture a real QEMU migration, then check ``migtrace summary`` against it.

``scripts/capture.py`` runs a source and a destination QEMU on loopback (TCG) and writes a
scenario folder; ``migtrace summary`` must then agree with a plain line-by-line count of the
destination trace.  Needs ``qemu-system-x86_64``: without it the tests are skipped, unless
``MIGTRACE_REQUIRE_QEMU=1`` is set, in which case they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
CAPTURE = REPO / "scripts" / "capture.py"
QEMU = "qemu-system-x86_64"
SCENARIOS = ["precopy", "precopy-mutex"]
CAPTURE_TIMEOUT_S = 25  # per scenario, inside capture.py; both together stay well under 60 s

# QEMU 7.2 log backend with -msg timestamp=on: "TID@SEC.USEC:name args"
EVENT_LINE = re.compile(r"^(\d+)@(\d+)\.(\d{6}):(\w+)(?: |$)")


def _require_qemu() -> None:
    if shutil.which(QEMU) is not None:
        return
    reason = (
        f"{QEMU} not found on PATH (Debian/Ubuntu: apt-get install -y "
        "--no-install-recommends qemu-system-x86)"
    )
    if os.environ.get("MIGTRACE_REQUIRE_QEMU") == "1":
        pytest.fail(f"MIGTRACE_REQUIRE_QEMU=1 but {reason}")
    pytest.skip(reason)


@dataclass
class PlainCount:
    """What a plain reading of a log-backend trace file finds."""

    lines: int = 0
    events: int = 0
    other_lines: int = 0
    by_tid: Counter[int] = field(default_factory=Counter)
    by_name: Counter[str] = field(default_factory=Counter)
    first_us: dict[int, int] = field(default_factory=dict)
    last_us: dict[int, int] = field(default_factory=dict)


def plain_count(path: Path) -> PlainCount:
    """Count lines, events per TID and per event name, without migtrace."""
    c = PlainCount()
    with path.open(encoding="utf-8", errors="replace", newline="\n") as f:
        for line in f:
            c.lines += 1
            m = EVENT_LINE.match(line)
            if m is None:
                c.other_lines += 1
                continue
            c.events += 1
            tid = int(m.group(1))
            us = int(m.group(2)) * 1_000_000 + int(m.group(3))
            c.by_tid[tid] += 1
            c.by_name[m.group(4)] += 1
            c.first_us[tid] = min(c.first_us.get(tid, us), us)
            c.last_us[tid] = max(c.last_us.get(tid, us), us)
    return c


@pytest.fixture(scope="module", params=SCENARIOS)
def scenario_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh capture of one scenario (run once per module and scenario)."""
    _require_qemu()
    out = tmp_path_factory.mktemp(f"capture-{request.param}")
    proc = subprocess.run(
        [
            sys.executable,
            str(CAPTURE),
            "--out",
            str(out),
            "--scenario",
            request.param,
            "--timeout",
            str(CAPTURE_TIMEOUT_S),
        ],
        capture_output=True,
        text=True,
        timeout=CAPTURE_TIMEOUT_S + 30,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"capture.py --scenario {request.param} exited {proc.returncode}:\n{proc.stderr}"
        )
    return out


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def test_capture_outputs(scenario_dir: Path) -> None:
    """The folder has everything the recorded scenarios have, and the migration completed."""
    for name in (
        "dst.trace",
        "src.trace",
        "dst-threads.json",
        "src-threads.json",
        "query-migrate.json",
        "cmdline.txt",
        "events.txt",
        "qemu-version.txt",
    ):
        assert (scenario_dir / name).is_file(), name
    qm = _load(scenario_dir / "query-migrate.json")
    assert qm["source"]["status"] == "completed"
    assert qm["destination"]["status"] == "completed"
    assert qm["source"]["ram"]["dirty-sync-count"] >= 2

    for role in ("dst", "src"):
        side = _load(scenario_dir / f"{role}-threads.json")
        assert side["role"] == role
        assert side["main_thread_tid"] == side["pid"]
        assert str(side["pid"]) in side["tid_to_name"]
        assert "CPU 0/TCG" in side["tid_to_name"].values()
        for tid, info in side["threads"].items():
            assert info["names"][-1]["name"] == side["tid_to_name"][tid]
            assert info["first_seen"] <= info["last_seen"]

    cmdline = (scenario_dir / "cmdline.txt").read_text()
    assert "-incoming defer" in cmdline
    assert '"execute": "migrate-incoming"' in cmdline
    assert '"execute": "migrate"' in cmdline


def test_summary_matches_plain_count(scenario_dir: Path) -> None:
    """``migtrace summary --format json`` agrees with an independent count of dst.trace."""
    trace = scenario_dir / "dst.trace"
    threads_json = scenario_dir / "dst-threads.json"
    plain = plain_count(trace)
    assert plain.events > 0
    sidecar = _load(threads_json)

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tracetool.cli",
            "summary",
            str(trace),
            "--threads",
            str(threads_json),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
    )
    assert proc.returncode == 0, f"migtrace summary failed:\n{proc.stderr}"
    summary = json.loads(proc.stdout)

    # Inputs: every line is either an event or an other line.
    (inp,) = summary["inputs"]
    assert inp["lines"] == plain.lines
    assert inp["events"] == plain.events
    assert inp["other_lines"] == plain.other_lines
    assert inp["events"] + inp["other_lines"] == inp["lines"]

    # Threads: per-thread event counts equal the count of lines by TID.
    threads = {int(t["tid"]): t for t in summary["threads"]}
    got_by_tid = {tid: t["events"] for tid, t in threads.items() if t["events"]}
    assert got_by_tid == dict(plain.by_tid)
    for tid, t in threads.items():
        if tid in plain.by_tid:
            assert t["first_ns"] <= t["last_ns"]

    # Roles: the sidecar's main thread is "main", the TCG vCPU thread is "vcpu".
    main_tid = int(sidecar["main_thread_tid"])
    assert main_tid in plain.by_tid, "the destination main thread logged nothing"
    assert threads[main_tid]["role"] == "main"
    vcpu_tids = [int(tid) for tid, name in sidecar["tid_to_name"].items() if name == "CPU 0/TCG"]
    assert len(vcpu_tids) == 1
    vcpu = vcpu_tids[0]
    if vcpu in plain.by_tid or vcpu in threads:
        assert threads[vcpu]["role"] == "vcpu"
    if "qemu_mutex_lock" in (scenario_dir / "events.txt").read_text():
        # with the lock events on, the resumed guest's vCPU takes the BQL on the destination
        assert vcpu in plain.by_tid

    # Event names.
    assert summary["event_counts"] == dict(plain.by_name)

    # And QEMU's own verdict.
    qm = _load(scenario_dir / "query-migrate.json")
    assert qm["source"]["status"] == "completed"
    assert qm["destination"]["status"] == "completed"
