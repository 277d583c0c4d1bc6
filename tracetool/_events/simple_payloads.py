"""The simple backend's argument payloads, walked per catalog variant.

A payload is an event's arguments in trace-events order: every non-string argument as a u64
(the C value cast to ``uint64_t``, so signed types are sign-extended), every string as a u32
length and that many bytes (a NULL string is written as length 0). :func:`layout_for` gives the
layout a catalog variant implies, :class:`Payloads` holds many payloads as one byte buffer with
offsets, and :func:`parse` reads them all at once with numpy, marking where a layout does not
fit (bytes left over or missing, an integer outside its C type's range).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tracetool._events.eventdefs import EventDef
from tracetool._events.printf_format import Conversion, split_format

_STR = pa.large_string()


@dataclass(frozen=True)
class Printed:
    """One printf conversion of a format and the argument it prints."""

    conv: Conversion
    arg: int  # index into the event's arguments (-1: none left)
    name: str  # field name, as the text decoder names it
    width_arg: int = -1  # argument giving a ``*`` width
    precision_arg: int = -1  # argument giving a ``*`` precision


@dataclass(frozen=True)
class Layout:
    """How one event definition lays out its payload and prints it."""

    event: EventDef
    strings: tuple[bool, ...]
    bits: tuple[int, ...]
    signed: tuple[bool, ...]
    boolean: tuple[bool, ...]
    parts: tuple[str | Printed, ...]  # the format: literal text and conversions

    @property
    def fields(self) -> list[tuple[str, str]]:
        """``(field name, kind)`` per printed value, as the text decoder lists them."""
        return [
            (p.name, p.conv.kind or "")
            for p in self.parts
            if isinstance(p, Printed) and p.conv.conv not in "nm"
        ]


@functools.cache
def layout_for(event: EventDef) -> Layout:
    """The (cached) payload layout and printing plan of one event definition."""
    names = [a.name for a in event.args]
    parts: list[str | Printed] = []
    next_arg = 0

    def take() -> tuple[int, str]:
        nonlocal next_arg
        i = next_arg
        next_arg += 1
        return (i if i < len(names) else -1), (names[i] if i < len(names) else f"arg{i}")

    for piece in split_format(event.fmt):
        if isinstance(piece, str):
            parts.append(piece)
            continue
        width_arg = take()[0] if piece.width == "*" else -1
        precision_arg = take()[0] if piece.precision == "*" else -1
        if piece.conv == "m":
            continue
        arg, name = take()
        if piece.conv == "n":
            continue
        parts.append(Printed(piece, arg, name, width_arg, precision_arg))
    return Layout(
        event=event,
        strings=tuple(a.is_string for a in event.args),
        bits=tuple(a.bits for a in event.args),
        signed=tuple(a.is_signed for a in event.args),
        boolean=tuple(a.ctype.replace("const", "").strip() in ("bool", "_Bool") for a in event.args),
        parts=tuple(parts),
    )


# ------------------------------------------------------------------------------ payload walk


@dataclass
class Payloads:
    """Binary payloads as numpy views: ``data[start[i]:end[i]]`` is payload ``i``."""

    data: np.ndarray  # uint8, at least 8 bytes
    start: np.ndarray  # int64
    end: np.ndarray  # int64
    big_endian: bool

    @classmethod
    def from_values(
        cls, values: pa.Array | pa.ChunkedArray, big_endian: bool, skip_name: bool = True
    ) -> Payloads:
        """Views of ``name NUL payload`` values; ``skip_name`` starts each after its NUL."""
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if not pa.types.is_large_binary(values.type):
            values = values.cast(pa.large_binary())
        n = len(values)
        offsets = (
            np.frombuffer(values.buffers()[1], dtype=np.int64)[values.offset : values.offset + n + 1]
            if n
            else np.zeros(1, dtype=np.int64)
        )
        buf = values.buffers()[2]
        data = np.frombuffer(buf, dtype=np.uint8) if buf is not None else np.zeros(0, np.uint8)
        if len(data) < 8:
            data = np.concatenate([data, np.zeros(8, dtype=np.uint8)])
        start, end = offsets[:-1].astype(np.int64), offsets[1:].astype(np.int64)
        if skip_name and n:
            start = start + _name_lengths(data, start, end) + 1
        return cls(data, start, end, big_endian)

    def u64(self, pos: np.ndarray) -> np.ndarray:
        """The u64 at each byte position (positions must leave 8 bytes)."""
        view = np.ndarray(
            buffer=self.data,
            dtype=">u8" if self.big_endian else "<u8",
            shape=(len(self.data) - 7,),
            strides=(1,),
        )
        return view[pos].astype(np.uint64)

    def u32(self, pos: np.ndarray) -> np.ndarray:
        """The u32 at each byte position."""
        view = np.ndarray(
            buffer=self.data,
            dtype=">u4" if self.big_endian else "<u4",
            shape=(len(self.data) - 3,),
            strides=(1,),
        )
        return view[pos].astype(np.int64)

    def take(self, rows: np.ndarray) -> Payloads:
        """The payloads of ``rows`` only (views share the data)."""
        return Payloads(self.data, self.start[rows], self.end[rows], self.big_endian)

    def __len__(self) -> int:
        return len(self.start)


def _name_lengths(data: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Bytes before the NUL that ends each value's event name."""
    out = np.zeros(len(start), dtype=np.int64)
    pending = np.arange(len(start))
    pos = start.copy()
    while len(pending):
        at = pos[pending]
        inside = at < end[pending]
        is_nul = np.zeros(len(at), dtype=bool)
        is_nul[inside] = data[at[inside]] == 0
        done = is_nul | ~inside
        out[pending[done]] = at[done] - start[pending[done]]
        pending = pending[~done]
        pos[pending] += 1
    return out


