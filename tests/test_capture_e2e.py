"""End to end: capture real QEMU migrations, then check migtrace against them.

``tracetool._capture`` runs a source and a destination QEMU on loopback (TCG) and writes one
folder per run; ``migtrace summary`` must then agree with a plain line-by-line count of the
destination trace. ``migtrace capture`` with Debian's QEMU given twice under two labels must
lay out, alternate and record its runs as documented, and stop both QEMUs on SIGINT/SIGTERM.
Needs ``qemu-system-x86_64``: without it the tests are skipped, unless
``MIGTRACE_REQUIRE_QEMU=1`` is set, in which case they fail.
"""

from __future__ import annotations

import itertools
import json
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import tracetool
from tracetool._capture.driver import Build, CapturePlan, capture, resolve_builds
from tracetool._capture.run import RunResult
from tracetool._capture.scenarios import scenarios

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
QEMU = "qemu-system-x86_64"
SCENARIOS = ["precopy", "precopy-mutex", "devices", "multifd"]
CAPTURE_TIMEOUT_S = 25  # per run; a short run takes a few seconds
SHORT_RUN = ["--mem", "64", "--warmup", "0.2", "--timeout", str(CAPTURE_TIMEOUT_S)]
RUN_FILES = (
    "dst.trace",
    "src.trace",
    "dst-threads.json",
    "src-threads.json",
    "query-migrate.json",
    "query-migrate-history.jsonl",
    "qmp-events.jsonl",
    "cmdline.txt",
    "events.txt",
    "qemu-version.txt",
    "run.json",
)

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


class _Quiet:
    """A capture listener that keeps the log for failure messages."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def run_started(self, position: int, total: int, build: Build, index: int) -> None:
        self.lines.append(f"[{position}/{total}] {build.label} run-{index}")

    def log(self, message: str) -> None:
        self.lines.append(message)

    def run_finished(self, position: int, total: int, result: RunResult) -> None:
        self.lines.append(f"ok={result.ok} {result.outcome} {result.error}")


@pytest.fixture(scope="module", params=SCENARIOS)
def scenario_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh capture of one scenario through the package (once per module and scenario)."""
    _require_qemu()
    out = tmp_path_factory.mktemp(f"capture-{request.param}")
    plan = CapturePlan(
        out, resolve_builds([QEMU], ["debian"]), scenarios()[request.param], runs=1,
        mem_mb=64, timeout_s=CAPTURE_TIMEOUT_S, warmup_s=0.2,
    )  # fmt: skip
    listener = _Quiet()
    summary = capture(plan, listener)
    if summary.exit_code() != 0:
        pytest.fail(f"capture of {request.param} failed:\n" + "\n".join(listener.lines))
    return out / "debian" / "run-1"


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def test_capture_outputs(scenario_dir: Path) -> None:
    """The folder has everything the recorded scenarios have, and the migration completed."""
    for name in RUN_FILES:
        assert (scenario_dir / name).is_file(), name
    qm = _load(scenario_dir / "query-migrate.json")
    assert qm["source"]["status"] == "completed"
    assert qm["destination"]["status"] == "completed"
    assert qm["source"]["ram"]["dirty-sync-count"] >= 2
    # QEMU's own totals, read after QEMU worked them out (it says completed before it does)
    assert qm["source"]["total-time"] > 0, qm["source"]

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
    spec = scenarios()[_load(scenario_dir / "run.json")["scenario"]]
    assert f"-smp {spec.smp}" in cmdline and " ".join(spec.devices) in cmdline
    channels = spec.parameters.get("multifd-channels")
    if channels is not None:
        # the destination opens as many channels as its own parameter says (7.2 crashes on more)
        told = f'dst {{"execute": "migrate-set-parameters", "arguments": {{"multifd-channels": {channels}}}}}'
        assert told in cmdline
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


