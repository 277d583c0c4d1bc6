"""QEMU's trace-events file syntax: one event definition per line.

A line reads ``[props] name(type1 arg1, type2 *arg2, ...) "fmt literal" PRIx64 "more"``.
Blank lines and ``#`` comments are skipped, ``(void)`` means no arguments, the format is a
sequence of C string literals with ``<inttypes.h>`` macros between them, and an older second
(``fmt_trans``) format may precede the real one, separated by a comma: the last one wins.

The ``extended`` flavour of :func:`parse_trace_events` is migtrace's own catalog syntax: on top
of the QEMU grammar it accepts ``#@ since=8.2 until=10.0 note="..."`` lines, which annotate the
next definition, and a trailing ``*`` on a name, which makes the definition cover a family of
generated events (``qmp_enter_*``).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import NoReturn

from tracetool.errors import TraceEventsError

KNOWN_PROPS = frozenset({"disable", "vcpu", "tcg", "tcg-trans", "tcg-exec"})
"""Properties QEMU has accepted at some time (``tcg*`` only before 2023, ``vcpu`` up to 8.0)."""

_PRI_SIZE = {"8": "hh", "16": "h", "32": "", "64": "ll", "PTR": "t", "MAX": "j"}

_LINE = re.compile(
    r"(?P<props>(?:[A-Za-z][\w-]*\s+)*?)"
    r"(?P<name>[A-Za-z_]\w*)(?P<star>\*)?"
    r"\s*\((?P<args>[^()]*)\)"
    r"(?P<rest>.*)"
)
_TOKEN = re.compile(
    r'\s*(?:(?P<lit>"(?:[^"\\\n]|\\.)*")|(?P<pri>PRI[diouxX](?:8|16|32|64|PTR|MAX)\b)|(?P<comma>,))'
)
_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "?": "?",
}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]+|[0-7]{1,3}|.)", re.S)
_IDENT = re.compile(r"[A-Za-z_]\w*\Z")
_ANNOTATION_KEYS = frozenset({"since", "until", "note"})

_SIGNED_WORDS = {"int", "long", "short", "signed", "char", "ssize_t", "ptrdiff_t", "intptr_t"}
_BITS_BY_WORD = {
    "char": 8,
    "bool": 8,
    "_Bool": 8,
    "short": 16,
    "int": 32,
    "unsigned": 32,
    "signed": 32,
    "long": 64,
    "size_t": 64,
    "ssize_t": 64,
    "ptrdiff_t": 64,
    "intptr_t": 64,
    "uintptr_t": 64,
    "off_t": 64,
    "hwaddr": 64,
    "ram_addr_t": 64,
}
_FIXED = re.compile(r"u?int(8|16|32|64)_t\Z")


@dataclass(frozen=True)
class ArgDef:
    """One declared argument: its C type as written (``const char *``) and its name."""

    ctype: str
    name: str

    @property
    def _words(self) -> list[str]:
        return self.ctype.replace("*", " * ").split()

    @property
    def is_string(self) -> bool:
        """True for ``char *`` / ``const char *`` (what QEMU's backends record as text)."""
        compact = self.ctype.replace(" ", "")
        return compact.startswith(("constchar*", "char*"))

    @property
    def is_pointer(self) -> bool:
        """True for any pointer type, strings included."""
        return "*" in self.ctype

    @property
    def is_signed(self) -> bool:
        """Whether the C type is a signed integer (pointers, bool and unsigned types are not)."""
        if self.is_pointer:
            return False
        words = [w for w in self._words if w not in ("const", "volatile")]
        if "unsigned" in words or any(
            w.startswith("uint") or w in ("bool", "_Bool", "size_t") for w in words
        ):
            return False
        return any(w in _SIGNED_WORDS or _FIXED.match(w) for w in words)

    @property
    def bits(self) -> int:
        """Width in bits on an LP64 host: 8/16/32/64 (pointers and ``size_t`` are 64)."""
        if self.is_pointer:
            return 64
        words = [w for w in self._words if w not in ("const", "volatile")]
        for w in words:
            m = _FIXED.match(w)
            if m:
                return int(m.group(1))
        if words.count("long") >= 1:
            return 64
        for w in words:
            if w in _BITS_BY_WORD:
                return _BITS_BY_WORD[w]
        return 64


@dataclass(frozen=True)
class EventDef:
    """One event definition; ``fmt`` is the expanded C format (``PRIx64`` already ``llx``).

    ``source``/``line`` say where it was defined. ``since``/``until`` (first and last QEMU
    release with this signature, when known) and ``note`` come from catalog annotations.
    A name ending in ``*`` stands for a family of generated events (catalog only).
    """

    name: str
    args: tuple[ArgDef, ...]
    fmt: str
    props: frozenset[str] = field(default_factory=frozenset)
    source: str = "<string>"
    line: int = 0
    since: str | None = None
    until: str | None = None
    note: str = ""

    @property
    def is_family(self) -> bool:
        """True when the name ends in ``*`` and so covers every name with that prefix."""
        return self.name.endswith("*")

    @property
    def prefix(self) -> str:
        """The name without a trailing ``*``."""
        return self.name[:-1] if self.is_family else self.name

    @property
    def disabled(self) -> bool:
        """Carries the ``disable`` property: compiled out, never emitted."""
        return "disable" in self.props

    def signature(self) -> str:
        """The definition written back in trace-events form (for messages and listings)."""
        args = (
            ", ".join(f"{a.ctype}{'' if a.ctype.endswith('*') else ' '}{a.name}" for a in self.args) or "void"
        )
        return f"{self.name}({args}) {c_quote(self.fmt)}"


def c_quote(text: str) -> str:
    """``text`` as one C string literal."""
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _unescape(body: str) -> str:
    def repl(m: re.Match[str]) -> str:
        s = m.group(1)
        if s[0] == "x" and len(s) > 1:
            return chr(int(s[1:], 16) & 0xFF)
        if s[0] in "01234567":
            return chr(int(s, 8) & 0xFF)
        return _ESCAPES.get(s, s)

    return _ESCAPE.sub(repl, body)


def _parse_format(rest: str, fail: _Fail) -> str:
    """Expands the text after ``)``: literals and PRI macros, optional ``fmt_trans,`` first."""
    groups: list[list[str]] = [[]]
    pos = 0
    while pos < len(rest):
        if rest[pos:].strip() == "":
            break
        m = _TOKEN.match(rest, pos)
        if m is None:
            bad = rest[pos:].strip()
            if bad.startswith('"'):
                fail("unterminated string literal in the format")
            fail(f"unexpected text in the format: {bad[:40]!r}")
        pos = m.end()
        if m.group("comma"):
            groups.append([])
        elif m.group("lit") is not None:
            groups[-1].append(_unescape(m.group("lit")[1:-1]))
        else:
            pri = m.group("pri")
            groups[-1].append(_PRI_SIZE[pri[4:]] + pri[3])
    if any(not g for g in groups) and (len(groups) > 1 or rest.strip()):
        fail("empty format between commas")
    if len(groups) > 2:
        fail(f"{len(groups)} formats given; at most two (fmt_trans, fmt) are allowed")
    return "".join(groups[-1])


def _parse_args(text: str, fail: _Fail) -> tuple[ArgDef, ...]:
    text = text.strip()
    if text in ("", "void"):
        return ()
    out: list[ArgDef] = []
    for raw in text.split(","):
        item = " ".join(raw.split())
        if not item:
            fail("empty argument in the argument list")
        star = item.rfind("*")
        if star >= 0:
            ctype, name = item[: star + 1].strip(), item[star + 1 :].strip()
        else:
            ctype, _, name = item.rpartition(" ")
        if not ctype or not _IDENT.match(name):
            fail(f"argument {item!r} is not 'type name'")
        if any(a.name == name for a in out):
            fail(f"argument name {name!r} used twice")
        out.append(ArgDef(ctype, name))
    return tuple(out)


class _Fail:
    def __init__(self, source: str) -> None:
        self.source = source
        self.line = 0

    def __call__(self, message: str) -> NoReturn:
        raise TraceEventsError(self.source, self.line, message)


def _annotation(text: str, fail: _Fail) -> dict[str, str]:
    try:
        items = shlex.split(text)
    except ValueError as exc:
        fail(f"bad annotation: {exc}")
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or key not in _ANNOTATION_KEYS:
            fail(f"bad annotation {item!r}; expected since=, until= or note=")
        out[key] = value
    return out


def parse_trace_events(text: str, source: str = "<string>", *, extended: bool = False) -> list[EventDef]:
    """Parses trace-events text into definitions, in file order.

    Raises :class:`TraceEventsError` naming ``source`` and the 1-based line of the first
    malformed line. ``extended`` enables migtrace's catalog syntax (see the module docstring).
    """
    fail = _Fail(source)
    events: list[EventDef] = []
    pending: dict[str, str] = {}
    pending_line = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        fail.line = lineno
        line = raw.strip()
        if extended and line.startswith("#@"):
            for key, value in _annotation(line[2:], fail).items():
                joined = key == "note" and key in pending
                pending[key] = f"{pending[key]} {value}" if joined else value
            pending_line = pending_line or lineno
            continue
        if not line or line.startswith("#"):
            continue
        m = _LINE.fullmatch(line)
        if m is None:
            if "(" not in line:
                fail("expected 'name(args) \"format\"'")
            fail("malformed event definition")
        if m.group("star") and not extended:
            fail("'*' is not allowed in an event name")
        props = frozenset(m.group("props").split())
        unknown = props - KNOWN_PROPS
        if unknown:
            fail(f"unknown property {sorted(unknown)[0]!r}")
        args = _parse_args(m.group("args"), fail)
        fmt = _parse_format(m.group("rest"), fail)
        if "vcpu" in props:
            args = (ArgDef("void *", "__cpu"), *args)
            fmt = "cpu=%p " + fmt
        name = m.group("name") + ("*" if m.group("star") else "")
        events.append(
            EventDef(
                name=name,
                args=args,
                fmt=fmt,
                props=props,
                source=source,
                line=lineno,
                since=pending.get("since") or None,
                until=pending.get("until") or None,
                note=pending.get("note", ""),
            )
        )
        pending, pending_line = {}, 0
    if pending:
        fail.line = pending_line
        fail("annotation is not followed by an event definition")
    return events


def load_trace_events(path: str, *, extended: bool = False) -> list[EventDef]:
    """Reads and parses a trace-events (or trace-events-all) file.

    Any read or decode problem becomes a :class:`TraceEventsError` with a clear message.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise TraceEventsError(path, None, f"cannot read trace-events file: {reason}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TraceEventsError(path, line, "not UTF-8 text (is this a trace-events file?)") from None
    if "\x00" in text:
        raise TraceEventsError(path, None, "binary data, not a trace-events file")
    return parse_trace_events(text, path, extended=extended)
