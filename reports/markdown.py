"""Markdown output: compact tables that paste into a mailing-list reply or a pull request.

Every string that may come from a trace (device idstr, thread names, lock sites, paths) is
escaped, so a pipe cannot split a table cell, a backtick cannot open code, and ``<tag>`` shows
as text instead of HTML on a forge. Long tables are cut to their ``compact`` rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from reports.blocks import Para, Section, Table
from reports.report_json import report_document
from reports.report_sections import report_sections
from reports.report_text import report_intro, report_title
from tracetool._analyses.reportdata import ReportData

# CommonMark backslash escapes: the characters that could start markup inside a line.
_SPECIAL = re.compile(r"([\\`*|<>\[\]&~#!])")
# An underscore only starts emphasis at a word edge ("qemu_mutex_lock" stays as it is).
_EDGE_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")
# What turns the start of a paragraph into a list item, a heading underline or a block quote.
_BLOCK_START = re.compile(r"^(\d+)([.)])|^([-+=])")


def md_escape(text: str) -> str:
    """``text`` as literal Markdown inline content: one line, no markup, no HTML."""
    one_line = _LINE_BREAKS.sub(" ", text)
    escaped = _SPECIAL.sub(r"\\\1", one_line)
    return _EDGE_UNDERSCORE.sub(r"\\_", escaped)


def md_table(t: Table, compact: bool = True) -> list[str]:
    """A table as Markdown lines (title in bold above it)."""
    lines = [f"**{md_escape(t.title)}**", ""] if t.title else []
    lines.append("| " + " | ".join(md_escape(c) if c else " " for c in t.columns) + " |")
    lines.append("|" + "|".join("---:" if c in t.right else "---" for c in t.columns) + "|")
    rows = t.rows if t.compact is None or not compact else t.rows[: t.compact]
    lines += ["| " + " | ".join(md_escape(v) for v in r) + " |" for r in rows]
    if len(rows) < len(t.rows):
        lines += ["", f"*... {len(t.rows) - len(rows)} more rows in the JSON and HTML reports*"]
    return lines


def _para(p: Para) -> str:
    if p.kind == "headline":
        return f"**{md_escape(p.text)}**"
    if p.kind == "note":
        return f"- note: {md_escape(p.text)}"
    return _BLOCK_START.sub(lambda m: f"{m[1]}\\{m[2]}" if m[1] else f"\\{m[3]}", md_escape(p.text))


def render_markdown(
    title: str, sections: Sequence[Section], heading_level: int = 2, intro: Sequence[str] = ()
) -> str:
    """The sections as one Markdown document; ``intro`` lines follow the title."""
    h = "#" * heading_level
    out = [f"{h} {md_escape(title)}", ""]
    for line in intro:
        out += [md_escape(line), ""]
    for sec in sections:
        out += [f"{h}# {md_escape(sec.title)}", ""]
        previous_note = False
        for b in sec.blocks:
            if isinstance(b, Table):
                out += [*md_table(b), ""]
                previous_note = False
                continue
            is_note = b.kind == "note"
            if previous_note and is_note:
                out.pop()  # consecutive notes form one list
            out += [_para(b), ""]
            previous_note = is_note
    return "\n".join(out).rstrip("\n") + "\n"


def report_markdown(data: ReportData) -> str:
    """The whole report of one trace as Markdown."""
    return render_markdown(
        report_title(data), report_sections(report_document(data)), intro=report_intro(data)
    )