def test_every_device_section_loaded_is_in_phases_and_downtime(scenario_dir: Path) -> None:
    """Each FULL section the destination's trace starts (read with a regular expression) is a
    device load of ``phases`` with its instance, and a per-device row of ``downtime``; the
    devices the ``devices`` scenario adds are among them."""
    pat = re.compile(rb"qemu_loadvm_state_section_startfull (\d+)\((.+)\) (\d+) \d+$")
    full = {}
    for line in (scenario_dir / "dst.trace").read_bytes().splitlines():
        m = pat.search(line)
        if m:
            full[int(m[1])] = (m[2].decode(), int(m[3]))
    assert len(full) > 20

    def cli_json(command: str) -> Any:
        proc = subprocess.run(
            [sys.executable, "-m", "tracetool.cli", command, str(scenario_dir), "--format", "json"],
            capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    loads = {d["section_id"]: (d["idstr"], d["instance_id"]) for d in cli_json("phases")["devices"]}
    assert {k: loads.get(k) for k in full} == full
    rows = {d["section_id"]: (d["device"], d["instance_id"]) for d in cli_json("downtime")["by_device"]}
    assert {k: rows.get(k) for k in full} == full
    added = {"virtio-net", "e1000e", "virtio-blk", "xhci", "virtio-balloon", "virtio-rng"}
    seen = {idstr.rsplit("/", 1)[-1] for idstr, _ in full.values()}
    if _load(scenario_dir / "run.json")["scenario"] == "devices":
        assert added <= seen, added - seen
    else:
        assert not added & seen


# ------------------------------------------------------------------ migtrace capture, two builds
LABELS = ["debian-a", "debian-b"]


@dataclass(frozen=True)
class TwoBuilds:
    """``migtrace capture`` of Debian's QEMU under two labels, two runs each."""

    out: Path
    proc: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory: pytest.TempPathFactory) -> TwoBuilds:
    _require_qemu()
    out = tmp_path_factory.mktemp("two-builds")
    qemu_path = shutil.which(QEMU)
    assert qemu_path is not None
    proc = subprocess.run(
        [sys.executable, "-m", "tracetool.cli", "capture", "--qemu", QEMU, "--qemu", qemu_path,
         "--label", LABELS[0], "--label", LABELS[1], "--runs", "2", "--scenario", "precopy",
         "--out", str(out), *SHORT_RUN],
        capture_output=True, text=True, timeout=4 * (CAPTURE_TIMEOUT_S + 10), check=False,
        cwd=REPO,
    )  # fmt: skip
    return TwoBuilds(out, proc)


def test_capture_two_builds_layout_and_capture_json(two_builds: TwoBuilds) -> None:
    proc, out = two_builds.proc, two_builds.out
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([*LABELS, "capture.json"])
    for label in LABELS:
        assert sorted(p.name for p in (out / label).iterdir()) == ["run-1", "run-2"]
        for k in (1, 2):
            for name in RUN_FILES:
                assert (out / label / f"run-{k}" / name).is_file(), f"{label}/run-{k}/{name}"
    cap = _load(out / "capture.json")
    assert [b["label"] for b in cap["builds"]] == LABELS
    assert cap["scenario"]["name"] == "precopy"
    assert cap["runs_per_build"] == 2
    assert cap["status"] == "completed"
    assert cap["failed"] == 0
    assert len(cap["results"]) == 4
    for r in cap["results"]:
        # capture.json's verdict agrees with QEMU's own final answers in the run's folder
        qm = _load(out / r["folder"] / "query-migrate.json")
        assert r["ok"] is True
        assert r["source_status"] == qm["source"]["status"] == "completed"
        assert r["destination_status"] == qm["destination"]["status"] == "completed"
        assert qm["source"]["total-time"] > 0, qm["source"]
    # not a terminal: plain progress lines, one per step, and no terminal control codes
    assert "\x1b[" not in proc.stderr
    assert proc.stderr.count(": start\n") == 4


