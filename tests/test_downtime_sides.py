"""Figures that need both sides: the outcome of a migration whose destination died, multifd page
totals the destination does not trace, and the downtime in reports and comparisons."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

import tracetool
from reports.markdown import report_markdown
from tests.conftest import read_lines, run_cli, sample
from tests.test_downtime import QEMU72_E, THREADIFY_E, loaded, plain_window

F3 = "qemu-7.2/f3-postcopy-dst-killed"


def f3_pid_and_times() -> tuple[str, float]:
    """The destination's pid prefix and the time of its last line (plain reading)."""
    last = b""
    for line in read_lines(sample(F3, "dst.trace.xz")):
        if b"@" in line:
            last = line
    pid, rest = last.split(b"@", 1)
    return pid.decode(), float(rest.split(b":", 1)[0])


def synth_source(path: Path, states: list[str]) -> None:
    """A source log shaped like QEMU 7.2's (edge case: the shared f3 run kept no source trace):
    the migration starts, goes to postcopy, then ends in ``states``."""
    _, t = f3_pid_and_times()
    lines = [
        f"4242@{t - 3.0:.6f}:savevm_state_setup ",
        f"4242@{t - 2.9:.6f}:migrate_set_state new state active",
    ]
    lines.append(f"4242@{t - 1.0:.6f}:migrate_set_state new state postcopy-active")
    lines += [f"4242@{t + 0.5 + k / 10:.6f}:migrate_set_state new state {s}" for k, s in enumerate(states)]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(("states", "outcome"), [(["failed"], "failed"), (["postcopy-paused"], "paused")])
def test_outcome_of_a_killed_destination_comes_from_the_source(
    tmp_path: Path, states: list[str], outcome: str
) -> None:
    alone = tracetool.analyze_phases(tracetool.load([sample(F3, "dst.trace.xz")]))
    assert alone.outcome == "incomplete"
    src = tmp_path / "src.trace"
    synth_source(src, states)
    r = tracetool.analyze_phases(tracetool.load([str(src), sample(F3, "dst.trace.xz")]))
    assert r.outcome == outcome
    doc = r.to_json()
    assert doc["outcome_sides"]["src"] == {"state": states[-1], "outcome": outcome, "from": "trace"}
    assert doc["outcome_sides"]["dst"]["state"] == "postcopy-active"
    assert any(f"source: it said '{states[-1]}'" in n and "'postcopy-active'" in n for n in r.notes)


def test_source_state_from_query_migrate_when_there_is_no_source_trace() -> None:
    q = tracetool.load_query_migrate(sample(F3, "query-migrate.json"))
    r = tracetool.analyze_phases(tracetool.load([sample(F3, "dst.trace.xz")]), q)
    expected = json.loads(Path(sample(F3, "query-migrate.json")).read_text())["source"]["status"]
    assert expected == "postcopy-paused"  # the postcopy channel broke when the destination died
    assert r.to_json()["outcome_sides"]["src"] == {
        "state": expected,
        "outcome": "paused",
        "from": "query-migrate",
    }
    # The destination's trace just stops, so the source's final state decides, as with its trace.
    assert r.outcome == "paused"
    assert any("source: it said 'postcopy-paused'" in n for n in r.notes)


