"""Simple-backend argument payloads: typed fields, and the text the log backend would print.

The reader stores each distinct (event, payload) pair once, as ``name NUL payload``. A payload
is the event's arguments in trace-events order: every non-string argument as a u64 (the C
value cast to ``uint64_t``, so signed types are sign-extended), every string as a u32 length
and that many bytes (a NULL string is written as length 0). The file does not say which
layout it used, so each payload is tried against the event's catalog variants in order; a
variant fits when the arguments use exactly the payload's bytes and each integer is within its
C type's range.

Typed columns are what the log backend's text decodes to with the same variant: each printed
argument goes through the printf conversion of the format (``%x`` of an ``int`` prints its low
32 bits, ``%d`` reads 32 bits...), so ``trace.fields(name)`` has the same names, dtypes and
values for both backends. Rendering builds the same text, vectorised per conversion; rare
conversions (octal, floats, ``*`` widths, ``+``/space flags) are formatted one payload at a
time. Payloads that no variant fits are shown as ``<raw HEX>``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parsers.segment import ARGS_SIMPLE_BE, ARGS_SIMPLE_LE
from tracetool._events import argdecode, argrender
from tracetool._events.catalog import MAX_VARIANTS, Catalog, DecodedText
from tracetool._events.decode import KIND_ARROW
from tracetool._events.eventdefs import EventDef
from tracetool._events.printf_format import Conversion
from tracetool._events.simple_payloads import (
    Layout,
    Parsed,
    Payloads,
    Printed,
    layout_for,
    parse,
)

if TYPE_CHECKING:
    from tracetool._model.trace import Trace

_LENGTH_BITS = {
    "hh": 8,
    "h": 16,
    "": 32,
    "l": 64,
    "ll": 64,
    "q": 64,
    "L": 64,
    "j": 64,
    "z": 64,
    "Z": 64,
    "t": 64,
}
_FAST_CONVERSIONS = frozenset("diuxXpsc")
_HEX_LOWER = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_HEX_UPPER = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
_NIBBLE_SHIFTS = np.arange(60, -4, -4, dtype=np.uint64)
_CHUNK_ROWS = 1 << 20
_STR = pa.large_string()

# ------------------------------------------------------------------------------ printf values


def printed_value(p: Printed, layout: Layout, parsed: Parsed) -> pa.Array:
    """The value printf prints for conversion ``p`` (typed as the text decoder types it)."""
    kind = p.conv.kind
    n = int(parsed.ok.sum())
    if p.arg < 0:
        return pa.nulls(n, type=KIND_ARROW[kind or "str"])
    if layout.strings[p.arg]:
        if kind != "str":
            return pa.nulls(n, type=KIND_ARROW[kind or "str"])
        text = parsed.strs[p.arg]
        if p.conv.precision and p.conv.precision.isdigit():
            text = pc.utf8_slice_codeunits(text, 0, int(p.conv.precision))
        return text
    v = parsed.ints[p.arg]
    if kind == "str" or kind is None:
        return pa.nulls(n, type=_STR)
    if kind == "ptr":
        return pa.array(v, type=pa.uint64())
    if kind == "char":
        low = (v & np.uint64(0xFF)).astype(np.uint8)
        ascii_ = low < 0x80
        one_byte = pa.Array.from_buffers(
            _STR,
            n,
            [
                None,
                pa.py_buffer(np.arange(n + 1, dtype=np.int64)),
                pa.py_buffer(np.where(ascii_, low, ord("?")).astype(np.uint8).tobytes()),
            ],
        )
        # a lone byte >= 0x80 is no UTF-8: the log reader shows it as U+FFFD
        return pc.if_else(pa.array(ascii_), one_byte, pa.scalar("\ufffd", _STR))
    if kind == "float":
        return pa.array(v.astype(np.float64), type=pa.float64())
    bits = _LENGTH_BITS.get(p.conv.length, 64)
    masked = v if bits == 64 else v & np.uint64((1 << bits) - 1)
    if kind == "int":
        signed = (
            masked.view(np.int64)
            if bits == 64
            else (
                masked.astype(np.int64)
                - np.where(masked >= np.uint64(1 << (bits - 1)), np.int64(1) << bits, 0)
            )
        )
        return pa.array(signed, type=pa.int64())
    return pa.array(masked, type=pa.uint64())


# ------------------------------------------------------------------------------ typed decoding

PrintedValue = Callable[[Printed, Layout, Parsed], pa.Array]


def decode_variants(
    catalog: Catalog,
    event: str,
    n: int,
    parse_rows: Callable[[Layout, np.ndarray], Parsed],
    value: PrintedValue = printed_value,
) -> DecodedText:
    """Typed fields of ``n`` argument records of ``event``, trying its variants in catalog order.

    ``parse_rows(layout, rows)`` parses the given records with one variant's layout; ``value``
    turns a parsed argument into the value the text decoder would give. Shared by every
    backend whose arguments are not printed text (simple-backend bytes, LTTng fields).
    """

    def decode_rows(ev: EventDef, rows: np.ndarray) -> tuple[np.ndarray, dict[str, pa.Array]]:
        layout = layout_for(ev)
        parsed = parse_rows(layout, rows)
        if not parsed.ok.any():
            return parsed.ok, {}
        return parsed.ok, {p.name: value(p, layout, parsed) for p in layout.parts if isinstance(p, Printed)}

    return catalog.decode_by_variants(event, n, lambda ev: layout_for(ev).fields, decode_rows)


def decode_payloads(catalog: Catalog, event: str, payloads: Payloads) -> DecodedText:
    """Typed fields of ``event`` for each payload, trying its variants in catalog order."""
    return decode_variants(
        catalog, event, len(payloads), lambda layout, rows: parse(layout, payloads.take(rows))
    )


def _decoder(big_endian: bool) -> argdecode.Decoder:
    def decode(catalog: Catalog, event: str, values: pa.Array, only: Collection[str] | None) -> DecodedText:
        return decode_payloads(catalog, event, Payloads.from_values(values, big_endian)).select(only)

    return decode


# ------------------------------------------------------------------------------ rendering


def hex_digits(v: np.ndarray, upper: bool = False) -> pa.Array:
    """``%x`` of each uint64 (no prefix, no padding) as a large_string array."""
    lut = _HEX_UPPER if upper else _HEX_LOWER
    out = []
    for lo in range(0, max(len(v), 1), _CHUNK_ROWS):
        part = v[lo : lo + _CHUNK_ROWS].astype(np.uint64)
        nib = ((part[:, None] >> _NIBBLE_SHIFTS[None, :]) & np.uint64(0xF)).astype(np.uint8)
        first = np.where(part == 0, 15, np.argmax(nib != 0, axis=1))
        keep = np.arange(16)[None, :] >= first[:, None]
        body = lut[nib][keep]
        offsets = np.zeros(len(part) + 1, dtype=np.int64)
        np.cumsum(16 - first, out=offsets[1:])
        out.append(
            pa.Array.from_buffers(
                _STR, len(part), [None, pa.py_buffer(offsets), pa.py_buffer(body.tobytes())]
            )
        )
    return pa.concat_arrays(out) if len(out) > 1 else out[0]


def _is_fast(c: Conversion) -> bool:
    if c.conv not in _FAST_CONVERSIONS or c.width == "*" or c.precision == "*":
        return False
    if set(c.flags) - set("-0#"):
        return False
    if "#" in c.flags and c.conv not in "xX":
        return False
    return not (c.precision is not None and (c.precision == "" or c.conv in "pc"))


def _lpad(arr: pa.Array, width: int, fill: str = " ") -> pa.Array:
    return pc.utf8_lpad(arr, width=width, padding=fill)


def _format_fast(c: Conversion, value: pa.Array) -> pa.Array:
    """Text of one conversion for many values (see ``_is_fast`` for what is covered)."""
    n = len(value)
    width = int(c.width) if c.width else 0
    left = "-" in c.flags
    valid = value.is_valid()
    empty = pa.repeat(pa.scalar("", _STR), n)
    if c.conv in "sc":
        text = value.fill_null("")
    else:
        if c.conv in "di":
            ints = value.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
            negative = ints < 0
            # -(x + 1) + 1 keeps INT64_MIN representable
            magnitude = np.where(negative, -(ints + 1), ints).astype(np.uint64) + negative
            digits = pc.cast(pa.array(magnitude, type=pa.uint64()), _STR)
            sign = pc.if_else(pa.array(negative), pa.scalar("-", _STR), empty)
            prefix = empty
        else:
            raw = value.fill_null(0).to_numpy(zero_copy_only=False).astype(np.uint64)
            if c.conv == "u":
                digits = pc.cast(pa.array(raw, type=pa.uint64()), _STR)
            else:
                digits = hex_digits(raw, upper=c.conv == "X")
            sign = empty
            nonzero = pa.array(raw != 0)
            marker = "0x" if c.conv == "p" else ("0" + c.conv if "#" in c.flags else "")
            prefix = pc.if_else(nonzero, pa.scalar(marker, _STR), empty) if marker else empty
            if c.conv == "p":
                digits = pc.if_else(nonzero, digits, pa.scalar("(nil)", _STR))
        if c.precision:
            digits = _lpad(digits, int(c.precision), "0")
        elif "0" in c.flags and width and not left:
            used = pc.add(pc.utf8_length(sign), pc.utf8_length(prefix))
            padded = digits
            for extra in sorted(set(used.to_pylist())):
                candidate = _lpad(digits, max(width - extra, 0), "0")
                padded = pc.if_else(pc.equal(used, extra), candidate, padded)
            digits = padded
        text = pc.binary_join_element_wise(sign, prefix, digits, pa.scalar("", _STR))
    if width:
        text = pc.utf8_rpad(text, width=width, padding=" ") if left else _lpad(text, width)
    return pc.if_else(valid, text, pa.scalar(None, _STR))


def _format_slow(p: Printed, layout: Layout, parsed: Parsed, value: pa.Array) -> pa.Array:
    """Text of one rare conversion, one payload at a time, with C printf's rules."""
    c = p.conv
    n = len(value)

    def star(arg: int) -> list[int | None]:
        if arg < 0 or layout.strings[arg]:
            return [None] * n
        v = parsed.ints[arg].astype(np.uint64) & np.uint64(0xFFFFFFFF)
        return (v.astype(np.int64) - np.where(v >= np.uint64(1 << 31), np.int64(1) << 32, 0)).tolist()

    widths = star(p.width_arg) if c.width == "*" else [None] * n
    precisions = star(p.precision_arg) if c.precision == "*" else [None] * n
    out: list[str | None] = []
    conv = {"i": "d", "u": "d", "p": "x", "F": "f"}.get(c.conv, c.conv)
    for v, w, pr in zip(value.to_pylist(), widths, precisions, strict=True):
        if v is None:
            out.append(None)
            continue
        flags = c.flags.replace("'", "")
        width = str(w) if c.width == "*" and w is not None else (c.width or "")
        if width.startswith("-"):
            flags, width = flags + "-", width[1:]
        prec = (
            ""
            if c.precision is None
            else "."
            + (
                str(pr)
                if c.precision == "*" and pr is not None and pr >= 0
                else ("" if c.precision == "*" else c.precision)
            )
        )
        if c.conv == "a" or c.conv == "A":
            text = float(v).hex()
            out.append(text.upper() if c.conv == "A" else text)
            continue
        if c.conv == "o" and "#" in flags:
            flags = flags.replace("#", "")
            body = ("%" + flags + width + prec + "o") % v
            out.append(body if v == 0 else body.replace(oct(v)[2:], "0" + oct(v)[2:], 1))
            continue
        if c.conv == "p" and v == 0:
            out.append(("%" + flags.replace("0", "") + width + "s") % "(nil)")
            continue
        text = ("%" + flags + width + prec + conv) % v
        out.append("0x" + text if c.conv == "p" else text)
    return pa.array(out, type=_STR)


