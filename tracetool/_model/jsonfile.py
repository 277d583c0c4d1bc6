"""Reading the small JSON files that come with a trace (thread-name sidecars, query-migrate.json,
run.json, capture.json) without trusting them.

These files are written by scripts next to QEMU, copied around and edited by hand, so they can
be anything: not UTF-8, huge, nested thousands of levels deep, full of 5000-digit numbers,
``NaN``, or the same key twice. :func:`read_json_file` turns each of these into one
:class:`~tracetool.errors.UsageError` line naming the file, before any of it reaches the
model; the helpers below check the values a reader takes out of the document.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from tracetool.errors import UsageError

# A sidecar of a QEMU with hundreds of threads is tens of KiB; query-migrate.json is one KiB.
MAX_BYTES = 16 << 20
MAX_DEPTH = 64
MAX_DIGITS = 40  # an int64 has 19 digits; anything longer is damage, not data
_SHOWN = 40
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class _Refused(ValueError):
    """A value the JSON reader refuses (raised from inside json's hooks)."""


def shorten(value: object, limit: int = _SHOWN) -> str:
    """``repr(value)`` cut to ``limit`` characters, for one-line messages."""
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise _Refused(f"a number of {len(text)} digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {shorten(text)} is out of range")
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"the key {shorten(key)} appears twice in one object")
        out[key] = value
    return out


def _depth(value: Any) -> int:
    """How deeply ``value`` nests (without recursion, whatever the depth)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_json_text(text: str, where: str) -> Any:
    """Decodes ``text`` as strict JSON; anything hostile is a one-line UsageError about ``where``."""
    try:
        value = json.loads(
            text,
            parse_constant=_no_constant,
            parse_int=_int,
            parse_float=_float,
            object_pairs_hook=_object,
        )
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    except _Refused as exc:
        raise UsageError(f"{where}: not usable JSON: {exc}") from None
    except RecursionError:
        raise UsageError(f"{where}: not usable JSON: nested too deeply") from None
    if _depth(value) > MAX_DEPTH:
        raise UsageError(f"{where}: not usable JSON: nested more than {MAX_DEPTH} levels deep")
    return value


def read_json_file(path: str, what: str) -> Any:
    """Reads a small JSON side file; ``what`` names it in errors (``thread-name sidecar``).

    Refused with a one-line UsageError: a missing or unreadable file, one over
    :data:`MAX_BYTES`, bytes that are not UTF-8 and anything :func:`parse_json_text` refuses.
    """
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a {what}") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise UsageError(f"{path}: larger than {MAX_BYTES >> 20} MiB: not a {what}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}): not a {what}"
        ) from None
    return parse_json_text(text, path)


def json_int(value: Any, where: str, lo: int, hi: int) -> int | None:
    """``value`` as an int in ``lo..hi``; None for null; UsageError for anything else."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{where} is {shorten(value)}, not an integer")
    if not lo <= value <= hi:
        raise UsageError(f"{where} is {value}, out of range ({lo}..{hi})")
    return value


def json_number(value: Any, where: str, lo: float, hi: float) -> float | None:
    """``value`` as a finite float in ``lo..hi``; None for null; UsageError for anything else."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{where} is {shorten(value)}, not a number")
    number = float(value)
    if not lo <= number <= hi:
        raise UsageError(f"{where} is {shorten(value)}, out of range ({lo:g}..{hi:g})")
    return number


def json_text(value: Any, where: str) -> str | None:
    """``value`` as text fit to print (a lone surrogate, which a sampler writes for a name cut in
    the middle of a UTF-8 character, becomes U+FFFD); None for null; UsageError otherwise."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise UsageError(f"{where} is {shorten(value)}, not a string")
    return value if value.isascii() else _LONE_SURROGATE.sub("\ufffd", value)