def test_capture_alternates_builds(two_builds: TwoBuilds) -> None:
    """Run by run: A1, B1, A2, B2, read from each run.json's start time, one after the other."""
    out = two_builds.out
    runs = []
    for label in LABELS:
        for k in (1, 2):
            info = _load(out / label / f"run-{k}" / "run.json")
            runs.append((info["t_start"], info["t_end"], f"{label}/run-{k}"))
    runs.sort()
    assert [name for _, _, name in runs] == [
        f"{LABELS[0]}/run-1",
        f"{LABELS[1]}/run-1",
        f"{LABELS[0]}/run-2",
        f"{LABELS[1]}/run-2",
    ]
    for (_, end, _), (start, _, _) in itertools.pairwise(runs):
        assert end <= start, "runs overlapped"
    cap = _load(out / "capture.json")
    assert [r["folder"] for r in cap["results"]] == [name for _, _, name in runs]


def test_every_run_folder_loads(two_builds: TwoBuilds) -> None:
    """tracetool.load reads each run folder: both processes, every event line of both traces."""
    out = two_builds.out
    for label in LABELS:
        for k in (1, 2):
            run = out / label / f"run-{k}"
            trace = tracetool.load(
                str(run), threads=[str(run / "dst-threads.json"), str(run / "src-threads.json")]
            )
            plain = {role: plain_count(run / f"{role}.trace") for role in ("dst", "src")}
            assert len(trace.events) == plain["dst"].events + plain["src"].events
            by_process = trace.events.groupby("process").size().to_dict()
            assert by_process == {role: plain[role].events for role in ("dst", "src")}
            for role in ("dst", "src"):
                pid = _load(run / f"{role}-threads.json")["pid"]
                rows = trace.threads[trace.threads["process"] == role]
                assert set(rows["pid"]) == {pid}
                got = {int(t): int(n) for t, n in zip(rows["tid"], rows["events"], strict=True) if n}
                assert got == dict(plain[role].by_tid)


# ------------------------------------------------------------------ interrupting a capture
def _processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention ``text`` (the capture's folder)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text.encode() in cmdline and state != "Z":
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_both_qemus(tmp_path: Path, signum: int, code: int) -> None:
    _require_qemu()
    out = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracetool.cli", "capture", "--runs", "3", "--out", str(out),
         *SHORT_RUN],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + CAPTURE_TIMEOUT_S
        qemus: list[str] = []
        while time.monotonic() < deadline and len(qemus) < 2 and proc.poll() is None:
            qemus = [c for c in _processes_mentioning(str(out)) if QEMU in c.split()[0]]
            time.sleep(0.05)
        assert len(qemus) == 2, "the capture did not start both QEMUs"
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, stderr
    assert _processes_mentioning(str(out)) == []
    cap = _load(out / "capture.json")
    assert cap["status"] == "interrupted"
    assert cap["results"][-1]["outcome"] == "interrupted"


