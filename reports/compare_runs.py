"""Rendering ``migtrace compare`` over several runs per side, in every report format.

:func:`runs_sections` turns ``RunsComparison.to_json()`` into the format-neutral blocks of
:mod:`reports.report_text`: the headline metrics in one line each (median and quartiles per
side, the shift with its 95 % interval, p and the verdict), a table of every compared metric,
every run's value of the headline metrics, and what could not be measured. The text, Markdown
and HTML outputs render those blocks, so they show the same figures as the JSON.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console

from reports.blocks import Section
from reports.console import fmt_us
from reports.html import FOOTER, EmbeddedFigure, embed, render_html
from reports.markdown import render_markdown
from reports.report_json import to_json_text
from reports.report_text import render_text
from tracetool._check.repeats import RunsComparison

TITLE = "migtrace compare"
SIGNIFICANT = "significant"
NO_CHANGE = "no significant change"
TOO_FEW = "too few runs"


def fmt_metric_value(v: float | None, unit: str) -> str:
    """A value in the metric's unit: a duration, a count or a plain number."""
    if v is None:
        return "-"
    if unit == "us":
        return fmt_us(abs(v)) if v >= 0 else "-" + fmt_us(-v)
    if unit == "count":
        return f"{v:,.0f}"
    return f"{v:.3g}"


def fmt_shift(v: float | None, unit: str) -> str:
    """A signed change."""
    if v is None:
        return "-"
    sign = "+" if v > 0 else ("-" if v < 0 else "±")
    return sign + fmt_metric_value(abs(v), unit)


def fmt_interval(change: Mapping[str, Any], unit: str) -> str:
    """``[-12.0 ms, +3.1 ms]``, or ``unbounded`` when the runs cannot bound it."""
    low, high = change["ci_low"], change["ci_high"]
    if change["shift"] is None:
        return "-"
    if low is None or high is None:
        return "unbounded"
    return f"[{fmt_shift(low, unit)}, {fmt_shift(high, unit)}]"


def fmt_p(p: float | None) -> str:
    """A p-value with two significant digits."""
    return "-" if p is None else f"{p:.2g}"


def verdict(change: Mapping[str, Any]) -> str:
    """``significant``, ``no significant change`` or ``too few runs`` (or ``-``)."""
    if change["shift"] is None:
        return "-"
    if change["significant"]:
        return SIGNIFICANT
    note = change.get("note") or ""
    return TOO_FEW if note.startswith("too few runs") else NO_CHANGE


def fmt_quartiles(s: Mapping[str, Any], unit: str) -> str:
    """``133.88–166.07 ms``: the quartiles, the unit written once when both share it."""
    if s["n"] < 2:
        return "-"
    q1, q3 = fmt_metric_value(s["q1"], unit), fmt_metric_value(s["q3"], unit)
    a, _, ua = q1.rpartition(" ")
    b, _, ub = q3.rpartition(" ")
    if a and b and ua == ub:
        return f"{a}–{b} {ua}"
    return f"{q1}–{q3}"


def fmt_n(m: Mapping[str, Any]) -> str:
    """Runs with a value per side: ``3/3``."""
    return f"{m['before']['n']}/{m['after']['n']}"


def headline_line(m: Mapping[str, Any]) -> str:
    """One headline metric in a line: the medians, the shift, p and the verdict."""
    unit, ch = m["unit"], m["change"]
    medians = (
        f"{fmt_metric_value(m['before']['median'], unit)} → {fmt_metric_value(m['after']['median'], unit)}"
    )
    if ch["shift"] is None:
        return f"{m['metric']}: {medians} (n {fmt_n(m)})"
    rel = "" if ch["relative"] is None else f" ({100 * ch['relative']:+.1f}%)"
    return (
        f"{m['metric']}: {medians}, shift {fmt_shift(ch['shift'], unit)}{rel}, "
        f"p = {fmt_p(ch['p_value'])}: {verdict(ch)}"
    )


REASON_SHOWN = 64


def runs_sections(doc: Mapping[str, Any]) -> list[Section]:
    """The sections of a several-runs comparison from ``RunsComparison.to_json()``."""
    b, a = doc["before"], doc["after"]
    measured = [m for m in doc["metrics"] if m["before"]["n"] or m["after"]["n"]]
    head = Section("summary", "Compared")
    head.add(
        f"{len(b['runs'])} runs of {b['label']} (before) against {len(a['runs'])} of {a['label']} (after)"
    )
    head.add(
        "per side: median and quartiles; change: Hodges-Lehmann shift (after - before) with its "
        "95 % Mann-Whitney interval and p-value; significant: p < 0.05 and the interval excludes 0",
        "note",
    )
    for m in doc["metrics"]:
        if m["headline"] and (m["before"]["n"] or m["after"]["n"]):
            head.add(headline_line(m), "headline")
    notes = sorted(
        {m["change"]["note"] for m in measured if (m["change"]["note"] or "").startswith("too few")}
    )
    for note in notes:
        head.add(note, "note")

    table = Section("metrics", "Metrics")
    table.add_table(
        f"Per side (before = {b['label']}, after = {a['label']})",
        ["metric", "before", "q1–q3", "after", "q1–q3", "n"],
        [
            [
                m["metric"],
                fmt_metric_value(m["before"]["median"], m["unit"]),
                fmt_quartiles(m["before"], m["unit"]),
                fmt_metric_value(m["after"]["median"], m["unit"]),
                fmt_quartiles(m["after"], m["unit"]),
                fmt_n(m),
            ]
            for m in measured
        ],
        right=["before", "q1–q3", "after", "n"],
    )
    table.add_table(
        "Change (after - before)",
        ["metric", "shift", "95 % interval", "change", "p", "verdict"],
        [
            [
                m["metric"],
                fmt_shift(m["change"]["shift"], m["unit"]),
                fmt_interval(m["change"], m["unit"]),
                "-" if m["change"]["relative"] is None else f"{100 * m['change']['relative']:+.1f}%",
                fmt_p(m["change"]["p_value"]),
                verdict(m["change"]),
            ]
            for m in measured
        ],
        right=["shift", "change", "p"],
    )
    return [head, table, _runs_section(doc), _unmeasured_section(doc)]


