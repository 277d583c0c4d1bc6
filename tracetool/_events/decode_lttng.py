"""LTTng payloads (``args_encoding="lttng"``): typed fields, and the text the log backend prints.

The LTTng reader stores each distinct (event, payload) pair as ``EVENT { FIELD = VALUE, ... }``
(UTF-8 bytes), exactly as babeltrace printed the payload. Fields are named after the
trace-events arguments and hold typed values: integers in decimal, ``ctf_integer_hex``
arguments as ``0x`` + upper-case hex (masked to the field's size), strings double-quoted with
babeltrace2's backslash escapes (babeltrace 1 prints them raw), bools as 0/1.

A payload is read with the first catalog variant of the event whose argument names, in order,
are the payload's field names. Each argument becomes the 64-bit value QEMU passes to its
backends (signed types sign-extended), which is the same intermediate form the simple backend
decoder builds (:mod:`tracetool._events.decode_simple`): its printf model then gives the typed columns
(``%x`` of an ``int`` keeps 32 bits, ``(null)`` strings are NA...) and the rendered log text,
so ``trace.fields(name)`` and ``trace.events["args"]`` are the same whichever of the log,
simple or ust backends recorded the trace. Payloads that no variant fits keep NA fields
(``decoded`` False) and are shown as babeltrace printed them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parsers.lttng import unescape_babeltrace
from parsers.segment import ARGS_LTTNG
from tracetool._events import argdecode, argrender
from tracetool._events.catalog import MAX_VARIANTS, Catalog, DecodedText
from tracetool._events.decode_simple import decode_variants, printed_value, render_parsed
from tracetool._events.eventdefs import EventDef
from tracetool._events.simple_payloads import Layout, Parsed, Printed, layout_for

if TYPE_CHECKING:
    from tracetool._model.trace import Trace

_STR = pa.large_string()
_HEX_VALUE = np.full(256, 255, dtype=np.uint8)
for _i, _ch in enumerate(b"0123456789abcdef"):
    _HEX_VALUE[_ch] = _i
    _HEX_VALUE[bytes([_ch]).upper()[0]] = _i
_FLOAT_WORDS = ("float", "double")
_NULL_STRING = "(null)"  # lttng-ust records a NULL string as this text, like glibc prints it


# ------------------------------------------------------------------------------ reading values


def split_entries(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """(event name, payload block) of each ``EVENT { ... }`` entry, as strings."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    text = values.cast(_STR) if not pa.types.is_large_string(values.type) else values
    parts = pc.split_pattern(text, pattern=" ", max_splits=1)
    name = pc.list_element(parts, 0)
    payload = pc.fill_null(
        pc.list_element(
            pc.if_else(
                pc.greater(pc.list_value_length(parts), 1), parts, pa.scalar(["", ""], pa.list_(_STR))
            ),
            1,
        ),
        "",
    )
    return name.cast(_STR), payload.cast(_STR)


@functools.cache
def payload_pattern(event: EventDef) -> str:
    """RE2 pattern of the babeltrace payload block of ``event``: one group ``fN`` per argument."""
    if not event.args:
        return r"^(?:\{ \})?$"
    fields = []
    for j, arg in enumerate(event.args):
        value = f'"(?P<f{j}>.*?)"' if arg.is_string else f'(?P<f{j}>[^ ,{{}}"]+)'
        fields.append(f"{re.escape(arg.name)} = {value}")
    return r"^\{ " + ", ".join(fields) + r" \}$"


