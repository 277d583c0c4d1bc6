"""Rich display of migtrace results in Jupyter.

``%load_ext reports.notebook`` (or ``install_reprs()``) registers HTML formatters with IPython
for the result type of every analysis in the registry that has a renderer here, and for
:class:`tracetool.Trace`, so that a result as the last expression of a cell shows as a short
summary with tables; and a PNG formatter for matplotlib figures, so that the figures of
:mod:`reports.plots` (built without pyplot) show inline. Outside IPython it does nothing. The
renderers (``trace_html``, ``bql_html``, ``phases_html``, ``preempt_html``, ``colo_html``) are
plain functions returning HTML text in which everything from the trace is escaped.

    >>> %load_ext reports.notebook
    >>> tracetool.analyze_bql(trace)          # shows per-process tables
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from typing import Any

import pandas as pd

from reports.console import fmt_us
from tracetool._analyses import registry
from tracetool._model.trace import Trace

MAX_ROWS = 10
BQL_THREAD_COLUMNS = (
    "tid",
    "name",
    "role",
    "holds",
    "hold_total_us",
    "hold_max_us",
    "hold_p50_us",
    "hold_p99_us",
    "waits",
    "wait_total_us",
    "wait_p99_us",
)
HOLD_COLUMNS = ("thread", "role", "duration_us", "lock_site", "phase", "section", "device")
PHASE_COLUMNS = ("name", "thread", "role", "duration_us", "closed")
DEVICE_COLUMNS = ("idstr", "instance_id", "section_type", "thread", "duration_us")


def _table(frame: pd.DataFrame, columns: tuple[str, ...], rows: int = MAX_ROWS) -> str:
    cols = [c for c in columns if c in frame.columns]
    more = len(frame) - rows
    out = (
        frame[cols]
        .head(rows)
        .to_html(index=False, escape=True, na_rep="–", float_format=lambda v: f"{v:,.1f}")
    )
    if more > 0:
        out += f"<p><i>{more} more rows</i></p>"
    return out


def _notes(notes: list[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{html.escape(str(n))}</li>" for n in notes)
    return f"<details><summary>{len(notes)} notes</summary><ul>{items}</ul></details>"


def bql_html(report: Any) -> str:
    """A BqlReport: per process the BQL, its threads' statistics and the longest holds."""
    parts = ["<div><h4>BQL analysis</h4>"]
    if report.note:
        parts.append(f"<p>{html.escape(report.note)}</p>")
    for p in report.processes.values():
        if p.mutex is None:
            parts.append(f"<p><b>{html.escape(p.process)}</b>: no BQL found</p>{_notes(p.notes)}")
            continue
        holds = p.holds
        done = int(holds["complete"].sum()) if len(holds) else 0
        parts.append(
            f"<p><b>{html.escape(p.process)}</b>: BQL {p.mutex:#x} "
            f"({html.escape(p.identified_by or '')}); {done} complete holds, {len(p.waits)} "
            f"waits; attributed by {html.escape(p.attribution or '-')}; "
            f"{p.inconsistency_count} inconsistencies</p>"
        )
        parts.append(_table(p.threads, BQL_THREAD_COLUMNS))
        parts.append("<p>Longest holds:</p>" + _table(p.longest_holds(5), HOLD_COLUMNS, 5))
        parts.append(_notes(p.notes))
    parts.append("</div>")
    return "".join(parts)


def phases_html(report: Any) -> str:
    """A PhaseReport: outcome, load thread, phases and the slowest device loads."""
    lt = report.load_thread or {}
    load = lt.get("name") or lt.get("role") or "unknown"
    parts = [
        "<div><h4>Incoming phases</h4>",
        f"<p>process <b>{html.escape(str(report.process))}</b>, outcome "
        f"<b>{html.escape(report.outcome)}</b>, load thread {html.escape(str(load))}"
        + (f" ({lt['tid']})" if lt.get("tid") is not None else "")
        + "</p>",
        _table(report.phases, PHASE_COLUMNS, 30),
    ]
    dev = report.devices
    if len(dev):
        slow = dev.sort_values("duration_us", ascending=False, kind="stable")
        parts.append(f"<p>Slowest device loads ({len(dev)} in all):</p>" + _table(slow, DEVICE_COLUMNS))
    parts.append(_notes(report.notes))
    parts.append("</div>")
    return "".join(parts)


