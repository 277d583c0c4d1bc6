"""``migtrace compare``: QEMU 7.2 against the threaded load on the same scenario, in every
format, and the pieces it is made of (thread matching, deltas, the BEFORE -- AFTER split)."""

from __future__ import annotations

import io
import json
from functools import cache
from pathlib import Path

import pytest

from reports.compare import (
    compare_html,
    compare_markdown,
    compare_sections,
    compare_text,
    fmt_change,
    fmt_relative,
)
from reports.console import console
from reports.html import compare_figures
from tests.test_report_data import MUTEX_72, MUTEX_THREADIFY, mutex_72, mutex_threadify
from tests.test_report_formats import ALLOWED_TAGS, Page, md_tables
from tracetool._analyses.compare import compare, match_threads
from tracetool._analyses.comparison import Comparison, Delta, ThreadRef, load_thread_label
from tracetool.cli.main import app
from tracetool.errors import UsageError

LOAD_MOVE = "load thread: main (coroutine) → mig/dst/main"


@cache
def showcase() -> Comparison:
    return compare(mutex_72(), mutex_threadify(), ("QEMU 7.2", "threadify"))


# ---------------------------------------------------------------------------------- analysis
def test_72_vs_threadify_shows_the_load_moving_off_the_main_thread() -> None:
    cmp = showcase()
    assert cmp.load_move == "main (coroutine) → mig/dst/main"
    load = cmp.bql_load
    assert load is not None and load.before is not None and load.after is not None
    assert (load.before.role, load.before.tid) == ("main", 30905)
    assert (load.after.name, load.after.role, load.after.tid) == ("mig/dst/main", "load", 22774)
    held = load.metric("hold_total_us")
    b, a = mutex_72().bql, mutex_threadify().bql
    assert b is not None and a is not None and b.primary is not None and a.primary is not None
    tb, ta = b.primary.threads, a.primary.threads
    assert held.before == tb[tb["tid"] == 30905]["hold_total_us"].iloc[0]
    assert held.after == ta[ta["tid"] == 22774]["hold_total_us"].iloc[0]
    assert held.change is not None and held.change < 0 and held.relative is not None
    precopy = next(p for p in cmp.phases if p.delta.name == "precopy")
    assert precopy.before_thread == "qemu-system-x86 (30905)"
    assert precopy.after_thread == "mig/dst/main (22774)"


def test_threads_are_matched_by_role_then_name() -> None:
    pairs = {t.role: t for t in showcase().bql_threads}
    assert pairs["main"].matched_by == "role+name"
    assert pairs["main"].before is not None and pairs["main"].before.tid == 30905
    assert pairs["main"].after is not None and pairs["main"].after.tid == 22760
    assert pairs["vcpu"].before is not None and pairs["vcpu"].before.name == "CPU 0/TCG"
    # the 7.2 load has no thread of its own: its row is only on the threadify side
    assert pairs["load"].before is None and pairs["load"].matched_by == "unmatched"


def ref(name: str | None, role: str, tid: int) -> tuple[ThreadRef, dict[str, float]]:
    stats = {
        m: float(tid)
        for m in (
            "holds",
            "hold_total_us",
            "hold_max_us",
            "hold_p50_us",
            "hold_p99_us",
            "waits",
            "wait_total_us",
            "wait_max_us",
        )
    }
    return ThreadRef(tid, name, role, False), stats


def test_matching_prefers_equal_names_within_a_role_and_keeps_the_unmatched() -> None:
    before = [ref("CPU 0/TCG", "vcpu", 1), ref("CPU 1/TCG", "vcpu", 2), ref("IO x", "other", 3)]
    after = [ref("CPU 1/TCG", "vcpu", 11), ref("CPU 0/TCG", "vcpu", 10), ref(None, "vcpu", 12)]
    got = [
        (p.before.tid if p.before else None, p.after.tid if p.after else None, p.matched_by)
        for p in match_threads(before, after)
    ]
    assert got == [
        (1, 10, "role+name"),
        (2, 11, "role+name"),
        (None, 12, "unmatched"),
        (3, None, "unmatched"),
    ]


def test_deltas_and_their_formatting() -> None:
    d = Delta("x", 2000.0, 500.0)
    assert (d.change, d.relative) == (-1500.0, -0.75)
    assert fmt_change(d.to_json()) == "-1.50 ms" and fmt_relative(d.to_json()) == "-75.0%"
    new = Delta("y", None, 10.0).to_json()
    assert (fmt_change(new), fmt_relative(new)) == ("new", "-")
    assert fmt_change(Delta("z", 3.0, None).to_json()) == "gone"
    assert Delta("zero", 0.0, 5.0).relative is None


