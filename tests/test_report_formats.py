"""The terminal, Markdown and HTML renderings of ``migtrace report`` on real traces: the same
figures as the analyses, well-formed tables, and HTML that needs nothing from the network."""

from __future__ import annotations

import base64
import io
import re
import sys
from html.parser import HTMLParser

import pytest

from reports.console import console, fmt_us
from reports.html import NO_PLOTS, report_html
from reports.markdown import report_markdown
from reports.report_text import DEVICES_SHOWN, report_text
from tests.test_report_data import mutex_72, mutex_threadify, plain_72
from tracetool._analyses.bql.bql import NOT_IN_TRACE
from tracetool._analyses.reportdata import ReportData

ALLOWED_TAGS = {
    "html",
    "head",
    "meta",
    "title",
    "style",
    "body",
    "main",
    "h1",
    "h2",
    "h3",
    "p",
    "nav",
    "a",
    "section",
    "div",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "details",
    "summary",
    "figure",
    "img",
    "figcaption",
    "footer",
}
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def text_of(data: ReportData) -> str:
    buf = io.StringIO()
    report_text(data, console(buf))
    return buf.getvalue()


class Page(HTMLParser):
    """Tags, attributes and text of an HTML page, as a browser's parser sees them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag]


def md_tables(md: str) -> list[list[list[str]]]:
    """Every Markdown table as rows of cells (split on unescaped pipes)."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*md.splitlines(), ""]:
        if line.startswith("|"):
            current.append([c.strip() for c in UNESCAPED_PIPE.split(line)[1:-1]])
        elif current:
            tables.append(current)
            current = []
    return tables


# ---------------------------------------------------------------------------------- text
def test_text_report_names_the_load_thread_and_shows_bql_figures_per_thread() -> None:
    data = mutex_threadify()
    out = text_of(data)
    assert "dst: completed; load thread: mig/dst/main (22774)" in out
    assert data.bql is not None and data.bql.primary is not None
    threads = data.bql.primary.threads
    load = threads[threads["name"] == "mig/dst/main"].iloc[0]
    row = next(
        line
        for line in out.splitlines()
        if line.strip().startswith("mig/dst/main (22774)") and " load " in line
    )
    assert fmt_us(load["hold_total_us"]) in row and fmt_us(load["hold_max_us"]) in row
    for title in (
        "Trace",
        "Incoming migration phases",
        "Downtime and total time",
        "Big QEMU Lock (BQL)",
        "Postcopy preempt",
    ):
        assert re.search(rf"^{re.escape(title)} ─", out, re.M), title
    assert "\x1b[" not in out  # not a terminal: no colour codes
    assert data.phases is not None
    hidden = len(data.phases.devices) - DEVICES_SHOWN
    assert f"  ... {hidden} more (all in --format json/html)" in out


def test_text_report_of_the_72_trace_says_the_load_runs_in_a_coroutine_on_main() -> None:
    out = text_of(mutex_72())
    assert "load thread: qemu-system-x86 (30905), in a coroutine on the main thread" in out


# ---------------------------------------------------------------------------------- markdown
def test_markdown_tables_are_compact_and_well_formed() -> None:
    data = mutex_threadify()
    md = report_markdown(data)
    tables = md_tables(md)
    assert len(tables) >= 8
    for t in tables:
        width = len(t[0])
        assert all(len(r) == width for r in t), t[0]
        assert all(set(c) <= set("-:") for c in t[1])  # the alignment row
    assert data.phases is not None
    phases = next(t for t in tables if t[0][:2] == ["phase", "thread"])
    assert [r[0] for r in phases[2:]] == data.phases.phases["name"].astype(str).tolist()
    devices = next(t for t in tables if t[0][0] == "device")
    assert len(devices) - 2 == DEVICES_SHOWN
    assert f"*... {len(data.phases.devices) - DEVICES_SHOWN} more rows in the JSON and HTML reports*" in md
    assert devices[2][0] == "0000:00:1f.2/ich9_ahci"  # the longest load, underscore as it is
    assert "**dst: completed; load thread: mig/dst/main (22774)**" in md
    assert "| qemu_mutex_unlock |" in md and "qemu\\_mutex" not in md  # no needless escaping


# ---------------------------------------------------------------------------------- HTML
def test_html_report_is_one_offline_page_with_the_figures_embedded() -> None:
    pytest.importorskip("reports.plots.common")
    html = report_html(mutex_threadify())
    page = Page(html)
    assert {t for t, _ in page.tags} <= ALLOWED_TAGS
    csp = [m["content"] for m in page.all("meta") if m.get("http-equiv") == "Content-Security-Policy"]
    assert csp and (csp[0] or "").startswith("default-src 'none'")
    assert not re.search(r"<script|<link|<iframe|@import|url\(|https?://", html, re.I)
    imgs = page.all("img")
    assert len(imgs) >= 3  # phase waterfall, per-thread timeline, BQL CDFs
    for img in imgs:
        src = img["src"] or ""
        head, _, payload = src.partition(",")
        assert head in ("data:image/svg+xml;base64", "data:image/png;base64")
        raw = base64.b64decode(payload, validate=True)
        assert raw.startswith(b"<?xml") or raw.startswith(b"\x89PNG")
    text = " ".join(page.text)
    assert "dst: completed; load thread: mig/dst/main (22774)" in text
    sections = [a["id"] for a in page.all("section")]
    assert sections == ["sec-summary", "sec-phases", "sec-downtime", "sec-bql", "sec-preempt"]
    assert NO_PLOTS not in text


def test_html_report_without_the_plotting_module_says_so_and_still_renders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "reports.plots", None)  # import now raises ImportError
    page = Page(report_html(mutex_72()))
    assert page.all("img") == []
    text = " ".join(page.text)
    assert NO_PLOTS in text
    assert "BQL is mutex 0x" in text


# ---------------------------------------------------------------------------------- notes
def test_trace_without_mutex_events_shows_the_note_in_every_format() -> None:
    from reports.report_json import report_document, to_json_text

    data = plain_72()
    assert NOT_IN_TRACE in text_of(data)
    assert f"- note: {NOT_IN_TRACE}" in report_markdown(data)
    page = Page(report_html(data))
    bql_section = [i for i, (t, a) in enumerate(page.tags) if t == "section" and a["id"] == "sec-bql"]
    assert bql_section
    assert NOT_IN_TRACE in " ".join(page.text)
    assert NOT_IN_TRACE in to_json_text(report_document(data))
