"""Perfetto / Chrome trace export and parquet/CSV tables, on the real sample traces.

The Trace Event Format documents go through a structural validator written here, apart from
the exporter: it reads timestamps the way Perfetto's JSON importer does (integers × 1000,
decimals × 1000 truncated to whole nanoseconds) and checks nesting per track on those
nanoseconds. When Chrome DevTools' trace engine (npm ``@paulirish/trace_engine``) and node are
installed, the documents are also loaded with it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import tracetool
from reports.perfetto import chrome_trace, nest_layers, write_chrome_trace
from reports.tables import export_tables, output_paths
from tests.conftest import REPO, SAMPLES, run_cli, sample
from tracetool._analyses.bql.report import analyze_bql
from tracetool._analyses.tables import trace_tables
from tracetool._model.trace import Trace
from tracetool._timeline.builder import build_timeline
from tracetool.errors import NotInTrace

TFY_MUTEX_RUN = sample("qemu-threadify", "e-precopy-mutex", "per-thread")
TFY_MUTEX_THREADS = sample("qemu-threadify", "e-precopy-mutex", "per-thread", "dst-threads.json")
POSTCOPY_SIMPLE = sample("qemu-threadify", "d-postcopy-preempt", "dst.simple.xz")
MUTEX_SIMPLE = sample("qemu-threadify", "e-precopy-mutex", "dst.simple.xz")
Q72_KILLED = sample("qemu-7.2", "f3-postcopy-dst-killed", "dst.trace.xz")
Q72_NO_TIME = sample("qemu-7.2", "g-precopy-plain-notimestamp", "dst.trace.xz")
NO_TIME = np.iinfo(np.int64).min


# ---------------------------------------------------------------------------------- validator
META_NAMES = {"process_name", "process_sort_index", "thread_name", "thread_sort_index"}


def perfetto_ns(v: Any) -> int:
    """A µs value as Perfetto's JSON importer reads it (json_utils CoerceToTs)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"not a number: {v!r}")
    return v * 1000 if isinstance(v, int) else int(v * 1000.0)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def validate(doc: Any) -> list[str]:
    """Problems that would keep ui.perfetto.dev or chrome://tracing from showing the trace
    as intended; empty when the document is sound."""
    problems: list[str] = []
    try:
        json.dumps(doc, allow_nan=False)
    except ValueError as exc:
        problems.append(f"not strict JSON: {exc}")
    events = doc["traceEvents"] if isinstance(doc, dict) else doc
    if not isinstance(events, list) or not events:
        return [*problems, "no traceEvents list"]
    named_pids: set[int] = set()
    named_threads: set[tuple[int, int]] = set()
    used_pids: set[int] = set()
    used_threads: set[tuple[int, int]] = set()
    tracks: dict[tuple[int, int], list[tuple[int, int, int]]] = defaultdict(list)
    last_ts: float | None = None
    for n, e in enumerate(events):
        where = f"event {n} ({e.get('name')!r}, ph {e.get('ph')!r})"
        ph = e.get("ph")
        if not isinstance(e.get("name"), str) or not e["name"]:
            problems.append(f"{where}: no name")
        if not isinstance(e.get("pid"), int):
            problems.append(f"{where}: pid is not an integer")
            continue
        pid = e["pid"]
        if ph == "M":
            args = e.get("args")
            if e.get("name") not in META_NAMES or not isinstance(args, dict):
                problems.append(f"{where}: unknown metadata or no args")
                continue
            if e["name"].endswith("_name") and not (isinstance(args.get("name"), str) and args["name"]):
                problems.append(f"{where}: empty name")
            if e["name"].endswith("_sort_index") and not isinstance(args.get("sort_index"), int):
                problems.append(f"{where}: sort_index is not an integer")
            if e["name"].startswith("thread_"):
                if not isinstance(e.get("tid"), int):
                    problems.append(f"{where}: thread metadata without tid")
                elif e["name"] == "thread_name":
                    named_threads.add((pid, e["tid"]))
            elif e["name"] == "process_name":
                named_pids.add(pid)
            continue
        if ph not in ("X", "i", "C", "s", "f"):
            problems.append(f"{where}: unexpected phase")
            continue

        ts = e.get("ts")
        if not _number(ts):
            problems.append(f"{where}: ts {ts!r} is not a finite number")
            continue
        if last_ts is not None and ts < last_ts:
            problems.append(f"{where}: ts {ts} before the previous event's {last_ts}")
        last_ts = ts
        used_pids.add(pid)
        if ph == "C":
            args = e.get("args")
            if not isinstance(args, dict) or not args or not all(_number(v) for v in args.values()):
                problems.append(f"{where}: counter without numeric args")
            continue
        if not isinstance(e.get("tid"), int):
            problems.append(f"{where}: tid is not an integer")
            continue
        if "args" in e and not isinstance(e["args"], dict):
            problems.append(f"{where}: args is not an object")
        key = (pid, e["tid"])
        used_threads.add(key)
        if ph in ("s", "f"):
            if not isinstance(e.get("id"), int) or (ph == "f" and e.get("bp") != "e"):
                problems.append(f"{where}: a flow event needs an integer id (and bp 'e' at its end)")
            continue
        if ph == "X":
            dur = e.get("dur")
            if not isinstance(e.get("cat"), str) or not e["cat"]:
                problems.append(f"{where}: no cat")
            if not _number(dur) or dur < 0:
                problems.append(f"{where}: dur {dur!r} is not a non-negative number")
                continue
            tracks[key].append((perfetto_ns(ts), perfetto_ns(ts) + perfetto_ns(dur), n))
        else:
            if e.get("s") not in ("t", "p", "g"):
                problems.append(f"{where}: instant scope {e.get('s')!r}")
            tracks[key].append((perfetto_ns(ts), perfetto_ns(ts), n))
    problems += [f"pid {p}: no process_name metadata" for p in sorted(used_pids - named_pids)]
    problems += [f"track {t}: no thread_name metadata" for t in sorted(used_threads - named_threads)]
    for key, items in tracks.items():
        problems += _nesting(key, items, "ns, as Perfetto reads them")
        floats = [(events[n]["ts"], events[n]["ts"] + events[n].get("dur", 0), n) for _, _, n in items]
        problems += _nesting(key, floats, "µs, as floating-point readers add them")
    return problems


