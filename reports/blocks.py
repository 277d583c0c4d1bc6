"""The report's content as format-neutral blocks.

A report is a list of :class:`Section`; each holds :class:`Table` and :class:`Para` blocks whose
cells are already formatted strings, so that the terminal (:mod:`reports.report_text`),
Markdown (:mod:`reports.markdown`) and HTML (:mod:`reports.html`) outputs show the same figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from reports.console import fmt_us, known_columns


@dataclass(frozen=True)
class Table:
    """A titled table of formatted cells; ``right`` names the right-aligned (numeric) columns.

    ``compact``: how many rows the terminal and Markdown outputs show (None: all); the rest
    are counted in a "... N more" line. HTML shows every row.
    """

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    right: frozenset[str] = frozenset()
    compact: int | None = None
    optional: tuple[str, ...] = ()
    tail: tuple[str, ...] = ()


@dataclass(frozen=True)
class Para:
    """A line of text. ``kind``: "headline" (the key finding), "text", or "note"."""

    text: str
    kind: str = "text"


Block = Table | Para


@dataclass
class Section:
    """One part of a report; ``key`` is its JSON key (figures attach to it too)."""

    key: str
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add_table(
        self,
        title: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        right: Sequence[str] = (),
        compact: int | None = None,
        optional: Sequence[str] = (),
        tail: Sequence[str] = (),
        omit_unknown: Sequence[str] = (),
    ) -> None:
        """Adds a table; cells become strings ("" for None). ``optional``: columns a narrow
        terminal may leave out, the first named first; ``tail``: columns (paths) a narrow
        terminal shortens from their start; ``omit_unknown``: columns left out of every output
        when no row knows them (every cell "-" or empty)."""
        shown, cells = known_columns(columns, rows, omit_unknown)
        self.blocks.append(
            Table(
                title,
                tuple(shown),
                tuple(tuple(r) for r in cells),
                frozenset(right),
                compact,
                tuple(optional),
                tuple(tail),
            )
        )

    def add(self, text: str, kind: str = "text") -> None:
        """Adds a line of text."""
        self.blocks.append(Para(text, kind))


# ---------------------------------------------------------------------------------- helpers
def us(v: float | None) -> str:
    """A duration in µs, human-formatted ("-" when unknown)."""
    return fmt_us(v)


def pct(fraction: float | None) -> str:
    """A fraction as a percentage with one decimal."""
    return "-" if fraction is None else f"{100 * fraction:.1f}%"


def fmt_count(n: Any) -> str:
    return "-" if n is None else f"{n:,}"
