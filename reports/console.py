"""Terminal output: rich tables with colour on a TTY, plain text when piped or in CI."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import IO, Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text


def console(file: IO[str] | None = None) -> Console:
    """A Console that colours only real terminals and never wraps tables in pipes."""
    out = file or sys.stdout
    tty = hasattr(out, "isatty") and out.isatty()
    no_color = bool(os.environ.get("NO_COLOR")) or not tty
    width = None if tty else 200
    return Console(
        file=out,
        no_color=no_color,
        width=width,
        highlight=False,
        force_terminal=tty,
        soft_wrap=False,
        emoji=False,
        markup=False,
    )


def table(
    title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[str] = ()
) -> Table:
    """A compact table; values are shown as plain text (no markup is interpreted)."""
    t = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for c in columns:
        t.add_column(c, justify="right" if c in right else "left", overflow="fold")
    for r in rows:
        t.add_row(*[Text("" if v is None else str(v)) for v in r])
    return t


def fmt_us(us: float | None) -> str:
    """Microseconds, readable: 850 µs, 12.3 ms, 4.56 s."""
    if us is None:
        return "-"
    if us < 1000:
        return f"{us:.0f} µs"
    if us < 1_000_000:
        return f"{us / 1000:.2f} ms"
    return f"{us / 1_000_000:.3f} s"