def preempt_html(report: Any) -> str:
    """A PreemptReport: the waits, page-request latency and pages per channel."""
    pr = report.page_requests or {}
    rows = [
        ("postcopy", report.postcopy),
        ("preempt enabled", report.enabled),
        ("preempt thread wait", fmt_us(report.thread_wait_us)),
        ("packaged-load wait", fmt_us(report.packaged_wait_us)),
        ("page requests", pr.get("count")),
        ("page request p50", fmt_us(pr.get("p50_us"))),
        ("page request p99", fmt_us(pr.get("p99_us"))),
        ("page request max", fmt_us(pr.get("max_us"))),
        ("unresolved page requests", pr.get("unmatched")),
    ]
    rows += [(f"pages on channel {k}", v) for k, v in (report.pages_by_channel or {}).items()]
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
        f"<td>{html.escape('–' if v is None else str(v))}</td></tr>"
        for k, v in rows
    )
    return f"<div><h4>Postcopy preempt</h4><table>{body}</table>{_notes(report.notes)}</div>"


COLO_COLUMNS = (
    "index",
    "pause_us",
    "wait_us",
    "ram_load_us",
    "receive_us",
    "flush_us",
    "flush_pages",
    "device_load_us",
    "save_us",
    "load_wait_us",
    "dirty_pages",
    "bql_hold_us",
    "bql_wait_us",
    "completed",
    "cut_in",
)


def colo_html(report: Any) -> str:
    """A ColoReport: per side its COLO thread, checkpoints, pause figures and failover."""
    parts = ["<div><h4>COLO</h4>"]
    if report.empty:
        parts.append(f"<p>{html.escape('; '.join(report.notes))}</p></div>")
        return "".join(parts)
    for p in report.processes:
        s, f = p.summary, p.failover
        parts.append(
            f"<p><b>{html.escape(p.label)}</b> ({html.escape(p.role)}), COLO thread "
            f"{html.escape(str(p.thread.get('name')))}: {s['checkpoints']} checkpoints, "
            f"{s['completed']} completed, pause p50 {fmt_us(s['pause_p50_us'])}, max "
            f"{fmt_us(s['pause_max_us'])}"
            + (
                f"; failover asked by {html.escape(str(f.requested_by))} during "
                f"{html.escape(str(f.during))}, final state {html.escape(str(f.final_state))}"
                if f is not None
                else ""
            )
            + "</p>"
        )
        parts.append(_table(pd.DataFrame(p.checkpoints), COLO_COLUMNS, 30))
        parts.append(_notes(p.notes))
    parts.append(_notes(report.notes))
    parts.append("</div>")
    return "".join(parts)


def trace_html(trace: Trace) -> str:
    """A Trace: what it was read from and its threads."""
    th = trace.threads[["process", "tid", "name", "role", "events"]]
    head = html.escape(repr(trace))
    return f"<div><p>{head}</p>{th.to_html(index=False, escape=True)}</div>"


RENDERERS: dict[str, Callable[[Any], str]] = {
    "bql": bql_html,
    "phases": phases_html,
    "preempt": preempt_html,
    "colo": colo_html,
}
"""Analysis name (in the registry) -> HTML renderer of its result."""


def formatters() -> dict[type, Callable[[Any], str]]:
    """Result type -> HTML renderer, for the analyses of the registry that have one."""
    out: dict[type, Callable[[Any], str]] = {Trace: trace_html}
    for name, render in RENDERERS.items():
        out[registry.get(name).result_type] = render
    return out


def figure_png(fig: Any) -> bytes:
    """A matplotlib Figure as PNG bytes, at notebook resolution."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def install_reprs() -> bool:
    """Registers the HTML renderers (and the figure formatter) with the running IPython;
    False when there is none."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    if ip is None:
        return False
    html_formatter = ip.display_formatter.formatters["text/html"]
    for cls, render in formatters().items():
        html_formatter.for_type(cls, render)
    from matplotlib.figure import Figure

    ip.display_formatter.formatters["image/png"].for_type(Figure, figure_png)
    return True


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext reports.notebook``: the same as :func:`install_reprs`."""
    install_reprs()
