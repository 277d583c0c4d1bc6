#!/usr/bin/env python3
"""Turns a real log-backend trace into what SystemTap's ``log_stap`` tapset prints.

    python scripts/make_stap.py dst.trace.xz --threads dst-threads.json -o dst.stap.log
    python scripts/make_stap.py dst.trace.xz --pid 29180 > dst.stap.log

QEMU's ``dtrace`` backend with the ``log_stap`` tapset (``qemu-trace-stap run``) prints one line
per event: ``PID@NS name args``, where PID is SystemTap's ``pid()`` (the process, not the
thread), NS is ``gettimeofday_ns()`` and ``args`` is the trace-events format run through
SystemTap's printf. This script rebuilds that text from a log-backend trace of a real run:

* the time is the log line's wall-clock timestamp in ns (the log has µs, so the last three
  digits are 0); the process id comes from ``--pid`` or the ``pid`` of a ``--threads`` file;
* the arguments are decoded with migtrace's catalog and printed again with SystemTap's printf
  rules, as QEMU's ``log_stap`` generator prepares the format: ``PRIx64``-style macros become
  their conversion letter and ``l``/``ll``/``z`` qualifiers are dropped, because every
  SystemTap integer is 64 bits wide. So an argument is printed as its 64-bit value (signed C
  types sign-extended: ``%x`` of an ``int`` -1 prints 16 ``f``), ``%p`` prints ``0x`` and
  lower-case hex (``0x0`` for NULL, where glibc prints ``(nil)``), and a NULL string prints
  ``<null>`` (glibc: ``(null)``). Strings are cut to ``--string-limit`` bytes (SystemTap
  copies them with ``user_string_n(ptr, 512)`` into strings of at most MAXSTRINGLEN).
* Lines that are no event (QEMU's own messages) are not printed: SystemTap only sees probes.
  Events whose text the catalog cannot decode are printed with their log text unchanged.

What was left out or kept as is is reported on stderr. Exit codes: 0 done, 2 usage or input
problem.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tracetool._events.catalog import Catalog
from tracetool._events.decode import decoder_for
from tracetool._events.eventdefs import ArgDef, EventDef
from tracetool._events.printf_format import Conversion, split_format
from tracetool._model.load import load
from tracetool._model.sidecar import load_thread_map
from tracetool.errors import InputError, UsageError

DEFAULT_STRING_LIMIT = 511
NULL_STRING = "<null>"
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class StapPiece:
    """One conversion of a SystemTap format and the argument it prints."""

    conv: Conversion
    field: str  # the decoded field (the text decoder's name for it)
    arg: ArgDef | None  # the C argument, when the format's order names one


def stap_pieces(event: EventDef) -> list[str | StapPiece]:
    """The event's format as SystemTap prints it: literal text and conversions, in order."""
    fields = iter(decoder_for(event).fields)
    args = {a.name: a for a in event.args}
    out: list[str | StapPiece] = []
    for part in split_format(event.fmt):
        if isinstance(part, str):
            out.append(part)
        elif part.conv in "mn":
            continue
        else:
            name, _ = next(fields)
            out.append(StapPiece(part, name, args.get(name)))
    return out


def _c_value(printed: object, piece: StapPiece) -> int:
    """The 64-bit value SystemTap holds for the argument whose printed value is ``printed``.

    Printing kept the low bits of the argument (``%d`` of a ``uint32_t`` 4294967295 reads
    -1): those bits, sign-extended when the C type is signed, are the argument.
    """
    v = int(printed)  # type: ignore[call-overload]
    arg = piece.arg
    if arg is None or arg.is_pointer:
        return v & _MASK64
    bits = arg.bits
    low = v & ((1 << bits) - 1)
    if arg.is_signed and low >= 1 << (bits - 1):
        low -= 1 << bits
    return low


def format_stap(piece: StapPiece, value: object, string_limit: int) -> str:
    """One conversion printed with SystemTap's printf."""
    c = piece.conv
    spec = "%" + c.flags.replace("'", "") + (c.width or "")
    if c.precision is not None:
        spec += "." + c.precision
    if c.conv == "s":
        text = NULL_STRING if value is None else str(value)
        encoded = text.encode()
        if len(encoded) > string_limit:
            text = encoded[:string_limit].decode("utf-8", "ignore")
        return (spec + "s") % text
    if c.conv == "c":
        return (spec + "s") % str(value)
    if c.kind == "float":
        return (spec + c.conv) % float(value)  # type: ignore[arg-type]
    v = _c_value(value, piece)
    if c.conv in "di":
        signed = v - (1 << 64) if v >= 1 << 63 else v
        return (spec + "d") % signed
    unsigned = v & _MASK64
    if c.conv == "u":
        return (spec + "d") % unsigned
    if c.conv == "p":
        return ("%" + c.flags.replace("#", "") + "#" + (c.width or "") + "x") % unsigned
    return (spec + c.conv) % unsigned