def _gather_strings(data: np.ndarray, start: np.ndarray, length: np.ndarray) -> pa.Array:
    """Bytes ``data[start[i]:start[i]+length[i]]`` as a large_string array (bad UTF-8 replaced)."""
    n = len(start)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(length, out=offsets[1:])
    total = int(offsets[-1])
    if total:
        idx = np.arange(total, dtype=np.int64) - np.repeat(offsets[:-1] - start, length)
        body = data[idx]
    else:
        body = np.zeros(0, dtype=np.uint8)
    binary = pa.Array.from_buffers(
        pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(body.tobytes())]
    )
    try:
        return binary.cast(_STR)
    except pa.ArrowInvalid:
        return pa.array([b.decode("utf-8", "replace") for b in binary.to_pylist()], type=_STR)


@dataclass
class Parsed:
    """One variant's reading of some payloads: which fit, and every argument's raw value."""

    ok: np.ndarray  # bool per payload
    ints: dict[int, np.ndarray]  # argument index -> uint64 as written (for fitting rows)
    strs: dict[int, pa.Array]  # argument index -> large_string (for fitting rows)


def parse(layout: Layout, payloads: Payloads) -> Parsed:
    """Walks ``payloads`` with ``layout``; values are kept only for the payloads that fit."""
    n = len(payloads)
    cur = payloads.start.copy()
    end = payloads.end
    ok = np.ones(n, dtype=bool)
    ints: dict[int, np.ndarray] = {}
    str_at: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for j, is_str in enumerate(layout.strings):
        if is_str:
            ok &= cur + 4 <= end
            length = payloads.u32(np.where(ok, cur, 0))
            ok &= cur + 4 + length <= end
            str_at[j] = (cur + 4, length)
            cur = cur + 4 + np.where(ok, length, 0)
        else:
            ok &= cur + 8 <= end
            value = payloads.u64(np.where(ok, cur, 0))
            ok &= _in_range(value, layout.bits[j], layout.signed[j], layout.boolean[j])
            ints[j] = value
            cur = cur + 8
    ok &= cur == end
    keep = np.flatnonzero(ok)
    strs = {j: _gather_strings(payloads.data, s[keep], ln[keep]) for j, (s, ln) in str_at.items()}
    return Parsed(ok, {j: v[keep] for j, v in ints.items()}, strs)


def _in_range(v: np.ndarray, bits: int, signed: bool, boolean: bool) -> np.ndarray:
    """Whether each u64 is a value the C type can hold, widened as QEMU widens it."""
    if boolean:
        return v <= 1
    if bits >= 64:
        return np.ones(len(v), dtype=bool)
    if signed:
        return (v + np.uint64(1 << (bits - 1))) < np.uint64(1 << bits)
    return v < np.uint64(1 << bits)