def test_a_failed_run_is_recorded_and_the_capture_goes_on(tmp_path: Path) -> None:
    """A run that cannot finish in time fails; the next run still runs; exit code 1."""
    _require_qemu()
    out = tmp_path / "too-short"
    proc = subprocess.run(
        [sys.executable, "-m", "tracetool.cli", "capture", "--runs", "2", "--out", str(out),
         "--mem", "64", "--timeout", "1"],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "2 of 2 runs failed" in proc.stderr
    cap = _load(out / "capture.json")
    assert cap["status"] == "completed" and cap["failed"] == 2
    assert [r["folder"] for r in cap["results"]] == [
        f"{cap['builds'][0]['label']}/run-1",
        f"{cap['builds'][0]['label']}/run-2",
    ]
    for r in cap["results"]:
        assert r["ok"] is False and "timed out" in r["error"]
        # QEMU's own last answer in the run's folder says it had not completed
        assert _load(out / r["folder"] / "query-migrate.json")["source"].get("status") != "completed"
    assert _processes_mentioning(str(out)) == []


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal the progress is a live bar (cursor control codes), with one line per run."""
    _require_qemu()
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracetool.cli", "capture", "--out", str(tmp_path / "tty"),
         *SHORT_RUN],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, cwd=REPO, env=env,
    )  # fmt: skip
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=CAPTURE_TIMEOUT_S + 10) == 0
    shown = b"".join(chunks).decode(errors="replace")
    assert "\x1b[?25l" in shown  # the live bar hides the cursor while it draws
    assert "run-1: ok (completed)" in shown
    assert "capture: [1/1]" not in shown  # no plain progress lines on a terminal


# ------------------------------------------------------------------ comparing the runs
COMPARED = ("downtime.end_to_end", "total_time.dst", "phases.switchover.duration", "ram.pages")


def _single_run_figures(run: Path) -> dict[str, float | None]:
    """The figures of one run as ``migtrace phases --format json`` prints them (the run folder
    brings its sidecars and query-migrate.json)."""
    proc = subprocess.run(
        [sys.executable, "-m", "tracetool.cli", "phases", str(run), "--format", "json"],
        capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    switchover = [p["duration_us"] for p in doc["phases"] if p["name"] == "switchover"]
    return {
        "downtime.end_to_end": doc["downtime"]["end_to_end_us"],
        "total_time.dst": doc["total_time"]["dst_us"],
        "phases.switchover.duration": sum(switchover) if switchover else None,
        "ram.pages": float(doc["ram"]["pages"]),
    }


def test_compare_runs_of_two_builds(two_builds: TwoBuilds) -> None:
    """migtrace compare with two run folders per side: n, every run's own figure, a p-value in
    [0, 1] and an interval around the shift when there is one (the machinery, not a verdict)."""
    assert two_builds.proc.returncode == 0, two_builds.proc.stderr
    out = two_builds.out
    metric_args = [a for m in COMPARED for a in ("--metric", m)]
    proc = subprocess.run(
        [sys.executable, "-m", "tracetool.cli", "compare", str(out / LABELS[0] / "run-1"),
         str(out / LABELS[0] / "run-2"), "--", str(out / LABELS[1]), *metric_args, "--format", "json"],
        capture_output=True, text=True, timeout=600, check=False, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["before"]["label"], doc["after"]["label"]) == tuple(LABELS)  # from capture.json
    figures = {
        side: [_single_run_figures(out / label / f"run-{k}") for k in (1, 2)]
        for side, label in zip(("before", "after"), LABELS, strict=True)
    }
    by_metric = {m["metric"]: m for m in doc["metrics"]}
    assert set(by_metric) == set(COMPARED)
    for metric, m in by_metric.items():
        for side in ("before", "after"):
            own = [f[metric] for f in figures[side]]
            assert m[side]["values"] == own, (metric, side)
            assert m[side]["n"] == sum(v is not None for v in own) == 2, (metric, side)
        ch = m["change"]
        assert ch["p_value"] is not None and 0.0 <= ch["p_value"] <= 1.0
        if ch["ci_low"] is not None and ch["ci_high"] is not None:
            assert ch["ci_low"] <= ch["shift"] <= ch["ci_high"]
        else:  # two runs a side cannot bound a 95 % interval, nor reach p < 0.05
            assert not ch["significant"] and ch["p_value"] >= 1 / 3 - 1e-9
            assert ch["note"].startswith("too few runs")


def test_batch_and_history_of_captured_runs(two_builds: TwoBuilds, tmp_path: Path) -> None:
    """Captured runs through migtrace batch into a history: one point per run under its build's
    label from capture.json, each run's own figure."""
    from tests.conftest import run_cli

    assert two_builds.proc.returncode == 0, two_builds.proc.stderr
    out = two_builds.out
    table = tmp_path / "runs.parquet"
    r = run_cli("batch", str(out / LABELS[0]), str(out / LABELS[1]), "--out", str(table), "--workers", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    db = str(tmp_path / "history.sqlite")
    assert run_cli("history", "add", str(table), "--db", db).returncode == 0
    r = run_cli("history", "show", "--db", db, "-m", "total_time.dst", "--by", "build", "--format", "json")
    assert r.returncode == 0, r.stderr
    points = json.loads(r.stdout)["points"]
    assert len({p["run"] for p in points}) == 4
    got = {label: sorted(p["value"] for p in points if p["labels"]["build"] == label) for label in LABELS}
    own = {
        label: sorted(_single_run_figures(out / label / f"run-{k}")["total_time.dst"] for k in (1, 2))
        for label in LABELS
    }
    assert got == own
