"""Typed decoding of the argument text QEMU's text backends print.

The log, ftrace and SystemTap-log backends print ``name `` followed by ``printf(fmt, args)``.
From an :class:`~tracetool._events.eventdefs.EventDef` this module builds one anchored regular
expression (valid for both RE2 and Python's ``re``) with a named group per printed argument,
runs it over many texts at once with ``pyarrow.compute.extract_regex`` and converts each
group column to a typed column named after the trace-events argument.

Kinds and pandas dtypes: ``int`` (``%d %i``) -> ``Int64``; ``uint`` (``%u %o``), ``hex``
(``%x %X``) and ``ptr`` (``%p``) -> ``UInt64``; ``float`` -> ``Float64``; ``str`` (``%s``) and
``char`` (``%c``) -> pyarrow-backed ``string``. A NULL string printed as ``(null)`` becomes NA,
a NULL pointer printed as ``(nil)`` becomes 0.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tracetool._events.eventdefs import EventDef

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

_CONVERSION = re.compile(
    r"%(?P<flags>[-+ #0']*)(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d*))?"
    r"(?P<length>hh|h|ll|l|L|q|j|z|Z|t)?(?P<conv>[diouxXeEfFgGaAcspnm%])"
)
_KIND_OF = {
    "d": "int",
    "i": "int",
    "u": "uint",
    "o": "uint",
    "x": "hex",
    "X": "hex",
    "p": "ptr",
    "s": "str",
    "c": "char",
    "e": "float",
    "E": "float",
    "f": "float",
    "F": "float",
    "g": "float",
    "G": "float",
    "a": "float",
    "A": "float",
}
_META = set("\\.^$|?*+()[]{}")
_FLOAT = (
    r"[-+ ]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
    r"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN])"
)
_HEXFLOAT = r"[-+ ]?0[xX][0-9a-fA-F]+(?:\.[0-9a-fA-F]*)?[pP][-+]?\d+"
_HEX_LUT = np.full(256, 255, dtype=np.uint8)
for _i, _ch in enumerate("0123456789abcdef"):
    _HEX_LUT[ord(_ch)] = _i
    _HEX_LUT[ord(_ch.upper())] = _i
_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1

NULL_STRINGS = ("(null)", "<null>")
"""How a NULL ``%s`` prints: glibc's printf, SystemTap's printf."""


@dataclass(frozen=True)
class Conversion:
    """One printf conversion of a format string."""

    text: str
    flags: str
    width: str | None  # digits, "*" or None
    precision: str | None  # digits, "*", "" (a lone '.') or None
    length: str
    conv: str

    @property
    def kind(self) -> str | None:
        """Field kind, or None for conversions that print no argument (``%%``, ``%m``, ``%n``)."""
        return _KIND_OF.get(self.conv)


def split_format(fmt: str) -> list[str | Conversion]:
    """Splits a C format into literal text and :class:`Conversion` items, in order.

    A ``%`` that does not start a valid conversion is kept as literal text, as glibc prints it.
    """
    out: list[str | Conversion] = []
    pos = 0
    literal: list[str] = []
    while pos < len(fmt):
        i = fmt.find("%", pos)
        if i < 0:
            literal.append(fmt[pos:])
            break
        literal.append(fmt[pos:i])
        m = _CONVERSION.match(fmt, i)
        if m is None:
            literal.append("%")
            pos = i + 1
            continue
        if m.group("conv") == "%":
            literal.append("%")
        else:
            if literal:
                out.append("".join(literal))
                literal = []
            out.append(
                Conversion(
                    m.group(0),
                    m.group("flags"),
                    m.group("width"),
                    m.group("prec"),
                    m.group("length") or "",
                    m.group("conv"),
                )
            )
        pos = m.end()
    if literal and "".join(literal):
        out.append("".join(literal))
    return [p for p in out if p != ""]


def _escape(text: str) -> str:
    return "".join("\\" + ch if ch in _META else ch for ch in text)


def _value_regex(c: Conversion) -> str:
    k = c.kind
    if k == "int":
        sign = "[-+]" if "+" in c.flags else ("[- ]" if " " in c.flags else "-")
        return sign + r"?\d+"
    if k == "uint":
        return r"[0-7]+" if c.conv == "o" else r"\d+"
    if k == "hex":
        return r"(?:0[xX])?[0-9a-fA-F]+" if "#" in c.flags else r"[0-9a-fA-F]+"
    if k == "ptr":
        return r"0[xX][0-9a-fA-F]+|\(nil\)"
    if k == "float":
        return _HEXFLOAT if c.conv in "aA" else _FLOAT
    if k == "char":
        return r"."
    if c.precision is not None and c.precision.isdigit() and int(c.precision) <= 1000:
        return ".{0," + c.precision + "}"  # RE2 allows counts up to 1000
    return r".*"


@dataclass(frozen=True)
class _Field:
    name: str
    kind: str
    conv: Conversion
    group: str


@dataclass(frozen=True)
class _Pattern:
    """The regex for one format: ``core`` (greedy ``%s``, the reference semantics) and, when
    it can be used, ``fast`` with some ``%s`` lazy plus the ``checks`` that make it exact."""

    core: str
    fields: list[_Field]
    fast: str | None
    checks: tuple[tuple[str, int], ...]


def _border_free(text: str) -> bool:
    """No proper prefix of ``text`` is also its suffix (so its occurrences cannot overlap)."""
    return all(text[:k] != text[-k:] for k in range(1, len(text)))


def _build(fmt: str, arg_names: Sequence[str]) -> _Pattern:
    """The unanchored patterns for ``fmt`` and the fields they capture, in order.

    A greedy ``.*`` makes RE2 slow (it cannot settle the field's end in one pass), a lazy one
    is 2-3 times faster but may split differently when a string value contains the literal that
    follows it. The fast pattern makes a ``%s`` lazy only when that literal ``L`` is non-empty
    and cannot overlap itself; a text is then decoded with it only if it holds ``L`` exactly as
    many times as the format's literal pieces do. In such a text every occurrence of ``L``
    belongs to a literal piece, in order, so the field's end is the same in every way the text
    can match, and lazy and greedy give the same fields. Other texts use ``core``.
    """
    parts = split_format(fmt)
    # Spaces a format ends with may have been cut by whatever stored the line.
    if parts and isinstance(parts[-1], str) and parts[-1] != parts[-1].rstrip(" "):
        parts[-1] = parts[-1].rstrip(" ")
        trailing = "[ ]*"
    else:
        trailing = ""
    literals = [p for p in parts if isinstance(p, str)]
    pieces: list[str] = []
    fast_pieces: list[str] = []
    checks: dict[str, int] = {}
    fields: list[_Field] = []
    next_arg = 0

    def take_arg() -> str:
        nonlocal next_arg
        name = arg_names[next_arg] if next_arg < len(arg_names) else f"arg{next_arg}"
        next_arg += 1
        return name

    for i, part in enumerate(parts):
        if isinstance(part, str):
            pieces.append(_escape(part))
            fast_pieces.append(_escape(part))
            continue
        if part.width == "*":
            take_arg()
        if part.precision == "*":
            take_arg()
        if part.conv == "m":
            pieces.append(".*?")
            fast_pieces.append(".*?")
            continue
        if part.conv == "n":
            take_arg()
            continue
        kind = part.kind
        assert kind is not None
        group = f"f{len(fields)}"
        fields.append(_Field(take_arg(), kind, part, group))
        padded = part.width is not None
        left = "-" in part.flags
        lead = "[ ]*" if padded and not left and kind not in ("str", "char") else ""
        trail = "[ ]*" if padded and left and kind not in ("str", "char") else ""
        value = _value_regex(part)
        pieces.append(f"{lead}(?P<{group}>{value}){trail}")
        follow = parts[i + 1] if i + 1 < len(parts) else None
        if value == ".*" and isinstance(follow, str) and follow and _border_free(follow):
            checks[follow] = sum(lit.count(follow) for lit in literals)
            value = ".*?"
        fast_pieces.append(f"{lead}(?P<{group}>{value}){trail}")
    core = "".join(pieces) + trailing
    fast = "".join(fast_pieces) + trailing if checks else None
    return _Pattern(core, fields, fast, tuple(checks.items()))


# --- column conversion ----------------------------------------------------------------------


def _python_ints(col: pa.Array, base: int, lo: int, hi: int, typ: pa.DataType) -> pa.Array:
    out: list[int | None] = []
    for s in col.to_pylist():
        if s is None:
            out.append(None)
            continue
        try:
            v = int(s.strip().removeprefix("0x").removeprefix("0X") or "0", base)
        except ValueError:
            out.append(None)
            continue
        out.append(v if lo <= v <= hi else None)
    return pa.array(out, type=typ)


def _decimal(col: pa.Array, signed: bool, flags: str) -> pa.Array:
    typ = pa.int64() if signed else pa.uint64()
    if signed and ("+" in flags or " " in flags):
        col = pc.replace_substring_regex(col, r"^[+ ]", "")
    try:
        return pc.cast(col, typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        lo, hi = (-(_INT64_MAX + 1), _INT64_MAX) if signed else (0, _UINT64_MAX)
        return _python_ints(col, 10, lo, hi, typ)


def _hex(col: pa.Array, prefixed: bool = False) -> pa.Array:
    """Hex digit strings to uint64, without a per-row loop.

    ``prefixed``: the texts may start with ``0x``/``0X`` (``%p``, ``%#x``), which is dropped.
    """
    n = len(col)
    if n == 0:
        return pa.array([], type=pa.uint64())
    missing = np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    s = pc.fill_null(col, "0")
    if prefixed:
        has = pc.or_(pc.starts_with(s, "0x"), pc.starts_with(s, "0X"))
        s = pc.if_else(has, pc.utf8_slice_codeunits(s, 2), s)
    s = pc.utf8_ltrim(s, characters="0")
    too_long = np.asarray(pc.greater(pc.binary_length(s), 16).to_numpy(zero_copy_only=False))
    if too_long.any():
        s = pc.if_else(pa.array(too_long), "", s)
    s = pc.utf8_lpad(s, width=16, padding="0").cast(pa.large_string())
    if isinstance(s, pa.ChunkedArray):
        s = s.combine_chunks()
    offsets = np.frombuffer(s.buffers()[1], dtype=np.int64)[s.offset : s.offset + n + 1]
    data = np.frombuffer(s.buffers()[2], dtype=np.uint8)
    start = int(offsets[0])
    nibbles = _HEX_LUT[data[start : start + 16 * n]].reshape(n, 16)
    bad = (nibbles == 255).any(axis=1)
    value = np.zeros(n, dtype=np.uint64)
    four = np.uint64(4)
    for j in range(16):
        value = (value << four) | nibbles[:, j].astype(np.uint64)
    return pa.array(value, type=pa.uint64(), mask=missing | too_long | bad)


def _float(col: pa.Array, conv: str) -> pa.Array:
    if conv in "aA":
        vals: list[float | None] = []
        for s in col.to_pylist():
            try:
                vals.append(None if s is None else float.fromhex(s.strip()))
            except ValueError:
                vals.append(None)
        return pa.array(vals, type=pa.float64())
    s = pc.utf8_trim_whitespace(col)
    try:
        return pc.cast(s, pa.float64())
    except pa.ArrowInvalid:
        out: list[float | None] = []
        for v in s.to_pylist():
            try:
                out.append(None if v is None else float(v))
            except ValueError:
                out.append(None)
        return pa.array(out, type=pa.float64())


def _convert(col: pa.Array, f: _Field) -> tuple[pa.Array, np.ndarray | None]:
    """Typed column for one field, and rows whose text did not convert (None: none failed)."""
    col = col.cast(pa.large_string())
    k = f.kind
    c = f.conv
    if k == "str" or k == "char":
        if c.width is not None and k == "str":
            col = pc.utf8_rtrim(col, " ") if "-" in c.flags else pc.utf8_ltrim(col, " ")
        if k == "str":
            is_null = pc.is_in(col, value_set=pa.array(NULL_STRINGS, pa.large_string()))
            col = pc.if_else(is_null, pa.scalar(None, pa.large_string()), col)
        return col, None
    if k == "int":
        out = _decimal(col, True, c.flags)
    elif k == "uint" and c.conv == "o":
        out = _python_ints(col, 8, 0, _UINT64_MAX, pa.uint64())
    elif k == "uint":
        out = _decimal(col, False, c.flags)
    elif k == "hex":
        out = _hex(col, prefixed="#" in c.flags)
    elif k == "ptr":
        out = _hex(pc.if_else(pc.equal(col, "(nil)"), "0", col), prefixed=True)
    else:
        out = _float(col, c.conv)
    failed = pc.and_(col.is_valid(), out.is_null())
    if pc.any(failed).as_py():
        return out, np.asarray(failed.to_numpy(zero_copy_only=False), dtype=bool)
    return out, None


def as_text_array(texts: object) -> pa.Array:
    """Whatever the caller holds (pyarrow array, chunked array, pandas Series, list of str) as a
    pyarrow large_string array."""
    if isinstance(texts, pa.ChunkedArray):
        arr: pa.Array = texts.combine_chunks()
    elif isinstance(texts, pa.Array):
        arr = texts
    elif isinstance(texts, pd.Series):
        arr = pa.array(texts.astype(object).where(texts.notna(), None).tolist(), type=pa.large_string())
    else:
        arr = pa.array(list(cast(Iterable[str | None], texts)), type=pa.large_string())
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    return arr


def to_pandas(columns: dict[str, pa.Array], n: int) -> pd.DataFrame:
    """Arrow columns from a decoder as a DataFrame with migtrace's nullable dtypes."""
    mapper = {
        pa.int64(): pd.Int64Dtype(),
        pa.uint64(): pd.UInt64Dtype(),
        pa.float64(): pd.Float64Dtype(),
        pa.large_string(): pd.StringDtype("pyarrow"),
        pa.string(): pd.StringDtype("pyarrow"),
    }
    data = {name: col.to_pandas(types_mapper=mapper.get) for name, col in columns.items()}
    return pd.DataFrame(data, index=pd.RangeIndex(n))


class TextDecoder:
    """Decoder for the printed arguments of one event definition.

    ``fields`` lists ``(argument name, kind)`` for every argument the format prints, in order.
    """

    def __init__(self, event: EventDef) -> None:
        self.event = event
        built = _build(event.fmt, [a.name for a in event.args])
        self._fields = built.fields
        self.pattern = "^" + built.core + "$"
        """Anchored RE2 pattern with one named group ``fN`` per field."""
        self._fast = "^" + built.fast + "$" if built.fast is not None else None
        self._checks = built.checks
        self._python = re.compile(built.core, re.S)
        self.fields: list[tuple[str, str]] = [(f.name, f.kind) for f in self._fields]

    def __repr__(self) -> str:
        return f"TextDecoder({self.event.name!r}, fields={self.fields!r})"

    def decode_arrow(self, texts: object) -> tuple[dict[str, pa.Array], np.ndarray]:
        """Like :meth:`decode`, returning pyarrow columns (int64/uint64/float64/large_string)."""
        arr = as_text_array(texts)
        n = len(arr)
        if not self._fields:
            hit = pc.match_substring_regex(arr, self.pattern)
            return {}, np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), bool)
        if n == 0:
            return {f.name: pa.array([], type=KIND_ARROW[f.kind]) for f in self._fields}, np.zeros(
                0, dtype=bool
            )
        groups, matched = self._extract(arr)
        columns: dict[str, pa.Array] = {}
        failed = np.zeros(n, dtype=bool)
        for f, col in zip(self._fields, groups, strict=True):
            out, bad = _convert(col, f)
            columns[f.name] = out
            if bad is not None:
                failed |= bad
        if failed.any():
            matched &= ~failed
            keep = pa.array(matched)
            columns = {k: pc.if_else(keep, v, pa.scalar(None, v.type)) for k, v in columns.items()}
        return columns, matched

    def _extract(self, arr: pa.Array) -> tuple[list[pa.Array], np.ndarray]:
        """Group texts per field (null where unmatched) and the matched mask."""
        struct = pc.extract_regex(arr, self._fast or self.pattern)
        matched = np.asarray(struct.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        groups: list[pa.Array] = struct.flatten()
        if self._fast is None:
            return groups, matched
        unsure = np.zeros(len(arr), dtype=bool)
        for literal, expected in self._checks:
            count = pc.count_substring(arr, literal).to_numpy(zero_copy_only=False)
            unsure |= count != expected
        unsure &= matched
        if unsure.any():
            rows = np.flatnonzero(unsure)
            again = pc.extract_regex(arr.take(pa.array(rows)), self.pattern).flatten()
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


def _python_value(f: _Field, s: str) -> object:
    k = f.kind
    if k in ("str", "char"):
        if k == "str" and f.conv.width is not None:
            s = s.rstrip(" ") if "-" in f.conv.flags else s.lstrip(" ")
        return None if (k == "str" and s in NULL_STRINGS) else s
    if k == "float":
        return float.fromhex(s.strip()) if f.conv.conv in "aA" else float(s)
    if k == "ptr" and s == "(nil)":
        return 0
    s = s.strip()
    base = 16 if k in ("hex", "ptr") else (8 if f.conv.conv == "o" else 10)
    value = int(s, base) if base != 16 else int(s.removeprefix("0x").removeprefix("0X"), 16)
    lo, hi = (-(_INT64_MAX + 1), _INT64_MAX) if k == "int" else (0, _UINT64_MAX)
    if not lo <= value <= hi:
        raise ValueError("out of range")
    return value


def _match_fields(rx: re.Pattern[str], fields: list[_Field], text: str) -> dict[str, object] | None:
    m = rx.fullmatch(text)
    if m is None:
        return None
    out: dict[str, object] = {}
    try:
        for f in fields:
            out[f.name] = _python_value(f, m.group(f.group))
    except ValueError:
        return None
    return out


def match_format(fmt: str, text: str, names: Iterable[str] = ()) -> dict[str, object] | None:
    """Matches one printed text against a C format; returns the values or None.

    Fields are named after ``names`` in order (``arg0``, ``arg1``... beyond them). Pure Python:
    no pyarrow, one text; the same pattern and conversions as :class:`TextDecoder`.
    """
    built = _build(fmt, list(names))
    return _match_fields(re.compile(built.core, re.S), built.fields, text)


@functools.lru_cache(maxsize=4096)
def decoder_for(event: EventDef) -> TextDecoder:
    """The (cached) decoder for one event definition."""
    return TextDecoder(event)