def _nesting(key: tuple[int, int], items: list[tuple[Any, Any, int]], unit: str) -> list[str]:
    """Slices of one track that overlap without one containing the other."""
    out = []
    stack: list[tuple[Any, int]] = []
    for start, end, n in sorted(items, key=lambda x: (x[0], -x[1])):
        while stack and stack[-1][0] <= start:
            stack.pop()
        if stack and end > stack[-1][0]:
            out.append(
                f"track {key}: event {n} [{start}, {end}] {unit} overlaps event "
                f"{stack[-1][1]} partially (it ends at {stack[-1][0]})"
            )
        stack.append((end, n))
    return out


def events_of(doc: dict[str, Any], ph: str, cat: str | None = None) -> list[dict[str, Any]]:
    return [e for e in doc["traceEvents"] if e["ph"] == ph and (cat is None or e.get("cat") == cat)]


def track_names(doc: dict[str, Any]) -> dict[tuple[int, int], str]:
    return {
        (e["pid"], e["tid"]): e["args"]["name"] for e in events_of(doc, "M") if e["name"] == "thread_name"
    }


def abs_ns(doc: dict[str, Any], e: dict[str, Any]) -> tuple[int, int]:
    """An X event's start and end in the trace's own ns, as Perfetto reads them."""
    t0 = int(doc["otherData"]["trace_start_ns"])
    start = t0 + perfetto_ns(e["ts"])
    return start, start + perfetto_ns(e["dur"])


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def mutex_run() -> tuple[Trace, Any, dict[str, Any]]:
    """The threadify mutex run recorded one file per thread: trace, BQL report, document."""
    trace = tracetool.load(TFY_MUTEX_RUN, threads=[TFY_MUTEX_THREADS])
    bql = analyze_bql(trace)
    return trace, bql, chrome_trace(trace, build_timeline(trace), bql)


@pytest.fixture(scope="module")
def postcopy_simple() -> tuple[Trace, dict[str, Any]]:
    """Threadify postcopy, simple backend: nanosecond times, no thread ids, page requests."""
    trace = tracetool.load(POSTCOPY_SIMPLE)
    return trace, chrome_trace(trace, build_timeline(trace))