def _runs_section(doc: Mapping[str, Any]) -> Section:
    sec = Section("runs", "Runs")
    shown = [m for m in doc["metrics"] if m["headline"] and (m["before"]["n"] or m["after"]["n"])]
    rows = []
    for side in ("before", "after"):
        for i, run in enumerate(doc[side]["runs"]):
            rows.append(
                [
                    side,
                    run["name"],
                    run["outcome"] or "-",
                    *[fmt_metric_value(m[side]["values"][i], m["unit"]) for m in shown],
                ]
            )
    sec.add_table(
        "Every run's value",
        ["side", "run", "outcome", *[m["metric"] for m in shown]],
        rows,
        right=[m["metric"] for m in shown],
        optional=["outcome"],  # before the run names are cut short
    )
    return sec


def _short(reason: str) -> str:
    return reason if len(reason) <= REASON_SHOWN else reason[: REASON_SHOWN - 1] + "…"


def _unmeasured_section(doc: Mapping[str, Any]) -> Section:
    sec = Section("unmeasured", "Not measurable")
    rows = []
    for m in doc["metrics"]:
        missing = {
            side: m["not_measurable"].get(side)
            for side in ("before", "after")
            if m[side]["n"] < len(m[side]["values"])
        }
        if not missing:
            continue
        runs = (
            f"{len(m['before']['values']) - m['before']['n']}/{len(m['after']['values']) - m['after']['n']}"
        )
        reasons = {why for why in missing.values() if why}
        if len(reasons) == 1:
            rows.append([m["metric"], runs, _short(reasons.pop())])
        else:
            rows += [[m["metric"], runs, _short(f"{side}: {why}")] for side, why in missing.items() if why]
    if rows:
        sec.add_table(
            "Metrics some runs could not give (full reasons in the JSON)", ["metric", "runs", "why"], rows
        )
    else:
        sec.add("every metric was measured in every run")
    return sec


def runs_intro(doc: Mapping[str, Any]) -> list[str]:
    """Lines under the heading: each side's runs."""
    return [f"{doc[s]['label']}: {', '.join(r['name'] for r in doc[s]['runs'])}" for s in ("before", "after")]


def runs_text(cmp: RunsComparison, out: Console) -> None:
    """Prints the comparison as terminal tables."""
    doc = cmp.to_json()
    render_text(TITLE, runs_sections(doc), out, intro=runs_intro(doc))


def runs_markdown(cmp: RunsComparison) -> str:
    """The comparison as Markdown."""
    doc = cmp.to_json()
    return render_markdown(TITLE, runs_sections(doc), intro=runs_intro(doc))


def runs_figures(cmp: RunsComparison) -> dict[str, list[EmbeddedFigure | str]]:
    """One strip/box figure per headline metric that had values, under the summary; a note
    instead when matplotlib is missing or a figure cannot be drawn."""
    try:
        from reports.plots.runs import runs_plot
    except ImportError:
        return {"summary": ["figures are not drawn: matplotlib is not installed"]}
    items: list[EmbeddedFigure | str] = []
    for m in cmp.headline:
        try:
            items.append(
                embed(runs_plot(cmp, m.metric), f"{m.metric}: every run, quartiles and median per side")
            )
        except Exception as exc:
            if os.environ.get("MIGTRACE_DEBUG"):
                raise
            items.append(f"{m.metric}: could not be drawn ({type(exc).__name__}: {exc})")
    return {"summary": items}


def runs_html(
    cmp: RunsComparison, figures: Mapping[str, Sequence[EmbeddedFigure | str]] | None = None
) -> str:
    """The comparison as one self-contained HTML page (figures by section key; by default the
    strip/box figure of each headline metric)."""
    doc = cmp.to_json()
    figures = runs_figures(cmp) if figures is None else figures
    return render_html(TITLE, runs_sections(doc), figures, intro=runs_intro(doc), footer=[FOOTER])


def runs_json(cmp: RunsComparison) -> str:
    """The comparison as JSON text."""
    return to_json_text(cmp.to_json())