def render_parsed(layout: Layout, parsed: Parsed) -> pa.Array:
    """The printed text of each fitting payload of one variant."""
    n = int(parsed.ok.sum())
    pieces: list[pa.Array | pa.Scalar] = []
    for p in layout.parts:
        if isinstance(p, str):
            pieces.append(pa.scalar(p, _STR))
            continue
        value = printed_value(p, layout, parsed)
        text = _format_fast(p.conv, value) if _is_fast(p.conv) else _format_slow(p, layout, parsed, value)
        pieces.append(text)
    if not pieces:
        return pa.nulls(n, _STR).fill_null("")
    if not any(isinstance(x, pa.Array) for x in pieces):
        return pa.array(["".join(str(x.as_py()) for x in pieces)] * n, type=_STR)
    return pc.binary_join_element_wise(
        *pieces, pa.scalar("", _STR), null_handling="replace", null_replacement="?"
    )


def raw_text(payloads: Payloads) -> pa.Array:
    """``<raw HEX>`` for payloads no variant fits (bytes as two hex digits each)."""
    length = payloads.end - payloads.start
    total = int(length.sum())
    offsets = np.zeros(len(length) + 1, dtype=np.int64)
    np.cumsum(length, out=offsets[1:])
    idx = np.arange(total, dtype=np.int64) - np.repeat(offsets[:-1] - payloads.start, length)
    body = payloads.data[idx]
    pairs = np.stack([_HEX_LOWER[body >> 4], _HEX_LOWER[body & 0xF]], axis=1).reshape(-1)
    hexed = pa.Array.from_buffers(
        _STR, len(length), [None, pa.py_buffer(offsets * 2), pa.py_buffer(pairs.tobytes())]
    )
    return pc.binary_join_element_wise(
        pa.scalar("<raw ", _STR), hexed, pa.scalar(">", _STR), pa.scalar("", _STR)
    )


