"""Blocks (:mod:`reports.blocks`) printed to a terminal: tables fitted to its width, lines of
text, notes prefixed ``note:``; the report and ``migtrace downtime`` print through it."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

from reports.blocks import Block, Para
from reports.console import table


def print_blocks(blocks: Sequence[Block], out: Console, full_in: str, wrap: int | None = None) -> None:
    """Prints ``blocks``; a table longer than its ``compact`` rows ends with a "... N more (all
    in --format FULL_IN)" line. ``wrap``: fold lines of text at that width, later lines indented
    by two spaces (else the console folds them)."""
    for b in blocks:
        if isinstance(b, Para):
            line = f"note: {b.text}" if b.kind == "note" else b.text
            out.print(Text(textwrap.fill(line, wrap, subsequent_indent="  ") if wrap else line))
            continue
        rows = b.rows if b.compact is None else b.rows[: b.compact]
        out.print(table(b.title or None, b.columns, rows, sorted(b.right), b.optional, b.tail))
        if len(rows) < len(b.rows):
            out.print(Text(f"  ... {len(b.rows) - len(rows)} more (all in --format {full_in})"))