@pytest.fixture(scope="module")
def mutex_simple() -> tuple[Trace, Any, dict[str, Any]]:
    """Threadify precopy with mutex events, simple backend: nanoseconds, BQL by call site."""
    trace = tracetool.load(MUTEX_SIMPLE)
    bql = analyze_bql(trace)
    return trace, bql, chrome_trace(trace, build_timeline(trace), bql)


@pytest.fixture(scope="module")
def killed() -> Trace:
    """QEMU 7.2 postcopy whose destination was killed: unclosed spans and page requests."""
    return tracetool.load(Q72_KILLED)


# ---------------------------------------------------------------------------------- validator's own checks
def test_validator_catches_broken_documents(postcopy_simple: tuple[Trace, dict[str, Any]]) -> None:
    _, doc = postcopy_simple
    assert validate(doc) == []
    xs = [i for i, e in enumerate(doc["traceEvents"]) if e["ph"] == "X" and e["dur"] > 0]
    thread_meta = next(i for i, e in enumerate(doc["traceEvents"]) if e["name"] == "thread_name")

    def broken(change: Any) -> list[str]:
        copy = json.loads(json.dumps(doc))
        change(copy["traceEvents"])
        return validate(copy)

    def overlap(ev: list[dict[str, Any]]) -> None:
        parent = max((ev[i] for i in xs), key=lambda e: e["dur"])
        ev.append(
            {**parent, "name": "straddler", "ts": parent["ts"] + parent["dur"] / 2, "dur": parent["dur"]}
        )
        ev.sort(key=lambda e: e.get("ts", -1))

    assert any("overlaps" in p for p in broken(overlap))
    assert any("no thread_name" in p for p in broken(lambda ev: ev.pop(thread_meta)))
    assert any("non-negative" in p for p in broken(lambda ev: ev[xs[0]].update(dur=-1)))
    assert any("not a finite" in p for p in broken(lambda ev: ev[xs[0]].update(ts="12")))
    assert any("before the previous" in p for p in broken(lambda ev: ev[xs[-1]].update(ts=-5)))


# ---------------------------------------------------------------------------------- Perfetto export
def test_threadify_mutex_run_exports_a_valid_trace(mutex_run: tuple[Trace, Any, dict[str, Any]]) -> None:
    trace, bql, doc = mutex_run
    assert validate(doc) == []
    names = track_names(doc)
    pids = {e["args"]["name"]: e["pid"] for e in events_of(doc, "M") if e["name"] == "process_name"}
    assert set(pids) == {"dst (incoming QEMU)", "src (outgoing QEMU)"}
    dst = pids["dst (incoming QEMU)"]
    # the thread's own name, as Perfetto's thread.name queries want it; the role in args
    assert names[(dst, 22774)] == "mig/dst/main"
    assert names[(dst, 22760)] == "qemu-system-x86"
    roles = {
        (e["pid"], e["tid"]): e["args"].get("role") for e in events_of(doc, "M") if e["name"] == "thread_name"
    }
    assert roles[(dst, 22774)] == "load" and roles[(dst, 22760)] == "main"
    for r in trace.threads.to_dict("records"):  # every thread of the trace has its track
        assert any(tid == int(r["tid"]) for (_, tid) in names), r
    sort = {
        (e["pid"], e["tid"]): e["args"]["sort_index"]
        for e in events_of(doc, "M")
        if e["name"] == "thread_sort_index"
    }
    assert sort[(dst, 22760)] < sort[(dst, 22774)] < sort[(dst, 22768)]  # main, load, vCPU

    procs = [p for p in bql.processes.values() if p.mutex is not None]
    holds = events_of(doc, "X", "bql")
    waits = events_of(doc, "X", "bql-wait")
    assert len(holds) == sum(len(p.holds) for p in procs) > 20_000
    assert len(waits) == sum(len(p.waits) for p in procs)
    # every hold sits on its holder's BQL track, at its exact nanoseconds
    load = bql.processes["dst"].holds
    load = load[(load["tid"] == 22774).to_numpy(dtype=bool) & load["complete"].to_numpy(dtype=bool)]
    bql_track = next(k for k, v in names.items() if v == "mig/dst/main · BQL" and k[0] == dst)
    on_track = Counter(abs_ns(doc, e) for e in holds if (e["pid"], e["tid"]) == bql_track)
    assert on_track == Counter(zip(load["start_ns"].astype(int), load["end_ns"].astype(int), strict=True))
    sites = Counter(
        e["args"].get("lock_site")
        for e in holds
        if (e["pid"], e["tid"]) == bql_track and e["args"]["status"] == "complete"
    )
    assert sites == Counter(load["lock_site"].astype(str))

    tl = build_timeline(trace)
    timed = tl.spans[tl.spans["start_ns"] != NO_TIME]
    for kind in ("section", "device", "phase", "qmp"):
        assert len(events_of(doc, "X", kind)) == int((timed["kind"] == kind).sum()), kind
    devices = Counter(e["name"] for e in events_of(doc, "X", "device"))
    assert devices["0000:00:1f.2/ich9_ahci"] == 1 and devices["dma"] == 2
    assert len(events_of(doc, "i")) == len(tl.instants)


