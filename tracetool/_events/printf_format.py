"""C printf formats as QEMU's trace-events write them, and the regular expression that reads
back what such a format printed.

:func:`split_format` cuts a format into literal text and :class:`Conversion` items;
:func:`build_pattern` turns a format into an unanchored regular expression (valid for both RE2
and Python's ``re``) with a named group ``fN`` per printed argument, plus the faster variant
:class:`~tracetool._events.decode.TextDecoder` runs when it gives the same fields.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

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
class Field:
    """One printed argument: its trace-events name, kind, conversion and regex group."""

    name: str
    kind: str
    conv: Conversion
    group: str


@dataclass(frozen=True)
class Pattern:
    """The regex for one format: ``core`` (greedy ``%s``, the reference semantics) and, when
    it can be used, ``fast`` with some ``%s`` lazy plus the ``checks`` that make it exact."""

    core: str
    fields: list[Field]
    fast: str | None
    checks: tuple[tuple[str, int], ...]


def _border_free(text: str) -> bool:
    """No proper prefix of ``text`` is also its suffix (so its occurrences cannot overlap)."""
    return all(text[:k] != text[-k:] for k in range(1, len(text)))


def build_pattern(fmt: str, arg_names: Sequence[str]) -> Pattern:
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
    fields: list[Field] = []
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
        fields.append(Field(take_arg(), kind, part, group))
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
    return Pattern(core, fields, fast, tuple(checks.items()))