def render_stap(pieces: list[str | StapPiece], row: dict[Hashable, Any], string_limit: int) -> str:
    """The argument text of one decoded event."""
    out = []
    for p in pieces:
        if isinstance(p, str):
            out.append(p)
        else:
            value = row[p.field]
            out.append(format_stap(p, None if pd.isna(value) else value, string_limit))
    return "".join(out)


@dataclass
class ConversionReport:
    """What the conversion could not carry over faithfully."""

    events: int = 0
    kept_as_logged: int = 0  # events whose text no catalog definition decodes
    other_lines: int = 0  # non-event lines of the log, which SystemTap would not print


def stap_args(
    catalog: Catalog, event: str, texts: list[str], string_limit: int
) -> tuple[list[str], list[bool]]:
    """SystemTap's text for each distinct log argument text of ``event``, and which texts were
    kept unchanged because no definition decodes them."""
    decoded = catalog.decode_text(event, texts)
    pieces = [stap_pieces(ev) for ev in catalog.variants(event)]
    records = decoded.frame.to_dict("records")
    out = list(texts)
    kept = [True] * len(texts)
    for i, vi in enumerate(decoded.variant.tolist()):
        if vi >= 0:
            out[i] = render_stap(pieces[vi], records[i], string_limit)
            kept[i] = False
    return out, kept


def convert(
    path: str, pid: int, string_limit: int = DEFAULT_STRING_LIMIT, catalog: Catalog | None = None
) -> tuple[list[str], ConversionReport]:
    """Lines ``PID@NS name args`` for every event of the log trace at ``path``, in file order."""
    trace = load(path, catalog=catalog)
    if not trace.has_time or trace.clock != "wall":
        raise UsageError(
            f"{path}: needs wall-clock timestamps (-msg timestamp=on) to make "
            "SystemTap's gettimeofday_ns() times"
        )
    events = trace.events.sort_values(["source", "line"], kind="stable")
    report = ConversionReport(events=len(events), other_lines=len(trace.other_lines))
    logged = events["args"].astype(str).to_numpy()
    names = events["event"].astype(str).to_numpy()
    printed = logged.copy()
    for name in pd.unique(names):
        rows = np.flatnonzero(names == name)
        unique, inverse = np.unique(logged[rows], return_inverse=True)
        stap, kept = stap_args(trace.catalog, str(name), unique.tolist(), string_limit)
        printed[rows] = np.asarray(stap, dtype=object)[inverse]
        report.kept_as_logged += int(np.asarray(kept, dtype=bool)[inverse].sum())
    ts = events["ts_ns"].to_numpy().tolist()
    lines = [f"{pid}@{t} {n} {a}\n" for t, n, a in zip(ts, names.tolist(), printed.tolist(), strict=True)]
    return lines, report


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trace", help="log-backend trace (plain, .gz, .xz, .zst)")
    parser.add_argument("-o", "--output", help="output file (default: stdout)")
    parser.add_argument("--pid", type=int, help="process id SystemTap's pid() would print")
    parser.add_argument("--threads", help="thread sidecar JSON whose 'pid' to use")
    parser.add_argument(
        "--string-limit",
        type=int,
        default=DEFAULT_STRING_LIMIT,
        help="cut string arguments to this many bytes (default %(default)s)",
    )
    opts = parser.parse_args(argv)
    try:
        pid = opts.pid
        if pid is None and opts.threads:
            pid = load_thread_map(opts.threads).pid
        if pid is None:
            raise UsageError("give --pid, or --threads with a sidecar that names the pid")
        lines, report = convert(opts.trace, pid, opts.string_limit)
        out = open(opts.output, "w", encoding="utf-8") if opts.output else sys.stdout  # noqa: SIM115
        try:
            out.writelines(lines)
        finally:
            if opts.output:
                out.close()
    except (InputError, UsageError) as exc:
        sys.stderr.write(f"make_stap: {exc}\n")
        return 2
    sys.stderr.write(
        f"make_stap: {report.events} events written; {report.kept_as_logged} kept "
        f"with their log text (no catalog definition decodes them); "
        f"{report.other_lines} non-event lines left out\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