def render_payloads(catalog: Catalog, event: str, payloads: Payloads) -> pa.Array:
    """The log backend's argument text for each payload of ``event``."""
    n = len(payloads)
    parts: list[tuple[np.ndarray, pa.Array]] = []
    remaining = np.arange(n)
    for ev in catalog.variants(event)[:MAX_VARIANTS]:
        if not len(remaining):
            break
        layout = layout_for(ev)
        parsed = parse(layout, payloads.take(remaining))
        if parsed.ok.any():
            parts.append((remaining[parsed.ok], render_parsed(layout, parsed)))
            remaining = remaining[~parsed.ok]
    if len(remaining):
        parts.append((remaining, raw_text(payloads.take(remaining))))
    if len(parts) == 1 and len(parts[0][0]) == n:
        return parts[0][1]
    return Catalog._assemble(parts, _STR, n)


def event_names(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The event name of each ``name NUL payload`` value, as a dictionary array."""
    split = pc.split_pattern(values, pattern=b"\x00", max_splits=1)
    names = pc.list_element(split, 0).cast(pa.large_binary()).cast(_STR)
    encoded = names.dictionary_encode()
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    return encoded


def render_values(catalog: Catalog, values: pa.Array, big_endian: bool) -> pa.Array:
    """Text of every value of an args table (any mix of events)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    n = len(values)
    if n == 0:
        return pa.array([], type=_STR)
    names = event_names(values)
    codes = names.indices.to_numpy(zero_copy_only=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names.dictionary) + 1))
    payloads = Payloads.from_values(values, big_endian)
    parts: list[tuple[np.ndarray, pa.Array]] = []
    for k, event in enumerate(names.dictionary.to_pylist()):
        rows = order[bounds[k] : bounds[k + 1]]
        if len(rows):
            parts.append((rows, render_payloads(catalog, event, payloads.take(rows))))
    return Catalog._assemble(parts, _STR, n)


def _renderer(big_endian: bool) -> Callable[[Trace, int, pa.Array], pa.Array]:
    def render(trace: Trace, offset: int, values: pa.Array) -> pa.Array:
        return render_values(trace.catalog, values, big_endian)

    return render


for _encoding, _big in ((ARGS_SIMPLE_LE, False), (ARGS_SIMPLE_BE, True)):
    argdecode.register_decoder(_encoding, _decoder(_big))
    argrender.register_renderer(_encoding, _renderer(_big))
