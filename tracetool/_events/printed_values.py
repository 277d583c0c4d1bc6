"""Printed argument texts to typed values: whole pyarrow columns at once (the group columns of
:class:`~tracetool._events.decode.TextDecoder`), or one text in Python (``match_format``).

Kinds and their types: ``int`` (``%d %i``) -> int64; ``uint`` (``%u %o``), ``hex`` (``%x %X``)
and ``ptr`` (``%p``) -> uint64; ``float`` -> float64; ``str`` (``%s``) and ``char`` (``%c``) ->
string. A NULL string printed as ``(null)`` becomes NA, a NULL pointer printed as ``(nil)``
becomes 0; a value its type cannot hold does not convert.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tracetool._events.printf_format import Field

_HEX_LUT = np.full(256, 255, dtype=np.uint8)
for _i, _ch in enumerate("0123456789abcdef"):
    _HEX_LUT[ord(_ch)] = _i
    _HEX_LUT[ord(_ch.upper())] = _i
_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1

NULL_STRINGS = ("(null)", "<null>")
"""How a NULL ``%s`` prints: glibc's printf, SystemTap's printf."""


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


def convert_column(col: pa.Array, f: Field) -> tuple[pa.Array, np.ndarray | None]:
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


def python_value(f: Field, s: str) -> object:
    """The value of one field's printed text ``s``; ValueError when it does not convert."""
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