def test_load_thread_labels() -> None:
    assert load_thread_label({"tid": 1, "name": "qemu-system-x86", "role": "main"}) == "main (coroutine)"
    assert load_thread_label({"tid": 7, "name": "mig/dst/main", "role": "load"}) == "mig/dst/main"
    assert load_thread_label({"tid": 7, "name": "<load>", "role": "load"}) == "load thread (7)"
    assert load_thread_label(None) == "unknown"


# ---------------------------------------------------------------------------------- formats
def test_every_format_states_the_load_move_and_the_bql_table() -> None:
    cmp = showcase()
    buf = io.StringIO()
    compare_text(cmp, console(buf))
    text = buf.getvalue()
    md = compare_markdown(cmp)
    doc = json.loads(json.dumps(cmp.to_json(), allow_nan=False))
    assert LOAD_MOVE in text and LOAD_MOVE in md
    assert doc["load_thread"] == {
        "before": "main (coroutine)",
        "after": "mig/dst/main",
        "moved": True,
        "text": "main (coroutine) → mig/dst/main",
    }
    bql = next(t for t in md_tables(md) if t[0][0] == "role")
    rows = {r[0]: r for r in bql[2:]}
    assert rows["main"][1] == "qemu-system-x86 (30905, load)"
    assert rows["load"][1] == "(load ran on the main thread)"
    assert rows["load"][2] == "mig/dst/main (22774, load)"
    assert "mig/dst/main (22774, load)" in text
    page = Page(compare_html(cmp))
    assert {t for t, _ in page.tags} <= ALLOWED_TAGS
    assert LOAD_MOVE in " ".join(page.text)
    assert [s.key for s in compare_sections(doc)] == ["summary", "phases", "bql", "preempt", "downtime"]


def test_html_comparison_embeds_the_paired_figure() -> None:
    pytest.importorskip("reports.plots.common")
    cmp = showcase()
    figures, notes = compare_figures(cmp, mutex_72(), mutex_threadify())
    assert notes == []
    page = Page(compare_html(cmp, figures, notes))
    imgs = page.all("img")
    assert len(imgs) == 1 and (imgs[0]["src"] or "").startswith("data:image/")
    assert "QEMU 7.2 vs threadify" in (imgs[0]["alt"] or "")


# ---------------------------------------------------------------------------------- CLI
def test_cli_splits_before_and_after_at_the_double_dash(tmp_path: Path) -> None:
    out = tmp_path / "cmp.md"
    app(
        [
            "compare",
            str(MUTEX_72 / "dst.trace.xz"),
            "--before-threads",
            str(MUTEX_72 / "dst-threads.json"),
            "--",
            str(MUTEX_THREADIFY / "dst.*.trace.xz"),
            "--after-threads",
            str(MUTEX_THREADIFY / "dst-threads.json"),
            "-o",
            str(out),
        ],
        standalone_mode=False,
    )
    md = out.read_text()
    assert f"**{LOAD_MOVE}**" in md
    assert f"before: {MUTEX_72 / 'dst.trace.xz'}" in md
    assert "after: " + str(MUTEX_THREADIFY / "dst.*.trace.xz").replace("*", "\\*") in md


def test_cli_needs_both_sides() -> None:
    with pytest.raises(UsageError, match="needs traces on both sides"):
        app(["compare", str(MUTEX_72 / "dst.trace.xz")], standalone_mode=False)


def test_side_labels_are_escaped_in_text_and_in_attributes() -> None:
    pytest.importorskip("reports.plots.common")
    evil = '7.2" onload="x" <script>|`'
    cmp = compare(mutex_72(), mutex_threadify(), (evil, "after"))
    figures, _ = compare_figures(cmp, mutex_72(), mutex_threadify())
    html = compare_html(cmp, figures)
    assert "<script" not in html
    page = Page(html)
    assert {t for t, _ in page.tags} <= ALLOWED_TAGS
    img = page.all("img")[0]
    assert set(img) == {"src", "alt"} and evil in (img["alt"] or "")
    md = compare_markdown(cmp)
    assert all(len(r) == len(t[0]) for t in md_tables(md) for r in t)
