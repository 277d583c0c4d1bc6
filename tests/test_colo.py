"""migtrace colo on the real COLO runs of QEMU 7.2 and threadify (sample_traces/*-colo), compared
with a plain reading of the trace lines (tests/colo_plain.py)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tracetool
from tests import colo_plain as plain
from tests.conftest import read_lines, run_cli, sample
from tracetool import ColoReport

R72 = ("qemu-7.2-colo", "b-colo-periodic-mutex")
TFY = ("qemu-threadify-colo", "b-colo-periodic-mutex")


def args_72() -> list[str]:
    return [
        sample(*R72, "dst.trace.xz"),
        sample(*R72, "src.trace.xz"),
        "--threads",
        sample(*R72, "dst-threads.json"),
        "--threads",
        sample(*R72, "src-threads.json"),
    ]


def args_tfy() -> list[str]:
    return [
        sample(*TFY, "per-thread"),
        "--threads",
        sample(*TFY, "dst-threads.json"),
        "--threads",
        sample(*TFY, "src-threads.json"),
    ]


@cache
def trace_72() -> tracetool.Trace:
    return tracetool.load(
        [sample(*R72, "dst.trace.xz"), sample(*R72, "src.trace.xz")],
        threads=[sample(*R72, "dst-threads.json"), sample(*R72, "src-threads.json")],
    )


@cache
def trace_tfy() -> tracetool.Trace:
    return tracetool.load(
        [sample(*TFY, "per-thread")],
        threads=[sample(*TFY, "dst-threads.json"), sample(*TFY, "src-threads.json")],
    )


@cache
def colo_72() -> ColoReport:
    return tracetool.run_analysis(trace_72(), "colo")


@cache
def colo_tfy() -> ColoReport:
    return tracetool.run_analysis(trace_tfy(), "colo")


@cache
def lines(run: str, side: str) -> list[plain.Line]:
    if run == "7.2":
        return plain.read_72(sample(*R72, f"{side}.trace.xz"))
    return plain.read_per_thread(sample(*TFY, "per-thread"), side)


def doc_of(run: str) -> dict[str, Any]:
    return (colo_72() if run == "7.2" else colo_tfy()).to_json()


def proc(run: str, role: str) -> dict[str, Any]:
    return next(p for p in doc_of(run)["processes"] if p["role"] == role)


RUNS = ["7.2", "threadify"]


# ---------------------------------------------------------------------------------- sides
@pytest.mark.parametrize(
    ("run", "secondary_thread", "primary_thread"),
    [("7.2", "COLO incoming", "live_migration"), ("threadify", "mig/dst/colo", "mig/src/main")],
)
def test_sides_and_colo_threads(run: str, secondary_thread: str, primary_thread: str) -> None:
    doc = doc_of(run)
    assert [(p["label"], p["role"], p["role_from"]) for p in doc["processes"]] == [
        ("dst", "secondary", "messages"),
        ("src", "primary", "messages"),
    ]
    for side, name in (("dst", secondary_thread), ("src", primary_thread)):
        p = next(x for x in doc["processes"] if x["label"] == side)
        assert p["thread"] == {"tid": plain.busiest_colo_thread(lines(run, side)), "name": name}


@pytest.mark.parametrize("run", RUNS)
def test_colo_threads_get_the_colo_role_and_the_initial_load_keeps_its_thread(run: str) -> None:
    trace = trace_72() if run == "7.2" else trace_tfy()
    th = trace.threads
    colo_tid = plain.busiest_colo_thread(lines(run, "dst"))
    row = th[(th["process"] == "dst") & (th["tid"] == colo_tid)].iloc[0]
    assert row["role"] == "colo" and not row["carries_load"]
    load = th[(th["process"] == "dst") & th["carries_load"]].iloc[0]
    assert load["name"] == ("qemu-system-x86" if run == "7.2" else "mig/dst/main")


def test_colo_role_without_thread_names() -> None:
    trace = tracetool.load([sample(*R72, "dst.trace.xz")])
    th = trace.threads
    colo_tid = plain.busiest_colo_thread(lines("7.2", "dst"))
    assert th[th["tid"] == colo_tid]["role"].iloc[0] == "colo"
    assert th[th["carries_load"]]["tid"].iloc[0] == lines("7.2", "dst")[0].tid  # the main thread


# ---------------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("run", RUNS)
def test_secondary_checkpoints_match_the_lines(run: str) -> None:
    colo = plain.of_thread(lines(run, "dst"), plain.busiest_colo_thread(lines(run, "dst")))
    want = plain.walk_secondary(colo)
    got = proc(run, "secondary")["checkpoints"]
    assert len(got) == len(want) == sum(plain.msg(x, "Receive", "checkpoint-request") for x in colo)
    for g, w in zip(got, want, strict=True):
        assert g["request_ns"] == w.request
        assert g["stop_ns"] == w.get("stop") and g["resume_ns"] == w.get("resume")
        assert g["pause_us"] == plain.us(w.get("stop"), w.get("resume"))
        assert g["ram_load_us"] == plain.us(w.get("ram_start"), w.get("ram_end"))
        assert g["flush_pages"] == w.pages
        assert g["flush_us"] == plain.us(w.get("flush_begin"), w.get("flush_end"))
        assert g["device_load_us"] == plain.us(w.get("flush_end"), w.get("resume"))
        assert g["completed"] == ("loaded" in w.times)
        parts = [g[k] for k in ("wait_us", "ram_load_us", "receive_us", "flush_us", "device_load_us")]
        if None not in parts and g["pause_us"] is not None:
            assert sum(parts) == pytest.approx(g["pause_us"])  # the parts tile the pause


@pytest.mark.parametrize("run", RUNS)
def test_primary_checkpoints_and_dirty_pages_match_the_lines(run: str) -> None:
    colo = plain.of_thread(lines(run, "src"), plain.busiest_colo_thread(lines(run, "src")))
    want = plain.walk_primary(colo)
    got = proc(run, "primary")["checkpoints"]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g["request_ns"] == w.request
        assert g["pause_us"] == plain.us(w.get("stop"), w.get("resume"))
        assert g["duration_us"] == plain.us(w.request, w.get("loaded"))
        assert g["dirty_pages"] == w.pages
        assert g["completed"] == ("loaded" in w.times)


@pytest.mark.parametrize("run", RUNS)
def test_summary_matches_the_plain_pauses(run: str) -> None:
    for role, side, walker in (
        ("secondary", "dst", plain.walk_secondary),
        ("primary", "src", plain.walk_primary),
    ):
        colo = plain.of_thread(lines(run, side), plain.busiest_colo_thread(lines(run, side)))
        cps = walker(colo)
        pauses = [plain.us(c.get("stop"), c.get("resume")) for c in cps]
        known = np.array([p for p in pauses if p is not None])
        s = proc(run, role)["summary"]
        assert s["checkpoints"] == len(cps)
        assert s["completed"] == sum("loaded" in c.times for c in cps)
        assert s["pause_p50_us"] == pytest.approx(float(np.median(known)))
        assert s["pause_max_us"] == pytest.approx(float(known.max()))
        assert s["pause_total_us"] == pytest.approx(float(known.sum()))
        assert 0 < s["paused_fraction"] < 1


def test_72_last_secondary_checkpoint_is_cut_in_device_load_by_the_failover() -> None:
    dst = lines("7.2", "dst")
    asked = next(x for x in dst if x.name == "qmp_enter_x_colo_lost_heartbeat")
    colo = plain.of_thread(dst, plain.busiest_colo_thread(dst))
    last = plain.walk_secondary(colo)[-1]
    assert "loaded" not in last.times
    assert last.times["flush_end"] < asked.ns < last.times["resume"]  # device load under way
    got = proc("7.2", "secondary")["checkpoints"][-1]
    assert (got["completed"], got["cut_in"], got["cut_by"], got["end_ns"]) == (
        False,
        "device-load",
        "failover",
        asked.ns,
    )


def test_72_primary_checkpoints_after_the_secondary_left() -> None:
    src = lines("7.2", "src")
    colo = plain.of_thread(src, plain.busiest_colo_thread(src))
    closed = next(x for x in colo if x.name == "qemu_file_fclose" and x.ns > colo[0].ns)
    got = proc("7.2", "primary")["checkpoints"]
    # The 15th never got 'vmstate-loaded' and the VM stayed stopped: the 16th request cut it.
    assert (got[-2]["cut_by"], got[-2]["cut_in"], got[-2]["resume_ns"]) == (
        "next-checkpoint",
        "wait-loaded",
        None,
    )
    assert (got[-1]["cut_by"], got[-1]["cut_in"], got[-1]["end_ns"]) == (
        "channel-closed",
        "wait-reply",
        closed.ns,
    )
    assert got[-1]["pause_us"] is None and got[-1]["dirty_pages"] is None


@pytest.mark.parametrize("run", RUNS)
def test_checkpoints_pair_with_the_request_that_was_sent_before_each_receive(run: str) -> None:
    sec, pri = proc(run, "secondary")["checkpoints"], proc(run, "primary")["checkpoints"]
    sent = [x.ns for x in lines(run, "src") if plain.msg(x, "Send", "checkpoint-request")]
    got = [x.ns for x in lines(run, "dst") if plain.msg(x, "Receive", "checkpoint-request")]
    # Every request received was sent once, in order: the k-th receive is the k-th send.
    assert len(got) <= len(sent)
    assert [c["peer"] for c in sec] == list(range(1, len(got) + 1))
    assert [c["peer"] for c in pri] == [*range(1, len(got) + 1), *[None] * (len(sent) - len(got))]
    assert all(abs(r - s) < 50_000_000 for s, r in zip(sent, got, strict=False))
    assert doc_of(run)["alignment"]["method"] == "same-clock"


# ---------------------------------------------------------------------------------- BQL
@pytest.mark.parametrize("run", RUNS)
def test_bql_per_checkpoint_matches_the_mutex_lines(run: str) -> None:
    dst = lines(run, "dst")
    colo_tid = plain.busiest_colo_thread(dst)
    addr = plain.bql_address(dst)
    holds = [
        (s, e)
        for t, s, e in plain.intervals(dst, addr, "qemu_mutex_locked", "qemu_mutex_unlock")
        if t == colo_tid
    ]
    waits = [
        (s, e)
        for t, s, e in plain.intervals(dst, addr, "qemu_mutex_lock", "qemu_mutex_locked")
        if t != colo_tid
    ]
    assert holds and waits
    for c in proc(run, "secondary")["checkpoints"]:
        a, b = c["request_ns"], c["end_ns"]
        assert c["bql_hold_us"] == pytest.approx(plain.clipped_us(holds, a, b), abs=1e-3), c["index"]
        assert c["bql_wait_us"] == pytest.approx(plain.clipped_us(waits, a, b), abs=1e-3), c["index"]


# ---------------------------------------------------------------------------------- failover
@pytest.mark.parametrize("run", RUNS)
def test_failover_states_and_who_asked(run: str) -> None:
    for role, side in (("secondary", "dst"), ("primary", "src")):
        ls = lines(run, side)
        start = next(x.ns for x in ls if x.name == "migrate_set_state" and x.args == "new state colo")
        states = sorted(
            ((x.ns, x.args.removeprefix("new state ")) for x in ls if x.name == "colo_failover_set_state"),
            key=lambda v: v[0],
        )
        asked = next(x for x in ls if x.name == "qmp_enter_x_colo_lost_heartbeat")
        f = proc(run, role)["failover"]
        assert [(s["ts_ns"], s["state"]) for s in f["states"]] == [s for s in states if s[0] > start]
        assert (f["requested_by"], f["request_ns"]) == ("x-colo-lost-heartbeat", asked.ns)
        assert f["request_thread"]["tid"] == asked.tid
        assert f["final_state"] == states[-1][1] == "completed"
        last_state = [x.args for x in ls if x.name == "migrate_set_state"][-1]
        assert f["migration_state"] == last_state.removeprefix("new state ")
    during = {"7.2": ("device-load", 15), "threadify": ("idle", None)}[run]
    f = proc(run, "secondary")["failover"]
    assert (f["during"], f["checkpoint"]) == during
    assert doc_of(run)["failover"]["state"] == "completed"


def test_72_relaunch_is_explained() -> None:
    notes = proc("7.2", "secondary")["notes"]
    assert any("relaunch" in n and "checkpoint 15" in n for n in notes)
    assert any("channel closed before failover" in n for n in proc("7.2", "primary")["notes"])


# ---------------------------------------------------------------------------------- the initial migration
@pytest.mark.parametrize("run", RUNS)
def test_initial_migration_ends_where_colo_starts(run: str) -> None:
    trace = trace_72() if run == "7.2" else trace_tfy()
    dst = lines(run, "dst")
    colo_at = next(x.ns for x in dst if x.name == "migrate_set_state" and x.args == "new state colo")
    load_tid = next(x.tid for x in dst if x.name == "loadvm_state_setup")
    load = plain.of_thread(dst, load_tid)
    last_full = max(i for i, x in enumerate(load) if x.name.endswith("startfull") and x.ns < colo_at)
    done = next(
        x.ns
        for x in load[last_full:]
        if x.name in ("qemu_loadvm_state_section", "qemu_loadvm_state_post_main")
    )
    ph = {p["name"]: p for p in tracetool.analyze_phases(trace).to_json()["phases"]}
    assert ph["incoming"]["end_ns"] == colo_at and ph["incoming"]["closed"]
    assert ph["devices"]["closed"] and ph["devices"]["end_ns"] == done < colo_at
    assert ph["colo"]["start_ns"] == colo_at
    im = proc(run, "secondary")["initial_migration"]
    assert (im["phase"], im["end_ns"]) == ("incoming", colo_at)
    assert doc_of(run)["time_zero_ns"] == colo_at


@pytest.mark.parametrize("run", RUNS)
def test_first_checkpoint_flushes_the_whole_cache_and_is_called_out(run: str) -> None:
    colo = plain.of_thread(lines(run, "dst"), plain.busiest_colo_thread(lines(run, "dst")))
    first, *rest = plain.walk_secondary(colo)
    assert first.pages is not None and all(first.pages > 10 * (c.pages or 0) for c in rest)
    note = next(n for n in proc(run, "secondary")["notes"] if n.startswith("checkpoint 1 flushes"))
    assert f"{first.pages:,} pages" in note
    assert f"paused {plain.us(first.get('stop'), first.get('resume')) / 1000:.1f} ms" in note  # type: ignore[operator]


# ---------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("run", RUNS)
def test_cli_text_fits_100_columns_and_names_its_time_zero(run: str) -> None:
    r = run_cli("colo", *(args_72() if run == "7.2" else args_tfy()), "--strict")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0].startswith("times: seconds since the first event of the trace")
    assert out[1].startswith("COLO started on dst (migrate_set_state colo) at ")
    assert max(len(x.rstrip()) for x in out) <= 100
    assert "checkpoints" in r.stdout and "Failover of dst (secondary)" in r.stdout


def test_cli_json_is_the_analysis_document() -> None:
    r = run_cli("colo", *args_72(), "-f", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc == json.loads(json.dumps(doc_of("7.2")))
    keys = set(doc["processes"][0]["checkpoints"][0])
    assert {"index", "request_ns", "stop_ns", "resume_ns", "pause_us", "ram_load_us", "flush_pages"} <= keys
    assert {"flush_us", "device_load_us", "bql_hold_us", "bql_wait_us", "completed", "cut_in"} <= keys


def test_cli_on_a_trace_without_colo_says_what_to_enable() -> None:
    path = sample("qemu-7.2", "a-precopy-plain", "dst.trace.xz")
    r = run_cli("colo", path)
    assert r.returncode == 0 and "not in this trace" in r.stdout and "colo_*" in r.stdout
    doc = json.loads(run_cli("colo", path, "-f", "json").stdout)
    assert doc["processes"] == [] and doc["failover"] is None


def test_events_for_colo_lists_the_colo_events() -> None:
    r = run_cli("events", "--for", "colo")
    assert r.returncode == 0
    patterns = [x for x in r.stdout.splitlines() if x and not x.startswith("#")]
    assert {"colo_send_message", "colo_receive_message", "colo_flush_ram_cache_*"} <= set(patterns)


# ---------------------------------------------------------------------------------- check, compare, report
def test_check_metrics_read_the_colo_document() -> None:
    colo = plain.of_thread(lines("7.2", "dst"), plain.busiest_colo_thread(lines("7.2", "dst")))
    cps = plain.walk_secondary(colo)
    pauses = [p for c in cps if (p := plain.us(c.get("stop"), c.get("resume"))) is not None]
    flush = max(p for c in cps if (p := plain.us(c.get("flush_begin"), c.get("flush_end"))) is not None)
    done = sum("loaded" in c.times for c in cps)
    rules = [
        f"colo.checkpoints{{side=secondary}} == {len(cps)}",
        f"colo.completed{{process=dst}} == {done}",
        f"colo.pause.max{{side=secondary}} <= {max(pauses) + 1}us",
        f"colo.pause.max{{side=secondary}} >= {max(pauses) - 1}us",
        f"colo.flush.max{{side=secondary}} >= {flush - 1}us",
        f"colo.flush.max{{side=secondary}} <= {flush + 1}us",
        "colo.failover == completed",
        "colo.failover.during == device-load",
    ]
    report = tracetool.check_trace(trace_72(), rules)
    assert report.ok, [str(r) for r in report.results]
    bad = tracetool.check_trace(trace_72(), f"colo.checkpoints{{side=secondary}} == {len(cps) + 1}")
    assert not bad.ok


def test_check_on_a_trace_without_colo_is_not_measurable() -> None:
    trace = tracetool.load(sample("qemu-7.2", "a-precopy-plain", "dst.trace.xz"))
    report = tracetool.check_trace(trace, "colo.pause.max < 1s")
    assert not report.ok and "colo_send_message" in str(report.results[0])


@pytest.mark.slow
def test_compare_two_colo_runs() -> None:
    cmp = tracetool.compare(trace_72(), trace_tfy(), labels=("7.2", "threadify"))
    rows = {d["name"]: d for d in cmp.to_json()["colo"]}
    for name, run in (("before", "7.2"), ("after", "threadify")):
        colo = plain.of_thread(lines(run, "dst"), plain.busiest_colo_thread(lines(run, "dst")))
        cps = plain.walk_secondary(colo)
        pauses = [p for c in cps if (p := plain.us(c.get("stop"), c.get("resume"))) is not None]
        assert rows["pause p50"][name] == pytest.approx(float(np.median(pauses)))
        assert rows["pause max"][name] == pytest.approx(max(pauses))
        assert rows["checkpoints"][name] == len(cps)
    before = [a.replace("--threads", "--before-threads") for a in args_72()]
    after = [a.replace("--threads", "--after-threads") for a in args_tfy()]
    r = run_cli("compare", *before, "--", *after, "-f", "md")
    assert r.returncode == 0, r.stderr
    assert "COLO checkpoints" in r.stdout and "pause p50" in r.stdout


@pytest.mark.slow
def test_report_has_the_colo_section() -> None:
    r = run_cli("report", *args_72(), "-f", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert list(doc)[-2:] == ["colo", "notes"]
    assert doc["colo"] == json.loads(json.dumps(doc_of("7.2")))
    md = run_cli("report", *args_72(), "-f", "md").stdout
    assert "### COLO checkpoints and failover" in md and "cut in" in md


def test_colo_thread_names_give_the_colo_role() -> None:
    from tracetool._model.threads import role_from_name

    assert role_from_name("COLO incoming") == role_from_name("mig/dst/colo") == "colo"
    assert role_from_name("mig/dst/main") == "load"


def test_bql_time_inside_any_window_matches_the_mutex_lines() -> None:
    """Windows that cut holds and waits at both edges (each hold's middle to the next's)."""
    from tracetool._analyses.colo.bqlclip import Intervals

    dst = lines("7.2", "dst")
    colo_tid = plain.busiest_colo_thread(dst)
    addr = plain.bql_address(dst)
    holds = [
        (s, e)
        for t, s, e in plain.intervals(dst, addr, "qemu_mutex_locked", "qemu_mutex_unlock")
        if t == colo_tid
    ]
    iv = Intervals.of(np.array([s for s, _ in holds]), np.array([e for _, e in holds]))
    mids = [(s + e) // 2 for s, e in holds]
    for a, b in zip(mids[:-1:7], mids[3::7], strict=False):
        assert iv.inside(a, b) / 1000.0 == pytest.approx(plain.clipped_us(holds, a, b), abs=1e-3)
    assert iv.inside(mids[0], mids[0]) == 0


@pytest.mark.parametrize("with_mutex_events", [True, False])
def test_checkpoint_tables_have_bql_columns_only_with_mutex_events(
    tmp_path: Path, with_mutex_events: bool
) -> None:
    files = []
    for side in ("dst", "src"):
        kept = [
            line
            for line in read_lines(sample(*R72, f"{side}.trace.xz"))
            if with_mutex_events or b":qemu_mutex_" not in line
        ]
        path = tmp_path / f"{side}.trace"
        path.write_bytes(b"\n".join(kept) + b"\n")
        files.append(str(path))
    r = run_cli("colo", *files, *args_72()[2:])
    assert r.returncode == 0, r.stderr
    headers = [x.split() for x in r.stdout.splitlines() if x.split()[:3] == ["#", "at", "s"]]
    assert len(headers) == 2  # the secondary's table and the primary's
    for h in headers:
        assert ("BQL" in h and "waits" in h) is with_mutex_events
    assert ("BQL and waits per checkpoint: not in this trace" in r.stdout) is not with_mutex_events
