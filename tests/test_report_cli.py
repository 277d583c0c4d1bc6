"""``migtrace report`` as a user runs it: the format follows the output file's suffix, each
file is complete, and the default is text on standard output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.test_report_data import PLAIN_72
from tests.test_report_formats import Page, md_tables
from tracetool._analyses.bql.report import NOT_IN_TRACE
from tracetool.cli.main import app
from tracetool.cli.report import ReportFormat, pick_format
from tracetool.errors import UsageError


def test_format_comes_from_the_flag_then_the_suffix() -> None:
    assert pick_format(None, None) is ReportFormat.text
    assert pick_format(None, "out.HTML") is ReportFormat.html
    assert pick_format(None, "a/b.markdown") is ReportFormat.md
    assert pick_format(None, "r.json") is ReportFormat.json
    assert pick_format(ReportFormat.md, "notes.txt") is ReportFormat.md
    with pytest.raises(UsageError, match="cannot tell the format"):
        pick_format(None, "report.pdf")
    # a format that contradicts the file name is refused, not written into it
    with pytest.raises(UsageError, match=r"--format json does not match --output out\.html"):
        pick_format(ReportFormat.json, "out.html")
    assert pick_format(ReportFormat.json, "out.JSON") is ReportFormat.json


def test_report_writes_html_markdown_and_json_by_suffix(tmp_path: Path) -> None:
    trace = str(PLAIN_72 / "dst.trace.xz")
    common = [
        "--threads",
        str(PLAIN_72 / "dst-threads.json"),
        "--query-migrate",
        str(PLAIN_72 / "query-migrate.json"),
    ]
    for name in ("r.html", "r.md", "r.json"):
        app(["report", trace, *common, "-o", str(tmp_path / name)], standalone_mode=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.json", "r.md"]

    doc = json.loads((tmp_path / "r.json").read_text())
    load_tid = doc["phases"]["load_thread"]["tid"]
    assert doc["phases"]["load_thread"]["role"] == "main" and load_tid is not None
    assert doc["downtime"]["switchover"]["qemu_reported_ms"] is not None
    assert doc["bql"] is None and doc["notes"]["bql"] == [NOT_IN_TRACE]

    md = (tmp_path / "r.md").read_text()
    assert md.startswith("## migtrace report\n")
    assert f"trace: {trace}" in md
    phases = next(t for t in md_tables(md) if t[0][:2] == ["phase", "thread"])
    assert [r[0] for r in phases[2:]] == [p["name"] for p in doc["phases"]["phases"]]
    assert all(r[1].endswith(f"({load_tid})") for r in phases[2:] if r[0] == "precopy")
    assert f"- note: {NOT_IN_TRACE}" in md

    page = Page((tmp_path / "r.html").read_text())
    assert [a["id"] for a in page.all("section")] == [
        "sec-summary",
        "sec-phases",
        "sec-downtime",
        "sec-bql",
        "sec-trace-end",
        "sec-preempt",
        "sec-colo",
    ]
    text = " ".join(page.text)
    assert "in a coroutine on the main thread" in text and NOT_IN_TRACE in text


def test_default_is_text_on_stdout_with_every_section() -> None:
    r = run_cli("report", str(PLAIN_72 / "dst.trace.xz"))
    assert r.returncode == 0, r.stderr
    for title in (
        "Trace",
        "Incoming migration phases",
        "Downtime end to end and total time",
        "Big QEMU Lock (BQL)",
        "Postcopy preempt",
    ):
        assert f"\n{title} ─" in r.stdout
    assert f"note: {NOT_IN_TRACE}" in r.stdout
    assert r.stderr == ""


def test_unwritable_output_fails_before_reading_the_trace(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "r.md"
    with pytest.raises(UsageError, match="cannot write: no such directory"):
        app(["report", str(tmp_path / "no-such-trace"), "-o", str(missing)], standalone_mode=False)
    assert not missing.parent.exists()
