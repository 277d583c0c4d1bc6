"""Typed decoding of the argument text QEMU's text backends print.

The log, ftrace and SystemTap-log backends print ``name `` followed by ``printf(fmt, args)``.
From an :class:`~tracetool._events.eventdefs.EventDef` this module builds one anchored regular
expression (valid for both RE2 and Python's ``re``) with a named group per printed argument,
runs it over many texts at once with ``pyarrow.compute.extract_regex`` and converts each
group column to a typed column named after the trace-events argument.

Kinds and pandas dtypes: ``int`` (``%d %i``) -> ``Int64``; ``uint`` (``%u %o``), ``hex``
(``%x %X``) and ``ptr`` (``%p``) -> ``UInt64``; ``float`` -> ``Float64``; ``str`` (``%s``) and
``char`` (``%c``) -> pyarrow-backed ``string``. A NULL string printed as ``(null)`` becomes NA,
a NULL pointer printed as ``(nil)`` becomes 0. The format grammar and its regular expression are
in ``printf_format``, the conversion of the printed texts to typed values in ``printed_values``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tracetool._events.eventdefs import EventDef
from tracetool._events.printed_values import as_text_array, convert_column, python_value, to_pandas
from tracetool._events.printf_format import Field, build_pattern

KIND_DTYPES: dict[str, object] = {
    "int": pd.Int64Dtype(),
    "uint": pd.UInt64Dtype(),
    "hex": pd.UInt64Dtype(),
    "ptr": pd.UInt64Dtype(),
    "float": pd.Float64Dtype(),
    "str": pd.StringDtype("pyarrow"),
    "char": pd.StringDtype("pyarrow"),
}
"""The pandas dtype of each field kind."""

KIND_ARROW: dict[str, pa.DataType] = {
    "int": pa.int64(),
    "uint": pa.uint64(),
    "hex": pa.uint64(),
    "ptr": pa.uint64(),
    "float": pa.float64(),
    "str": pa.large_string(),
    "char": pa.large_string(),
}
"""The pyarrow type each field kind decodes to."""


class TextDecoder:
    """Decoder for the printed arguments of one event definition.

    ``fields`` lists ``(argument name, kind)`` for every argument the format prints, in order.
    """

    def __init__(self, event: EventDef) -> None:
        self.event = event
        built = build_pattern(event.fmt, [a.name for a in event.args])
        self._fields = built.fields
        self.pattern = "^" + built.core + "$"
        """Anchored RE2 pattern with one named group ``fN`` per field."""
        self._fast = "^" + built.fast + "$" if built.fast is not None else None
        self._checks = built.checks
        self._python = re.compile(built.core, re.S)
        self.fields: list[tuple[str, str]] = [(f.name, f.kind) for f in self._fields]
        self._subsets: dict[tuple[int, ...], tuple[str, str | None]] = {}
        self._named_groups = all(f"(?P<f{i}>" in self.pattern for i in range(len(self._fields)))
        """One group ``fN`` per field, which :meth:`_patterns` can leave uncaptured."""

    def __repr__(self) -> str:
        return f"TextDecoder({self.event.name!r}, fields={self.fields!r})"

    def decode_arrow(
        self, texts: object, only: Collection[str] | None = None
    ) -> tuple[dict[str, pa.Array], np.ndarray]:
        """Like :meth:`decode`, returning pyarrow columns (int64/uint64/float64/large_string).

        ``only``: the fields to convert (None: all); the text must still match the whole format.
        """
        arr = as_text_array(texts)
        n = len(arr)
        keep = [i for i, f in enumerate(self._fields) if only is None or f.name in only]
        if not keep:  # no field printed, or none asked for: whether each text matches is all
            hit = pc.match_substring_regex(arr, self.pattern)
            return {}, np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), bool)
        if n == 0:
            empty = {self._fields[i].name: pa.array([], type=KIND_ARROW[self._fields[i].kind]) for i in keep}
            return empty, np.zeros(0, dtype=bool)
        capture = tuple(keep) if self._named_groups else tuple(range(len(self._fields)))
        groups, matched = self._extract(arr, capture)
        captured = dict(zip(capture, groups, strict=True))
        columns: dict[str, pa.Array] = {}
        failed = np.zeros(n, dtype=bool)
        for i in keep:
            f, col = self._fields[i], captured[i]
            out, bad = convert_column(col, f)
            columns[f.name] = out
            if bad is not None:
                failed |= bad
        if failed.any():
            matched &= ~failed
            mask = pa.array(matched)
            columns = {k: pc.if_else(mask, v, pa.scalar(None, v.type)) for k, v in columns.items()}
        return columns, matched

    def _patterns(self, keep: tuple[int, ...]) -> tuple[str, str | None]:
        """The full and fast patterns capturing only the fields ``keep`` (indexes): RE2 extracts
        one group several times faster than four, and a RAM-page event has a text per page."""
        found = self._subsets.get(keep)
        if found is None:
            drop = [i for i in range(len(self._fields)) if i not in keep]
            full, fast = self.pattern, self._fast
            for i in drop:
                full = full.replace(f"(?P<f{i}>", "(?:")
                fast = fast.replace(f"(?P<f{i}>", "(?:") if fast is not None else None
            found = self._subsets[keep] = (full, fast)
        return found

    def _extract(self, arr: pa.Array, keep: tuple[int, ...]) -> tuple[list[pa.Array], np.ndarray]:
        """Group texts of the fields ``keep`` (null where unmatched) and the matched mask."""
        pattern, fast = self._patterns(keep)
        struct = pc.extract_regex(arr, fast or pattern)
        matched = np.asarray(struct.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        groups: list[pa.Array] = struct.flatten()
        if fast is None:
            return groups, matched
        unsure = np.zeros(len(arr), dtype=bool)
        for literal, expected in self._checks:
            count = pc.count_substring(arr, literal).to_numpy(zero_copy_only=False)
            unsure |= count != expected
        unsure &= matched
        if unsure.any():
            rows = np.flatnonzero(unsure)
            again = pc.extract_regex(arr.take(pa.array(rows)), pattern).flatten()
            index = np.arange(len(arr), dtype=np.int64)
            index[rows] = len(arr) + np.arange(len(rows))
            take = pa.array(index)
            groups = [pa.concat_arrays([g, a]).take(take) for g, a in zip(groups, again, strict=True)]
        return groups, matched

    def decode(self, texts: object) -> tuple[pd.DataFrame, np.ndarray]:
        """Typed columns for each text, and whether the text matched the format.

        ``texts`` is a pyarrow string array (or chunked array, pandas Series, list of str),
        usually the unique argument texts of one event. Rows that do not match are all-NA.
        """
        columns, matched = self.decode_arrow(texts)
        return to_pandas(columns, len(matched)), matched

    def match(self, text: str) -> dict[str, object] | None:
        """One text decoded with Python's ``re`` (slow path, for checks and messages)."""
        return _match_fields(self._python, self._fields, text)


def _match_fields(rx: re.Pattern[str], fields: list[Field], text: str) -> dict[str, object] | None:
    m = rx.fullmatch(text)
    if m is None:
        return None
    out: dict[str, object] = {}
    try:
        for f in fields:
            out[f.name] = python_value(f, m.group(f.group))
    except ValueError:
        return None
    return out


def match_format(fmt: str, text: str, names: Iterable[str] = ()) -> dict[str, object] | None:
    """Matches one printed text against a C format; returns the values or None.

    Fields are named after ``names`` in order (``arg0``, ``arg1``... beyond them). Pure Python:
    no pyarrow, one text; the same pattern and conversions as :class:`TextDecoder`.
    """
    built = build_pattern(fmt, list(names))
    return _match_fields(re.compile(built.core, re.S), built.fields, text)


@functools.lru_cache(maxsize=4096)
def decoder_for(event: EventDef) -> TextDecoder:
    """The (cached) decoder for one event definition."""
    return TextDecoder(event)