def test_page_requests_keep_exact_nanoseconds_and_counter(
    postcopy_simple: tuple[Trace, dict[str, Any]],
) -> None:
    trace, doc = postcopy_simple
    assert validate(doc) == []
    spans = build_timeline(trace).spans
    req = spans[spans["kind"] == "page-request"]
    assert len(req) > 1000 and (req["start_ns"] % 1000 != 0).any()  # nanosecond clock
    got = Counter(abs_ns(doc, e) for e in events_of(doc, "X", "page-request"))
    assert got == Counter(zip(req["start_ns"].astype(int), req["end_ns"].astype(int), strict=True))
    # the counter follows the requests in flight, computed here the plain way
    s = req["start_ns"].to_numpy(dtype=np.int64)
    e = np.where(
        req["closed"].to_numpy(dtype=bool), req["end_ns"].to_numpy(dtype=np.int64), np.iinfo(np.int64).max
    )
    in_flight = ((s[None, :] <= s[:, None]) & (e[None, :] > s[:, None])).sum(axis=1)
    counter = [c["args"]["in_flight"] for c in events_of(doc, "C")]
    assert max(counter) == int(in_flight.max()) and counter[-1] == int((~req["closed"]).sum())
    # no thread ids: one thread track per process, the rest are synthetic tracks
    names = track_names(doc)
    assert sum(v == "all threads (no thread ids)" for v in names.values()) == 1
    assert any(v.startswith("page requests") for v in names.values())


def test_nanosecond_trace_nests_for_both_kinds_of_reader(
    mutex_simple: tuple[Trace, Any, dict[str, Any]],
) -> None:
    _, bql, doc = mutex_simple
    assert validate(doc) == []  # Perfetto's integer ns and floating-point µs alike
    p = bql.primary
    assert p.attribution == "call-site"
    names = set(track_names(doc).values())
    assert {"BQL · main (by call site)", "BQL · load (by call site)"} <= names
    waits = events_of(doc, "X", "bql-wait")
    assert len(waits) == len(p.waits)
    # a wait ends on the nanosecond its hold begins: shown 1 ns short, exact end in args
    cut = [e for e in waits if "end_ns" in e["args"]]
    assert len(cut) > len(waits) // 2
    for e in cut:
        assert abs_ns(doc, e)[1] == e["args"]["end_ns"] - 1
    exact = Counter(zip(p.waits["start_ns"].astype(int), p.waits["end_ns"].astype(int), strict=True))
    shown = Counter((abs_ns(doc, e)[0], e["args"].get("end_ns", abs_ns(doc, e)[1])) for e in waits)
    assert shown == exact


def test_partial_overlaps_go_to_extra_tracks(killed: Trace) -> None:
    doc = chrome_trace(killed, build_timeline(killed))
    assert validate(doc) == []
    spans = build_timeline(killed).spans
    phases = spans[spans["kind"] == "phase"]
    layers = nest_layers(
        phases["start_ns"].to_numpy(dtype=np.int64), phases["end_ns"].to_numpy(dtype=np.int64)
    )
    names = track_names(doc)
    phase_tracks = {(e["pid"], e["tid"]) for e in events_of(doc, "X", "phase")}
    assert len(phase_tracks) == int(layers.max()) + 1
    assert sorted(names[t] for t in phase_tracks)[0] == "phases"
    unclosed = [e for e in events_of(doc, "X") if e["args"].get("closed") is False]
    assert len(unclosed) == int((~spans["closed"]).sum()) > 0
    assert all(e["name"].endswith("(unclosed)") for e in unclosed)
    # requests the killed destination never got stay in flight to the end
    open_requests = int((~spans[spans["kind"] == "page-request"]["closed"]).sum())
    assert [c["args"]["in_flight"] for c in events_of(doc, "C")][-1] == open_requests > 0


