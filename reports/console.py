"""Terminal output: rich tables with colour on a TTY, plain text when piped or in CI.

Tables fit the width they are printed in: the terminal's, or 100 columns when the output is
piped (``COLUMNS`` overrides both). A table too wide for it first leaves out the columns its
renderer marked optional (saying which, under the table), then shortens the longest cells with
an ellipsis; it never folds a value character by character. ``set_wide(True)`` (the CLI's
``--wide``) prints every column in full whatever the width.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import IO, Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

PIPED_WIDTH = 100
"""Width of output that does not go to a terminal (files, pipes, CI logs)."""
WIDE_WIDTH = 1000
"""Width with ``--wide``: in effect, no limit."""
MIN_CELL = 8
"""A column is never shortened below this many characters."""
MIN_TAIL = 28
"""A path column is shortened (from its start) to this width before other columns are."""

_wide = False


def set_wide(wide: bool) -> None:
    """Print every column in full (``--wide``) or fit the width (the default)."""
    global _wide
    _wide = wide


def console(file: IO[str] | None = None) -> Console:
    """A Console that colours only real terminals; see the module docstring for its width."""
    out = file or sys.stdout
    tty = hasattr(out, "isatty") and out.isatty()
    no_color = bool(os.environ.get("NO_COLOR")) or not tty
    width: int | None
    if _wide:
        width = WIDE_WIDTH
    elif os.environ.get("COLUMNS", "").isdigit():
        width = int(os.environ["COLUMNS"])
    else:
        width = None if tty else PIPED_WIDTH
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


class FitTable:
    """A table that fits the width it is printed in (see the module docstring)."""

    def __init__(
        self,
        title: str | None,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        right: Sequence[str] = (),
        optional: Sequence[str] = (),
        tail: Sequence[str] = (),
        omit_unknown: Sequence[str] = (),
    ) -> None:
        self.title = title
        self.columns, self.rows = known_columns(columns, rows, omit_unknown)
        self.right = set(right)
        self.optional = [c for c in optional if c in self.columns]
        self.tail = set(tail)

    def _widths(self, keep: list[int]) -> list[int]:
        return [max([cell_len(self.columns[i]), *(cell_len(r[i]) for r in self.rows)]) for i in keep]

    def _fit(self, width: int) -> tuple[list[int], list[str]]:
        """Indexes of the columns to show and the names of those left out."""
        keep = list(range(len(self.columns)))
        dropped: list[str] = []
        for name in self.optional:
            if _total(self._widths(keep)) <= width:
                break
            keep.remove(self.columns.index(name))
            dropped.append(name)
        return keep, dropped

    def _shrink(self, keep: list[int], widths: list[int], width: int) -> tuple[list[int], list[str]]:
        """Shortens the widest text columns (never numbers) until the table fits; columns that
        still do not fit are left out from the right."""
        natural = list(widths)
        widths = list(widths)
        # Paths first (their end says the most), down to MIN_TAIL; then the widest text.
        for j, i in enumerate(keep):
            if self.columns[i] in self.tail and _total(widths) > width:
                widths[j] = max(min(widths[j], MIN_TAIL), widths[j] - (_total(widths) - width))
        while _total(widths) > width:
            text = [
                j for j, i in enumerate(keep) if self.columns[i] not in self.right and widths[j] > MIN_CELL
            ]
            if not text:
                break
            j = max(text, key=lambda k: widths[k])
            widths[j] = max(MIN_CELL, widths[j] - (_total(widths) - width))
        cut: list[str] = []
        while _total(widths) > width and len(keep) > 1:
            cut.insert(0, self.columns[keep.pop()])
            widths.pop()
        # Room a cut column left goes back to the columns shortened before it, left to right.
        for j in range(len(widths)):
            widths[j] = min(natural[j], widths[j] + max(width - _total(widths), 0))
        return widths, cut

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        keep = list(range(len(self.columns)))
        dropped: list[str] = []
        if not _wide:
            keep, dropped = self._fit(width)
        widths = self._widths(keep)
        if not _wide:
            widths, cut = self._shrink(keep, widths, width)
            dropped += cut
        t = Table(title=self.title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False, expand=False)
        for i, w in zip(keep, widths, strict=True):
            name = self.columns[i]
            t.add_column(
                name,
                justify="right" if name in self.right else "left",
                no_wrap=True,
                overflow="ellipsis",
                width=w,
            )
        for r in self.rows:
            t.add_row(
                *[
                    Text(_clip(r[i], w, self.columns[i] in self.tail))
                    for i, w in zip(keep, widths, strict=True)
                ]
            )
        yield t
        if dropped:
            yield Text(
                f"({len(dropped)} {'column' if len(dropped) == 1 else 'columns'} left out to fit "
                f"{width} columns: {', '.join(dropped)}; --wide shows "
                f"{'it' if len(dropped) == 1 else 'them'})"
            )


def _clip(text: str, width: int, keep_end: bool) -> str:
    """``text`` in ``width`` cells: cut with an ellipsis at its end, or at its start."""
    if cell_len(text) <= width:
        return text
    return "…" + text[-(width - 1) :] if keep_end else text[: width - 1] + "…"


def _total(widths: Sequence[int]) -> int:
    """The printed width of a table with these column widths: one space at each edge, three
    between columns (the padding of both and the divider)."""
    return sum(widths) + 3 * max(len(widths) - 1, 0) + 2


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    right: Sequence[str] = (),
    optional: Sequence[str] = (),
    tail: Sequence[str] = (),
    omit_unknown: Sequence[str] = (),
) -> FitTable:
    """A compact table; values are shown as plain text (no markup is interpreted).

    ``right``: columns aligned right (numbers). ``optional``: columns that may be left out when
    the table does not fit, the first named first. ``tail``: columns (paths) shortened from
    their start, and before the others. ``omit_unknown``: columns left out when no row knows
    them (every cell "-" or empty, e.g. threads in a trace without thread ids).
    """
    return FitTable(title, columns, rows, right, optional, tail, omit_unknown)


def known_columns(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], omit_unknown: Sequence[str]
) -> tuple[list[str], list[list[str]]]:
    """``columns`` and ``rows`` as text cells ("" for None), without the ``omit_unknown``
    columns that no row knows (every cell "-" or empty)."""
    cells = [["" if v is None else str(v) for v in r] for r in rows]
    unknown = {
        c for i, c in enumerate(columns) if c in omit_unknown and all(r[i] in ("-", "") for r in cells)
    }
    keep = [i for i, c in enumerate(columns) if c not in unknown]
    return [columns[i] for i in keep], [[r[i] for i in keep] for r in cells]


def who(tid: Any, name: Any) -> str:
    """A thread as every text output shows it: ``name (tid)``; ``tid 1234`` when nothing named
    it; its name alone without thread ids; ``-`` when neither is known."""
    named = name is not None and name == name and str(name) not in ("", "?")  # NaN != NaN
    if tid is None or tid != tid:
        return str(name) if named else "-"
    return f"{name} ({int(tid)})" if named else f"tid {int(tid)}"


def fmt_us(us: float | None) -> str:
    """Microseconds, readable: 850 µs, 12.3 ms, 4.56 s."""
    if us is None:
        return "-"
    if us < 1000:
        return f"{us:.0f} µs"
    if us < 1_000_000:
        return f"{us / 1000:.2f} ms"
    return f"{us / 1_000_000:.3f} s"