def hex_to_u64(digits: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Hex digit strings (no prefix) to uint64, and which were valid (1..16 hex digits)."""
    n = len(digits)
    lengths = np.asarray(pc.fill_null(pc.binary_length(digits), 0), dtype=np.int64)
    ok = (lengths >= 1) & (lengths <= 16)
    padded = pc.utf8_lpad(pc.if_else(pa.array(ok), digits, pa.scalar("0", _STR)), width=16, padding="0").cast(
        _STR
    )
    if isinstance(padded, pa.ChunkedArray):
        padded = padded.combine_chunks()
    offsets = np.frombuffer(padded.buffers()[1], dtype=np.int64)[padded.offset : padded.offset + n + 1]
    data = np.frombuffer(padded.buffers()[2], dtype=np.uint8) if n else np.zeros(0, np.uint8)
    rows = np.arange(n)
    take = offsets[:-1, None] + np.arange(16)[None, :] if n else np.zeros((0, 16), np.int64)
    nib = _HEX_VALUE[data[take]] if n else np.zeros((0, 16), np.uint8)
    ok &= ~(nib == 255).any(axis=1) & (offsets[1:] - offsets[:-1] == 16)
    value = np.zeros(n, dtype=np.uint64)
    for j in range(16):
        value = (value << np.uint64(4)) | nib[rows, j].astype(np.uint64)
    return np.where(ok, value, np.uint64(0)), ok


def integer_values(col: pa.Array, bits: int, signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Babeltrace integer texts (decimal, ``0x`` hex, ``true``/``false``) as the 64-bit values
    QEMU hands its backends: signed types sign-extended from ``bits``. Also which parsed."""
    n = len(col)
    col = pc.fill_null(col, "")
    value = np.zeros(n, dtype=np.uint64)
    ok = np.zeros(n, dtype=bool)
    is_hex = np.asarray(pc.starts_with(col, "0x"), dtype=bool)
    if is_hex.any():
        v, good = hex_to_u64(pc.utf8_slice_codeunits(col.filter(pa.array(is_hex)), 2))
        value[is_hex], ok[is_hex] = v, good
        if signed and bits < 64:
            sign = np.uint64(1 << (bits - 1))
            high = ~np.uint64((1 << bits) - 1)
            v = value[is_hex]
            value[is_hex] = np.where((v & sign) != 0, v | high, v)
    decimal = np.asarray(pc.match_substring_regex(col, r"^-?[0-9]{1,20}$"), dtype=bool)
    negative = decimal & np.asarray(pc.starts_with(col, "-"), dtype=bool)
    positive = decimal & ~negative
    for sel, typ in ((negative, pa.int64()), (positive, pa.uint64())):
        if not sel.any():
            continue
        part = col.filter(pa.array(sel))
        try:
            nums = np.asarray(pc.cast(part, typ), dtype=np.int64 if typ == pa.int64() else np.uint64)
            value[sel], ok[sel] = nums.view(np.uint64), True
        except (pa.ArrowInvalid, OverflowError):
            for i, text in zip(np.flatnonzero(sel).tolist(), part.to_pylist(), strict=True):
                number = int(text)
                if -(1 << 63) <= number < (1 << 64):
                    value[i], ok[i] = np.uint64(number & ((1 << 64) - 1)), True
    for word, number in (("true", 1), ("false", 0)):
        hit = np.asarray(pc.equal(col, word), dtype=bool)
        value[hit], ok[hit] = np.uint64(number), True
    return value, ok


def string_values(col: pa.Array) -> pa.Array:
    """Babeltrace string contents without their escapes (only the few with a backslash are
    handled one by one)."""
    col = pc.fill_null(col, "")
    escaped = np.asarray(pc.match_substring(col, "\\"), dtype=bool)
    if not escaped.any():
        return col.cast(_STR)
    texts = col.filter(pa.array(escaped)).to_pylist()
    fixed = pa.array([unescape_babeltrace(t) for t in texts], type=_STR)
    out = col.cast(_STR).to_pylist()
    for i, t in zip(np.flatnonzero(escaped).tolist(), fixed.to_pylist(), strict=True):
        out[i] = t
    return pa.array(out, type=_STR)


def parse(layout: Layout, payloads: pa.Array) -> Parsed:
    """Reads payload blocks with one event definition; values only for the blocks that fit."""
    event = layout.event
    n = len(payloads)
    if any(w in a.ctype for a in event.args for w in _FLOAT_WORDS):
        return Parsed(np.zeros(n, dtype=bool), {}, {})  # float fields are not modelled
    struct = pc.extract_regex(payloads, payload_pattern(event))
    ok = np.asarray(struct.is_valid(), dtype=bool)
    raw: dict[int, pa.Array] = {}
    ints: dict[int, np.ndarray] = {}
    for j in range(len(event.args)):
        col = struct.field(f"f{j}")
        if layout.strings[j]:
            raw[j] = col
        else:
            v, good = integer_values(col, layout.bits[j], layout.signed[j])
            ints[j] = v
            ok &= good
    keep = pa.array(ok)
    strs = {j: string_values(col.filter(keep)) for j, col in raw.items()}
    return Parsed(ok, {j: v[ok] for j, v in ints.items()}, strs)


# ------------------------------------------------------------------------------ typed fields


def decode_payloads(catalog: Catalog, event: str, payloads: pa.Array) -> DecodedText:
    """Typed fields of ``event`` for each payload block, with the text decoder's columns."""
    return decode_variants(
        catalog,
        event,
        len(payloads),
        lambda layout, rows: parse(layout, payloads.take(pa.array(rows))),
        lambda p, layout, parsed: _as_decoded(p, printed_value(p, layout, parsed)),
    )


def _as_decoded(p: Printed, value: pa.Array) -> pa.Array:
    """The text decoder reads a printed ``(null)`` string as NA; so do we."""
    if p.conv.kind != "str":
        return value
    return pc.if_else(pc.equal(value, _NULL_STRING), pa.scalar(None, _STR), value)


def _decode(catalog: Catalog, event: str, values: pa.Array, only: Collection[str] | None) -> DecodedText:
    _, payloads = split_entries(values)
    return decode_payloads(catalog, event, payloads).select(only)


# ------------------------------------------------------------------------------ rendering


def render_payloads(catalog: Catalog, event: str, payloads: pa.Array) -> pa.Array:
    """The log backend's argument text for each payload block of ``event``."""
    n = len(payloads)
    parts: list[tuple[np.ndarray, pa.Array]] = []
    remaining = np.arange(n)
    for ev in catalog.variants(event)[:MAX_VARIANTS]:
        if not len(remaining):
            break
        layout = layout_for(ev)
        parsed = parse(layout, payloads.take(pa.array(remaining)))
        if parsed.ok.any():
            parts.append((remaining[parsed.ok], render_parsed(layout, parsed)))
            remaining = remaining[~parsed.ok]
    if len(remaining):
        parts.append((remaining, payloads.take(pa.array(remaining)).cast(_STR)))
    if len(parts) == 1 and len(parts[0][0]) == n:
        return parts[0][1]
    return Catalog._assemble(parts, _STR, n)


def render_values(catalog: Catalog, values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Log-backend text of every ``EVENT { ... }`` entry of an args table (any mix of events)."""
    if len(values) == 0:
        return pa.array([], type=_STR)
    names, payloads = split_entries(values)
    encoded = names.dictionary_encode()
    codes = np.asarray(encoded.indices, dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(encoded.dictionary) + 1))
    parts: list[tuple[np.ndarray, pa.Array]] = []
    for k, event in enumerate(encoded.dictionary.to_pylist()):
        rows = order[bounds[k] : bounds[k + 1]]
        if len(rows):
            parts.append((rows, render_payloads(catalog, event, payloads.take(pa.array(rows)))))
    return Catalog._assemble(parts, _STR, len(values))


def _render(trace: Trace, offset: int, values: pa.Array) -> pa.Array:
    return render_values(trace.catalog, values)


argdecode.register_decoder(ARGS_LTTNG, _decode)
argrender.register_renderer(ARGS_LTTNG, _render)