def test_trace_without_timestamps_is_refused_and_file_kept(tmp_path: Path) -> None:
    trace = tracetool.load(Q72_NO_TIME)
    out = tmp_path / "trace.json"
    out.write_text("previous")
    with pytest.raises(NotInTrace, match="timestamps"):
        write_chrome_trace(trace, out, build_timeline(trace))
    assert out.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["trace.json"]


def _trace_engine() -> Path | None:
    """Chrome DevTools' trace engine package, if node and the package are installed."""
    if shutil.which("node") is None:
        return None
    candidates = [os.environ.get("MIGTRACE_TRACE_ENGINE")]
    if shutil.which("npm"):
        root = subprocess.run(["npm", "root", "-g"], capture_output=True, text=True, timeout=60)
        candidates.append(os.path.join(root.stdout.strip(), "@paulirish", "trace_engine"))
    for c in candidates:
        if c and (Path(c) / "models" / "trace" / "trace.js").exists():
            return Path(c)
    return None


ENGINE_SCRIPT = """
import fs from 'node:fs';
const [,, engineDir, file] = process.argv;
await import(engineDir + '/analyze-trace.mjs');  // installs the DOMRect polyfill node lacks
const Trace = await import(engineDir + '/models/trace/trace.js');
const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
const model = Trace.TraceModel.Model.createWithAllHandlers();
await model.parse(doc.traceEvents);
const data = model.parsedTrace().data;
const threads = [];
for (const [pid, proc] of data.Renderer.processes) {
  for (const [tid, thread] of proc.threads) {
    let nodes = 0;
    const walk = (n) => { nodes++; n.children.forEach(walk); };
    thread.tree.roots.forEach(walk);
    threads.push({pid, tid, name: thread.name, entries: thread.entries.length, nodes});
  }
}
console.log(JSON.stringify({generic: data.Meta.traceIsGeneric, threads}));
"""


def test_chrome_devtools_trace_engine_loads_the_export(
    mutex_run: tuple[Trace, Any, dict[str, Any]],
    postcopy_simple: tuple[Trace, dict[str, Any]],
    mutex_simple: tuple[Trace, Any, dict[str, Any]],
    tmp_path: Path,
) -> None:
    engine = _trace_engine()
    if engine is None:
        pytest.skip(
            "Chrome DevTools trace engine not installed (npm install -g "
            "@paulirish/trace_engine, or set MIGTRACE_TRACE_ENGINE to its directory)"
        )
    script = tmp_path / "load.mjs"
    script.write_text(ENGINE_SCRIPT)
    docs = (("mutex", mutex_run[2]), ("postcopy", postcopy_simple[1]), ("simple", mutex_simple[2]))
    for name, doc in docs:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(doc))
        run = subprocess.run(
            ["node", str(script), str(engine), str(path)], capture_output=True, text=True, timeout=300
        )
        assert run.returncode == 0, run.stderr[-2000:]
        got = json.loads(run.stdout)
        assert got["generic"] is True
        mine = Counter((e["pid"], e["tid"]) for e in events_of(doc, "X"))
        names = track_names(doc)
        seen = {(t["pid"], t["tid"]): t for t in got["threads"]}
        assert set(seen) == set(mine), name
        for key, t in seen.items():
            # the engine keeps only properly nested slices in its per-thread tree
            assert t["entries"] == mine[key] == t["nodes"], (name, t)
            assert t["name"] == names[key]


# ---------------------------------------------------------------------------------- tables
def test_parquet_tables_round_trip(mutex_run: tuple[Trace, Any, dict[str, Any]], tmp_path: Path) -> None:
    trace, bql, _ = mutex_run
    written = export_tables(trace_tables(trace, build_timeline(trace), bql), f"{tmp_path}/out/", "parquet")
    assert [p.name for p in written] == [
        "events.parquet",
        "spans.parquet",
        "instants.parquet",
        "threads.parquet",
        "processes.parquet",
        "bql_holds.parquet",
        "bql_waits.parquet",
    ]
    events = pd.read_parquet(written[0])
    assert len(events) == len(trace)
    assert (events["ts_ns"].to_numpy() == trace.ts).all()
    assert events["event"].astype(str).tolist()[:50] == trace.events["event"].astype(str).tolist()[:50]
    assert events["tid"].isna().sum() == 0 and events["time"].dt.tz is not None
    spans = pd.read_parquet(written[1])
    tl = build_timeline(trace)
    assert len(spans) == len(tl.spans) and spans["idstr"].dropna().str.len().gt(0).all()
    holds = pd.read_parquet(written[5])
    assert len(holds) == sum(len(p.holds) for p in bql.processes.values() if p.mutex is not None)
    assert set(holds["process"]) == {"dst", "src"}
    # names stay categorical when the holds of both processes are written as one table
    for column in ("process", "thread", "role", "lock_site", "phase"):
        assert isinstance(holds[column].dtype, pd.CategoricalDtype), column