def synth_multifd_10x(folder: Path, channels: int, packets: int) -> tuple[int, int]:
    """Both sides of a multifd migration shaped like QEMU 10.x (edge case: no recorded 10.x
    multifd run): the destination's packets carry no page counts, the source's fill events do.
    Returns the (normal, zero) pages written into the source's lines."""
    t0 = 1795694400.0
    src = [f"{t0:.6f} savevm_state_setup "]
    dst = [f"{t0:.6f} loadvm_state_setup "]
    normal = zero = 0
    for c in range(channels):
        for p in range(packets):
            n, z = 100 + 7 * c + p, 3 * p + c
            normal, zero = normal + n, zero + z
            t = t0 + 0.001 * (c * packets + p + 1)
            src.append(f"{t:.6f} multifd_send_ram_fill channel {c} normal pages {n} zero pages {z}")
            unfill = f"multifd_recv_unfill channel {c} packet_num {p} flags 0x0 next packet size 0"
            dst.append(f"{t + 0.0005:.6f} {unfill}")

    def iso(line: str) -> str:
        sec, rest = line.split(" ", 1)
        whole, frac = sec.split(".")
        from datetime import UTC, datetime

        stamp = datetime.fromtimestamp(int(whole), UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{stamp}.{frac}Z {rest}"

    (folder / "src.trace").write_text("\n".join(iso(x) for x in src) + "\n")
    (folder / "dst.trace").write_text("\n".join(iso(x) for x in dst) + "\n")
    return normal, zero


def test_multifd_page_totals_come_from_the_source_when_the_destination_has_none(tmp_path: Path) -> None:
    normal, zero = synth_multifd_10x(tmp_path, channels=2, packets=5)
    dst_only = tracetool.analyze_phases(tracetool.load([str(tmp_path / "dst.trace")]))
    assert dst_only.ram["normal_pages"] is None and dst_only.ram["pages_from"] is None
    r = tracetool.analyze_phases(tracetool.load([str(tmp_path / "src.trace"), str(tmp_path / "dst.trace")]))
    assert r.multifd.present and all(c["pages"] is None for c in r.multifd.channels)
    assert (r.ram["normal_pages"], r.ram["zero_pages"]) == (normal, zero)
    assert r.ram["pages"] == normal + zero and r.ram["pages_from"] == "source"


# ---------------------------------------------------------------------------------- reports
@cache
def report_of(folder: str) -> tracetool.ReportData:
    return tracetool.collect(loaded(folder))


def test_report_downtime_section_is_the_end_to_end_analysis() -> None:
    data = report_of(THREADIFY_E)
    doc = data.document("downtime")
    start, _, end = plain_window(THREADIFY_E)
    assert doc["end_to_end_us"] == (end - start) / 1000.0
    # What the section showed before is kept: the switchover and total time from both ends.
    assert {"src_us", "dst_us", "end_to_end_us", "qemu_reported_ms"} <= set(doc["switchover"])
    assert {"src_us", "dst_us", "qemu_reported_ms"} <= set(doc["total_time"])
    md = report_markdown(data)
    assert "guest paused end to end: 113.56 ms" in md and "Critical path" in md


def test_compare_puts_the_pause_and_its_critical_path_side_by_side() -> None:
    cmp = tracetool.compare(report_of(QEMU72_E), report_of(THREADIFY_E), labels=("7.2", "threadify"))
    doc = cmp.to_json()
    rows = {d["name"]: d for d in doc["downtime"]}
    for side, folder in (("before", QEMU72_E), ("after", THREADIFY_E)):
        start, _, end = plain_window(folder)
        assert rows["guest paused end to end"][side] == (end - start) / 1000.0
        steps = [d[side] for d in doc["critical_path"] if d[side] is not None]
        assert sum(steps) == pytest.approx((end - start) / 1000.0)


# ---------------------------------------------------------------------------------- figure
def test_downtime_figure_draws_every_critical_step_and_refuses_one_side() -> None:
    from reports.plots.downtime import downtime_figure
    from tests.test_downtime import THREADIFY_D, analysed

    r = analysed(THREADIFY_D)
    fig = downtime_figure(r)
    ax = fig.axes[0]
    critical = [c for c in ax.collections if c.get_gid() == "critical"]
    assert len(critical) == len(r.critical_path)
    assert {c.get_gid() for c in ax.collections} >= {"lane-src", "lane-dst", "critical"}
    assert "91.65 ms end to end" in ax.get_title(loc="left")
    with pytest.raises(tracetool.NotInTrace, match="not in this trace"):
        downtime_figure(tracetool.analyze_downtime(tracetool.load([sample(F3, "dst.trace.xz")])))


SEGV = "qemu-7.2/i-multifd-dst-segfault"
COMMANDS = ("summary", "phases", "bql", "preempt", "downtime", "timeline", "colo", "report")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_destination_killed_during_setup_breaks_no_command(command: str) -> None:
    r = run_cli(command, sample(SEGV))
    assert r.returncode == 0, r.stderr
    assert "internal error" not in r.stderr and r.stdout


def test_a_destination_killed_during_setup_is_said_so() -> None:
    # Real: QEMU 7.2's destination, told of 2 multifd channels, dies when the source's third
    # connects; its trace's last line is that channel's arrival.
    *_, last = read_lines(sample(SEGV, "dst.trace.xz"))
    assert last.endswith(b":multifd_recv_new_channel channel 2")
    down = json.loads(run_cli("downtime", sample(SEGV), "--format", "json").stdout)
    assert down["end_to_end_us"] is None and down["critical_path"] == []
    assert any("killed by signal 11 (SIGSEGV)" in n for n in down["notes"]), down["notes"]
    phases = json.loads(run_cli("phases", sample(SEGV), "--format", "json").stdout)
    assert phases["qemu_status"] == {"src": "failed", "dst": "setup", "agrees": True}
    assert any("destination QEMU was killed by signal 11 (SIGSEGV)" in n for n in phases["notes"])
    channels = {c["id"]: c for c in phases["multifd"]["channels"]}
    assert channels[2]["tid"] is None and channels[0]["tid"] is not None
    assert "unclosed" not in phases["issue_counts"]
