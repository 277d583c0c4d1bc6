"""Strings from a trace cannot break out of the report: a real trace whose device idstr, lock-site
path and thread name carry HTML, quotes, backticks and pipes renders as inert text in HTML,
Markdown and JSON. And a report file is written whole or not at all."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

import tracetool
from reports.atomic import write_text
from reports.html import report_html
from reports.markdown import md_escape, report_markdown
from reports.report_json import report_document, to_json_text
from tests.conftest import read_lines
from tests.test_report_data import MUTEX_THREADIFY
from tests.test_report_formats import ALLOWED_TAGS, Page, md_tables
from tracetool._analyses.reportdata import ReportData, collect

EVIL_DEVICE = '<script>alert("dev")</script>\'|`x`'
EVIL_SITE = "<script>site</script>\"q'|`y`.c"
EVIL_THREAD = "mig/<img src=x onerror=alert(1)>|`t`\"'"
LOAD_TID = 22774
RAM_LINES = b" ram_load_loop "  # 200k lines that only count pages: left out to keep the test quick


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> ReportData:
    """The threadify per-thread destination trace with hostile strings in real lines."""
    out = tmp_path_factory.mktemp("hostile")
    for src in sorted(MUTEX_THREADIFY.glob("dst.*.trace.xz")):
        lines = []
        for line in read_lines(str(src)):
            if RAM_LINES in line:
                continue
            if b"qemu_loadvm_state_section_startfull" in line or b"vmstate_load " in line:
                line = line.replace(b"0000:00:1f.2/ich9_ahci", EVIL_DEVICE.encode())
            elif b"qemu_mutex_" in line:
                line = line.replace(b"util/main-loop.c", f"util/{EVIL_SITE}".encode())
            lines.append(line)
        (out / src.name.removesuffix(".xz")).write_bytes(b"\n".join(lines) + b"\n")
    sidecar = json.loads((MUTEX_THREADIFY / "dst-threads.json").read_text())
    sidecar["tid_to_name"][str(LOAD_TID)] = EVIL_THREAD
    sidecar.pop("threads", None)
    (out / "threads.json").write_text(json.dumps(sidecar))
    return collect(tracetool.load([str(out / "dst.*.trace")], threads=[str(out / "threads.json")]))


def test_the_hostile_strings_reach_the_analyses(hostile: ReportData) -> None:
    data = hostile
    assert data.phases is not None and data.bql is not None and data.bql.primary is not None
    assert EVIL_DEVICE in data.phases.devices["idstr"].astype(str).tolist()
    sites = data.bql.primary.holds["lock_site"].astype(str)
    assert sites.str.startswith(f"util/{EVIL_SITE}:").any()
    assert EVIL_THREAD in data.trace.threads["name"].astype(str).tolist()


def test_html_escapes_every_string_from_the_trace(hostile: ReportData) -> None:
    html = report_html(hostile)
    assert "<script" not in html.lower()
    assert "<img src=x" not in html
    page = Page(html)
    assert {t for t, _ in page.tags} <= ALLOWED_TAGS
    assert all(not any(k.startswith("on") for k in attrs) for _, attrs in page.tags)
    text = "\n".join(page.text)
    # the strings are there, as text a reader sees unchanged
    assert EVIL_DEVICE in text and EVIL_THREAD in text and f"util/{EVIL_SITE}" in text


def test_markdown_escapes_every_string_and_keeps_table_cells_intact(hostile: ReportData) -> None:
    md = report_markdown(hostile)
    assert not re.search(r"(?<!\\)[<>]", md)  # every angle bracket is a literal one
    for table in md_tables(md):
        assert all(len(row) == len(table[0]) for row in table), table[0]
    tables = md_tables(md)
    devices = next(t for t in tables if t[0][0] == "device")
    assert devices[2][0] == md_escape(EVIL_DEVICE) == '\\<script\\>alert("dev")\\</script\\>\'\\|\\`x\\`'
    threads = next(t for t in tables if t[0][:3] == ["process", "tid", "name"])
    assert [r[2] for r in threads if r[1] == str(LOAD_TID)] == [md_escape(EVIL_THREAD)]
    longest = next(t for t in tables if "lock site" in t[0])
    col = longest[0].index("lock site")
    assert any(r[col].startswith(md_escape(f"util/{EVIL_SITE}")) for r in longest[2:])
    # no backtick that could open a code span, no pipe that could split a cell
    assert not re.search(r"(?<!\\)`", md)


def test_json_keeps_the_strings_exactly(hostile: ReportData) -> None:
    doc = json.loads(to_json_text(report_document(hostile)))
    assert EVIL_DEVICE in [d["idstr"] for d in doc["phases"]["devices"]]
    assert EVIL_THREAD in [t["name"] for t in doc["summary"]["threads"]]


# ---------------------------------------------------------------------------------- atomic
def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old report\n")

    def render() -> str:
        raise KeyboardInterrupt  # the user pressed ^C while the report was being rendered

    with pytest.raises(KeyboardInterrupt):
        write_text(str(target), render)
    assert target.read_text() == "old report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_a_failure_while_writing_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.md"
    real_fsync = os.fsync

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_text(str(target), "x" * 100_000)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert write_text(str(target), "new\n") == 4
    assert target.read_text() == "new\n"
    assert list(tmp_path.iterdir()) == [target]


def test_a_rewrite_keeps_the_files_permissions(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("{}")
    target.chmod(0o640)
    write_text(str(target), '{"a": 1}\n')
    assert target.read_text() == '{"a": 1}\n'
    assert target.stat().st_mode & 0o777 == 0o640