def test_csv_tables_with_a_prefix(killed: Trace, tmp_path: Path) -> None:
    written = export_tables(trace_tables(killed, build_timeline(killed)), tmp_path / "run1", "csv")
    assert [p.name for p in written] == [
        "run1-events.csv",
        "run1-spans.csv",
        "run1-instants.csv",
        "run1-threads.csv",
        "run1-processes.csv",
    ]
    events = pd.read_csv(written[0])
    assert len(events) == len(killed) and events["ts_ns"].is_monotonic_increasing
    assert events["event"].tolist()[:20] == killed.events["event"].astype(str).tolist()[:20]
    spans = pd.read_csv(written[1])
    assert (spans["kind"] == "page-request").sum() == 197
    assert oct(written[0].stat().st_mode & 0o777) != oct(0o600)  # not the temp file's mode


def test_output_paths() -> None:
    assert output_paths("a/b/", ["events"], "csv") == {"events": Path("a/b/events.csv")}
    assert output_paths("a/run", ["spans"], "parquet") == {"spans": Path("a/run-spans.parquet")}


# ---------------------------------------------------------------------------------- CLI
def test_cli_export_perfetto_and_csv(tmp_path: Path) -> None:
    out = tmp_path / "killed.json"
    run = run_cli("export", Q72_KILLED, "--to", "perfetto", "-o", str(out))
    assert run.returncode == 0, run.stderr
    doc = json.loads(out.read_text())
    assert validate(doc) == [] and len(events_of(doc, "X", "page-request")) == 197
    run = run_cli("export", Q72_NO_TIME, "--to", "csv", "-o", f"{tmp_path}/tables/")
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == [
        "events.csv",
        "instants.csv",
        "processes.csv",
        "spans.csv",
        "threads.csv",
    ]


def test_the_perfetto_export_does_not_load_matplotlib() -> None:
    """The export draws nothing: importing it must not pull in the plotting stack (start-up
    time, and installs without matplotlib)."""
    code = "import reports.perfetto, sys; assert 'matplotlib' not in sys.modules, 'matplotlib loaded'"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO))
    assert run.returncode == 0, run.stderr


def test_downtime_track_and_flow_arrows_between_the_sides(tmp_path: Path) -> None:
    run = SAMPLES / "qemu-threadify" / "e-precopy-mutex"
    paths = [str(run / "dst.trace.xz"), str(run / "src.trace.xz")]
    trace = tracetool.load(paths)
    report = tracetool.analyze_downtime(trace)
    doc = chrome_trace(trace, build_timeline(trace), None, report)
    assert validate(doc) == []
    names = track_names(doc)
    steps = [e for e in doc["traceEvents"] if e.get("cat") == "downtime" and e["ph"] == "X"]
    assert len(steps) == len(report.steps["src"]) + len(report.steps["dst"])
    assert {names[(e["pid"], e["tid"])] for e in steps} == {"downtime"}
    starts = {e["id"]: e for e in doc["traceEvents"] if e.get("ph") == "s"}
    ends = {e["id"]: e for e in doc["traceEvents"] if e.get("ph") == "f"}
    assert set(starts) == set(ends)
    assert all(starts[k]["pid"] != ends[k]["pid"] for k in starts)  # source -> destination
    pause = [k for k, e in starts.items() if e["name"].startswith("pause")]
    assert len(pause) == 1
    both = [d for d in report.by_device if d["save_us"] is not None and d["load_us"] is not None]
    devices = [e["name"] for e in starts.values() if e["name"].startswith("device ")]
    assert sorted(devices) == sorted(f"device {d['device']}" for d in both)
