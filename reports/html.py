"""Self-contained HTML: one file with inline CSS and the figures embedded as data URIs.

The page loads nothing: no scripts, no fonts, no stylesheets from elsewhere, and its Content
Security Policy forbids any fetch, so it opens the same offline. Every string from a trace
(device idstr, thread names, lock sites, paths, QEMU's JSON) is HTML-escaped; figures are
``<img>`` elements, which cannot run script even if an SVG carried one.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reports.blocks import Para, Section, Table
from reports.report_json import report_document
from reports.report_sections import report_sections
from reports.report_text import report_intro, report_title
from tracetool._analyses.comparison import Comparison
from tracetool._analyses.reportdata import ReportData
from tracetool.errors import NotInTrace

MAX_SVG_BYTES = 1_500_000
"""Figures whose SVG is larger than this (dense timelines) are embedded as PNG instead."""
MAX_SVG_SHAPES = 5000
"""Figures drawing more shapes than this go straight to PNG (their SVG would be too large)."""
MAX_HATCHED = 2000
PNG_DPI = 110

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

STYLE = """
:root { color-scheme: light; --fg: #1d2228; --muted: #5b6570; --line: #d8dde3; --band: #f4f6f8;
        --accent: #1f5f99; --note: #fff8e1; --note-line: #e0c060; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans",
       sans-serif; color: var(--fg); background: #fff; }
main { max-width: 1280px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.3em; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 1em; margin: 18px 0 6px; color: var(--muted); }
p { margin: 6px 0; }
.sub { color: var(--muted); margin: 0 0 12px; overflow-wrap: anywhere; }
nav { margin: 8px 0 0; }
nav a { color: var(--accent); margin-right: 16px; text-decoration: none; }
.headline { font-weight: 600; font-size: 1.05em; background: var(--band);
            border-left: 4px solid var(--accent); padding: 8px 12px; margin: 10px 0; }
.note { background: var(--note); border-left: 4px solid var(--note-line); padding: 4px 10px;
        margin: 4px 0; font-size: 0.92em; overflow-wrap: anywhere; }
.tablewrap { overflow-x: auto; margin: 4px 0 14px; }
table { border-collapse: collapse; font-size: 0.9em; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { background: var(--band); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; white-space: nowrap; }
tr:nth-child(even) td { background: #fafbfc; }
details > summary { cursor: pointer; color: var(--accent); margin: 4px 0; }
figure { margin: 12px 0 20px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); background: #fff; }
figcaption { color: var(--muted); font-size: 0.9em; margin-top: 4px; }
footer { color: var(--muted); font-size: 0.85em; margin-top: 40px; }
"""
NO_PLOTS = "figures: not available (the plotting module reports.plots is not installed)"
FOOTER = "made by migtrace from the trace files above; this page loads nothing from the network"
FOLD_ROWS = 40
"""Tables longer than this are folded into a <details> element (all rows still present)."""


@dataclass(frozen=True)
class EmbeddedFigure:
    """A rendered figure: title (caption), MIME type and image bytes."""

    title: str
    mime: str
    data: bytes

    def data_uri(self) -> str:
        """The image as a ``data:`` URI (base64)."""
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def _drawn_shapes(figure: Any) -> int:
    """How many shapes a figure draws (paths in collections, patches)."""
    return sum(len(c.get_paths()) for ax in figure.axes for c in ax.collections) + sum(
        len(ax.patches) for ax in figure.axes
    )


def embed(figure: Any, title: str) -> EmbeddedFigure:
    """Renders a matplotlib ``Figure`` to SVG, or PNG when it is too dense for SVG.

    Uses only the Figure object itself: no pyplot, no global state.
    """
    for ax in figure.axes:
        for c in ax.collections:
            # Hatching thousands of bars (a vCPU's BQL holds) takes the renderer tens of
            # seconds and shows nothing at that density; the fill colour still does.
            if c.get_hatch() and len(c.get_paths()) > MAX_HATCHED:
                c.set_hatch(None)
    if _drawn_shapes(figure) <= MAX_SVG_SHAPES:
        buf = io.BytesIO()
        figure.savefig(buf, format="svg", bbox_inches="tight")
        if buf.tell() <= MAX_SVG_BYTES:
            return EmbeddedFigure(title, "image/svg+xml", buf.getvalue())
    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=PNG_DPI, bbox_inches="tight")
    return EmbeddedFigure(title, "image/png", buf.getvalue())


def esc(text: Any) -> str:
    """HTML-escapes any value (quotes included)."""
    return html.escape("" if text is None else str(text), quote=True)


def _anchor(key: str) -> str:
    return "sec-" + "".join(c if c.isalnum() else "-" for c in key)


def _table(t: Table) -> str:
    def cell(tag: str, col: str, value: str) -> str:
        cls = ' class="num"' if col in t.right else ""
        return f"<{tag}{cls}>{esc(value)}</{tag}>"

    head = "".join(cell("th", c, c) for c in t.columns)
    body = "\n".join(
        "<tr>" + "".join(cell("td", c, v) for c, v in zip(t.columns, r, strict=True)) + "</tr>"
        for r in t.rows
    )
    title = f"<h3>{esc(t.title)}</h3>\n" if t.title else ""
    grid = (
        f'<div class="tablewrap"><table>\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody></table></div>"
    )
    if len(t.rows) > FOLD_ROWS:
        grid = f"<details><summary>{len(t.rows)} rows</summary>\n{grid}\n</details>"
    return title + grid


def _para(p: Para) -> str:
    if p.kind == "headline":
        return f'<p class="headline">{esc(p.text)}</p>'
    if p.kind == "note":
        return f'<p class="note">{esc(p.text)}</p>'
    return f"<p>{esc(p.text)}</p>"


def _figure(f: EmbeddedFigure) -> str:
    return (
        f'<figure><img src="{f.data_uri()}" alt="{esc(f.title)}">'
        f"<figcaption>{esc(f.title)}</figcaption></figure>"
    )


def _after_headlines(sec: Section) -> int:
    """Where a section's figures go: after its first run of headlines, else at its top."""
    kinds = [b.kind if isinstance(b, Para) else "" for b in sec.blocks]
    if "headline" not in kinds:
        return 0
    at = kinds.index("headline")
    while at < len(kinds) and kinds[at] == "headline":
        at += 1
    return at


def render_html(
    title: str,
    sections: Sequence[Section],
    figures: Mapping[str, Sequence[EmbeddedFigure | str]] | None = None,
    intro: Sequence[str] = (),
    footer: Sequence[str] = (),
) -> str:
    """The whole page. ``figures[section.key]`` (figures, or notes on figures not drawn) are
    shown after that section's first headline, or at its top; ``intro`` lines go under the
    title, ``footer`` lines at the bottom."""
    figures = figures or {}
    nav = " ".join(f'<a href="#{_anchor(s.key)}">{esc(s.title)}</a>' for s in sections)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{esc(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body><main>",
        f"<h1>{esc(title)}</h1>",
        *[f'<p class="sub">{esc(line)}</p>' for line in intro],
        f"<nav>{nav}</nav>",
    ]
    for sec in sections:
        parts.append(f'<section id="{_anchor(sec.key)}">')
        parts.append(f"<h2>{esc(sec.title)}</h2>")
        figs = [
            _figure(f) if isinstance(f, EmbeddedFigure) else _para(Para(f, "note"))
            for f in figures.get(sec.key, ())
        ]
        at = _after_headlines(sec)
        for i, b in enumerate(sec.blocks):
            if i == at:
                parts.extend(figs)
                figs = []
            parts.append(_table(b) if isinstance(b, Table) else _para(b))
        parts.extend(figs)
        parts.append("</section>")
    parts.extend(f"<footer>{esc(line)}</footer>" for line in footer)
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------- figures
FigureItem = EmbeddedFigure | str
"""What a section shows besides its blocks: a figure, or a note on a figure not drawn."""


def _draw(out: dict[str, list[FigureItem]], section: str, title: str, make: Callable[[], Any]) -> None:
    """Draws one figure into ``out[section]``; a trace without what it needs, or a failure,
    becomes a note in its place so the rest of the report still renders."""
    items = out.setdefault(section, [])
    try:
        items.append(embed(make(), title))
    except NotInTrace as exc:
        items.append(f"{title}: {exc}")
    except Exception as exc:
        if os.environ.get("MIGTRACE_DEBUG"):
            raise
        items.append(f"{title}: could not be drawn ({type(exc).__name__}: {exc})")


def _plots_missing() -> bool:
    try:
        import reports.plots
        import reports.plots.common  # noqa: F401  (needs matplotlib)
    except ImportError:
        return True
    return False


def report_figures(data: ReportData) -> tuple[dict[str, list[FigureItem]], list[str]]:
    """The figures of one trace's report per section, and report-level notes on figures.
    Without the plotting module the report has no figures and says so."""
    if _plots_missing():
        return {}, [NO_PLOTS]
    from reports.plots.bql import bql_distribution
    from reports.plots.colo import colo_figure
    from reports.plots.gantt import gantt
    from reports.plots.page_latency import page_latency
    from reports.plots.phases import phase_waterfall
    from tracetool._model.lanes import trace_start_ns

    out: dict[str, list[FigureItem]] = {}
    if data.phases is not None:
        phases = data.phases
        _draw(
            out,
            "phases",
            "Incoming phases and the slowest device loads",
            lambda: phase_waterfall(phases),
        )
    if data.trace.has_time:
        _draw(
            out,
            "phases",
            "Per-thread timeline (phases, sections, device loads, BQL holds)",
            lambda: gantt(data.trace, data.timeline, data.bql),
        )
    if data.bql is not None:
        report = data.bql
        _draw(out, "bql", "BQL hold and wait times per thread (CDF)", lambda: bql_distribution(report))
    preempt = data.preempt
    if preempt is not None and preempt.page_requests.get("count"):
        _draw(
            out,
            "preempt",
            "Postcopy page-request latency",
            lambda: page_latency(preempt, trace_start_ns(data.trace)),
        )
    colo = data.results.get("colo")
    if colo is not None:
        _draw(
            out,
            "colo",
            "COLO checkpoints: the parts of each pause, and the pauses over time",
            lambda: colo_figure(colo, trace_start_ns(data.trace)),
        )
    return out, []


def compare_figures(
    cmp: Comparison, before: ReportData, after: ReportData
) -> tuple[dict[str, list[FigureItem]], list[str]]:
    """The paired before/after figure of a comparison, and notes on figures."""
    if _plots_missing():
        return {}, [NO_PLOTS]
    from reports.plots.compare import compare_plot

    out: dict[str, list[FigureItem]] = {}
    labels = (cmp.before.label, cmp.after.label)
    _draw(
        out,
        "summary",
        f"Phase durations and BQL hold time per role: {labels[0]} vs {labels[1]}",
        lambda: compare_plot(cmp),
    )
    return out, []


def report_html(data: ReportData) -> str:
    """The whole report of one trace as a self-contained HTML page."""
    figures, fig_notes = report_figures(data)
    intro = report_intro(data) + fig_notes
    return render_html(
        report_title(data), report_sections(report_document(data)), figures, intro=intro, footer=[FOOTER]
    )
