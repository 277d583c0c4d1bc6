"""What the text scanner's row flags mean, and the warnings every text reader gives for them.

The flags are set per physical line by ``_scan.c`` and its twin ``_pyscan/``; the readers
(log, ftrace, LTTng) turn them into counted warnings that name the first line concerned.
"""

from __future__ import annotations

import numpy as np

from parsers.segment import ParseWarning

FLAG_BAD_UTF8 = 1  # invalid UTF-8 (or NUL) replaced by U+FFFD
FLAG_TEXT_CUT = 2  # an "other" line longer than 1 KiB, kept cut
FLAG_NO_NEWLINE = 4  # the file's last line has no newline
FLAG_BAD_TIME = 8  # a timestamp int64 ns cannot hold: the line is kept as an "other" line
FLAG_BAD_ID = 16  # a tid, pid or CPU beyond 2^31 - 1: kept as unknown (-1)

TIME_RANGE = "1677-09-21 to 2262-04-11, what int64 nanoseconds hold"


def flag_bits(flags: np.ndarray) -> int:
    """Every flag bit set on some line: one pass, no temporary."""
    return int(np.bitwise_or.reduce(flags)) if len(flags) else 0


def line_warnings(
    path: str, flags: np.ndarray, is_event: np.ndarray, read_error: str | None
) -> list[ParseWarning]:
    """Warnings for the flagged lines of one file (``flags`` has one entry per physical line)
    and for a read error that ended it early."""
    out: list[ParseWarning] = []
    present = flag_bits(flags)

    def flagged(bit: int, message: str) -> None:
        if not present & bit:
            return
        rows = np.flatnonzero(flags & bit)
        if len(rows):
            out.append(ParseWarning(path, int(rows[0]) + 1, message.format(n=len(rows))))

    flagged(FLAG_BAD_UTF8, "invalid UTF-8 replaced by U+FFFD on {n} line(s)")
    flagged(FLAG_TEXT_CUT, "{n} non-trace line(s) longer than 1 KiB kept cut to 1 KiB")
    flagged(
        FLAG_BAD_TIME,
        "{n} line(s) whose timestamp is out of range (" + TIME_RANGE + "); kept as non-trace lines",
    )
    flagged(
        FLAG_BAD_ID,
        "{n} line(s) with a thread id, process id or CPU number beyond "
        "2147483647; kept as events with that value unknown (-1)",
    )
    tail = np.flatnonzero(flags & FLAG_NO_NEWLINE) if present & FLAG_NO_NEWLINE else np.zeros(0, np.int64)
    if len(tail):
        what = "event" if is_event[tail[0]] else "non-trace line"
        out.append(
            ParseWarning(
                path, int(tail[0]) + 1, f"last line has no newline (file cut while writing?); kept as {what}"
            )
        )
    if read_error:
        out.append(
            ParseWarning(
                path, len(flags), f"{read_error.removeprefix(path + ': ')}; lines before it were kept"
            )
        )
    return out
