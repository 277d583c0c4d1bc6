"""migtrace's event catalog: the definitions of every event the analyses use, across QEMU eras.

The data lives in ``tracetool/_events/catalog/*.events``: QEMU trace-events syntax plus ``#@``
annotations (``since=``, ``until=``, ``note=``) and ``*`` family names (see
:mod:`tracetool._events.eventdefs`). An event name may have several definitions (variants, best first);
decoding tries them in order for each text, so one catalog reads traces of every QEMU release.

A user's own ``trace-events`` / ``trace-events-all`` files (``--events``) are put in front of
the built-in definitions with :meth:`Catalog.with_files`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tracetool._events.decode import KIND_ARROW, decoder_for
from tracetool._events.eventdefs import EventDef, load_trace_events, parse_trace_events
from tracetool._events.printed_values import as_text_array, to_pandas

MAX_VARIANTS = 127
"""Variants beyond this many are not tried (``DecodedText.variant`` is int8)."""


@dataclass
class DecodedText:
    """Typed fields of many argument texts of one event name.

    ``frame`` has one row per text and the union of the variants' argument columns (NA where
    the matching variant lacks a field); ``matched`` says whether any variant matched;
    ``variant`` is the index into ``Catalog.variants(name)`` of the one that did (-1: none).
    """

    frame: pd.DataFrame
    matched: np.ndarray
    variant: np.ndarray

    def select(self, only: Collection[str] | None) -> DecodedText:
        """The same texts with only the fields named in ``only`` (None: all)."""
        if only is None:
            return self
        keep = [c for c in self.frame.columns if c in only]
        return DecodedText(self.frame[keep], self.matched, self.variant)


def _builtin_definitions() -> list[EventDef]:
    out: list[EventDef] = []
    folder = resources.files("tracetool._events").joinpath("catalog")
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".events"):
            text = entry.read_text(encoding="utf-8")
            out.extend(parse_trace_events(text, f"catalog/{entry.name}", extended=True))
    return out


def _same_signature(a: EventDef, b: EventDef) -> bool:
    return a.fmt == b.fmt and [(x.ctype.replace(" ", ""), x.name) for x in a.args] == [
        (y.ctype.replace(" ", ""), y.name) for y in b.args
    ]


def _union_type(types: list[pa.DataType]) -> pa.DataType:
    distinct = set(types)
    if len(distinct) == 1:
        return types[0]
    if distinct <= {pa.int64(), pa.uint64()}:
        return pa.int64()
    if distinct <= {pa.int64(), pa.uint64(), pa.float64()}:
        return pa.float64()
    return pa.large_string()


def _cast(col: pa.Array, target: pa.DataType) -> pa.Array:
    if col.type == target:
        return col
    if col.type == pa.uint64() and target == pa.int64():
        too_big = pc.greater(col, pa.scalar((1 << 63) - 1, pa.uint64()))
        col = pc.if_else(too_big, pa.scalar(None, pa.uint64()), col)
        return pc.cast(col, target, safe=False)
    return pc.cast(col, target)


class Catalog:
    """Event definitions by name, with user files in front of the built-in ones."""

    def __init__(self, definitions: Iterable[EventDef], user: Iterable[EventDef] = ()) -> None:
        self._builtin = list(definitions)
        self._user = list(user)
        self._exact: dict[str, list[EventDef]] = {}
        self._families: list[EventDef] = []
        for ev in [*self._user, *self._builtin]:
            if ev.is_family:
                self._families.append(ev)
            else:
                bucket = self._exact.setdefault(ev.name, [])
                if not any(_same_signature(ev, other) for other in bucket):
                    bucket.append(ev)
        # Longest prefix first, so a specific family wins over a general one.
        self._families.sort(key=lambda e: -len(e.prefix))
        self._resolved: dict[str, list[EventDef]] = {}

    @classmethod
    def builtin(cls) -> Catalog:
        """The catalog shipped with migtrace (parsed once, then cached)."""
        return _builtin_catalog()

    def with_files(self, paths: Sequence[str]) -> Catalog:
        """A new catalog whose definitions from ``paths`` come before this one's.

        The files are QEMU ``trace-events`` or ``trace-events-all`` files; earlier paths win.
        A malformed file raises :class:`~tracetool._events.eventdefs.TraceEventsError`.
        """
        user: list[EventDef] = []
        for path in paths:
            user.extend(load_trace_events(path))
        return Catalog(self._builtin, [*user, *self._user])

    def definitions(self) -> list[EventDef]:
        """Every definition, user files first, families included, in order."""
        return [*self._user, *self._builtin]

    def families(self) -> list[EventDef]:
        """The ``*`` family definitions (``qmp_enter_*``...)."""
        return list(self._families)

    def variants(self, name: str) -> list[EventDef]:
        """Definitions for ``name``, best first; a family entry comes back with ``name`` set.

        Exact definitions win; family entries apply only when there is none.
        """
        hit = self._resolved.get(name)
        if hit is not None:
            return list(hit)
        found = list(self._exact.get(name, ()))
        if not found:
            for fam in self._families:
                if name.startswith(fam.prefix) and len(name) > len(fam.prefix):
                    resolved = dataclasses.replace(fam, name=name)
                    if not any(_same_signature(resolved, f) for f in found):
                        found.append(resolved)
        self._resolved[name] = found
        return list(found)

    def get(self, name: str) -> EventDef | None:
        """The best definition for ``name``, or None."""
        found = self.variants(name)
        return found[0] if found else None

    def __contains__(self, name: object) -> bool:
        """Same as :meth:`is_known`."""
        return isinstance(name, str) and self.is_known(name)

    def names(self) -> frozenset[str]:
        """Exact event names (family entries excluded)."""
        return frozenset(self._exact)

    def is_known(self, name: str) -> bool:
        """True when ``name`` has an exact definition or belongs to a family."""
        return bool(self.variants(name))

    def decode_text(self, name: str, texts: object, only: Collection[str] | None = None) -> DecodedText:
        """Decodes printed argument texts of event ``name`` with its variants, in order.

        Each text is decoded by the first variant that matches it. ``texts`` is a pyarrow
        string array (or chunked array, Series, list of str), typically unique texts.
        ``only``: the fields wanted (None: all); the others are matched but not converted.
        """
        arr = as_text_array(texts)
        n = len(arr)

        def decode_rows(ev: EventDef, rows: np.ndarray) -> tuple[np.ndarray, dict[str, pa.Array]]:
            subset = arr if len(rows) == n else arr.take(pa.array(rows))
            cols, ok = decoder_for(ev).decode_arrow(subset, only)
            keep = pa.array(ok)
            return ok, {k: col.filter(keep) for k, col in cols.items()}

        def fields_of(ev: EventDef) -> list[tuple[str, str]]:
            return [f for f in decoder_for(ev).fields if only is None or f[0] in only]

        return self.decode_by_variants(name, n, fields_of, decode_rows)

    def decode_by_variants(
        self,
        name: str,
        n: int,
        fields_of: Callable[[EventDef], Sequence[tuple[str, str]]],
        decode_rows: Callable[[EventDef, np.ndarray], tuple[np.ndarray, dict[str, pa.Array]]],
    ) -> DecodedText:
        """Decodes ``n`` argument records of ``name``: each by the first variant that fits.

        ``fields_of(ev)`` lists a variant's ``(field, kind)``; ``decode_rows(ev, rows)`` returns
        which of ``rows`` the variant fits and, for those, each field's values. The loop is the
        same for printed text, simple-backend bytes and LTTng fields; only those two differ.
        """
        variants = self.variants(name)[:MAX_VARIANTS]
        variant = np.full(n, -1, dtype=np.int8)
        order: list[str] = []
        types: dict[str, list[pa.DataType]] = {}
        for ev in variants:
            for field_name, kind in fields_of(ev):
                if field_name not in types:
                    order.append(field_name)
                    types[field_name] = []
                types[field_name].append(KIND_ARROW[kind])
        pieces: dict[str, list[tuple[np.ndarray, pa.Array]]] = {k: [] for k in order}
        remaining = np.arange(n)
        for i, ev in enumerate(variants):
            if len(remaining) == 0:
                break
            ok, cols = decode_rows(ev, remaining)
            if not ok.any():
                continue
            rows = remaining[ok]
            variant[rows] = i
            for field_name, col in cols.items():
                pieces[field_name].append((rows, col))
            remaining = remaining[~ok]
        columns = {k: self._assemble(pieces[k], _union_type(types[k]), n) for k in order}
        return DecodedText(to_pandas(columns, n), variant >= 0, variant)

    @staticmethod
    def _assemble(pieces: list[tuple[np.ndarray, pa.Array]], target: pa.DataType, n: int) -> pa.Array:
        if not pieces:
            return pa.nulls(n, type=target)
        parts = [_cast(col, target) for _, col in pieces]
        parts.append(pa.nulls(1, type=target))
        index = np.full(n, sum(len(p) for p in parts) - 1, dtype=np.int64)
        start = 0
        for rows, col in pieces:
            index[rows] = np.arange(start, start + len(col))
            start += len(col)
        return pa.concat_arrays(parts).take(pa.array(index))


@functools.cache
def _builtin_catalog() -> Catalog:
    return Catalog(_builtin_definitions())
