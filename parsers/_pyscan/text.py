"""What the line grammars of the Python scanner share: the row kinds, eras and flags of
``_scan.c``, UTF-8 repair one replacement per invalid byte, numbers and times as the C code
reads them."""

from __future__ import annotations

import codecs
import re

KIND_EVENT, KIND_OTHER, KIND_BARE = 0, 1, 2
ERA_NONE, ERA_TID_AT, ERA_ISO, ERA_THREAD_INFO, ERA_STAP = 0, 1, 2, 3, 4
FLAG_BAD_UTF8, FLAG_TEXT_CUT, FLAG_NO_NEWLINE, FLAG_BAD_TIME, FLAG_BAD_ID = 1, 2, 4, 8, 16
OTHER_TEXT_MAX = 1024
NO_TIME = -(2**63)
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
OUT_OF_RANGE = -(2**64)  # stands for a time int64 ns cannot hold (never a valid stamp)

KIND_KERNEL, KIND_HEADER = 3, 4
ERA_FTRACE, ERA_FTRACE_TGID, ERA_FTRACE_NOFLAGS, ERA_FTRACE_NOFLAGS_TGID = 5, 6, 7, 8
ERA_LTTNG_TIME_OF_DAY, ERA_LTTNG_DATE, ERA_LTTNG_SECONDS = 9, 10, 11
ERA_LTTNG_CYCLES, ERA_LTTNG_NO_CLOCK = 12, 13
NAME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
DIGITS = frozenset(b"0123456789")
EVENT_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*(?= |$)")


def _one_per_byte(err: UnicodeError) -> tuple[str, int]:
    # The compiled scanner replaces each invalid byte by U+FFFD; Python's "replace" would give
    # one U+FFFD per maximal invalid sequence.
    assert isinstance(err, UnicodeDecodeError)
    return "\ufffd", err.start + 1


codecs.register_error("migtrace-per-byte", _one_per_byte)


def clean_bytes(b: bytes) -> tuple[bytes, bool]:
    """(valid UTF-8 without NUL, whether it had to be repaired): each invalid byte and each NUL
    becomes U+FFFD, as in ``_scan.c``."""
    if b"\x00" not in b:
        try:
            b.decode("utf-8")
            return b, False
        except UnicodeDecodeError:
            pass
    fixed = b.decode("utf-8", "migtrace-per-byte").replace("\x00", "\ufffd").encode("utf-8")
    return fixed, True


def checked_ns(sec: int, ns: int) -> int | None:
    """sec * 10^9 + ns, or None when int64 cannot hold it (or it is the no-time marker)."""
    v = sec * 1_000_000_000 + ns
    return v if NO_TIME < v <= INT64_MAX else None


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year, as in _scan.c)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def id_or_unknown(v: int) -> tuple[int, int]:
    """(id, flag): v when int32 holds it, else -1 with FLAG_BAD_ID."""
    return (v, 0) if v <= INT32_MAX else (-1, FLAG_BAD_ID)


def uint_at(b: bytes, i: int, end: int) -> tuple[int, int, int] | None:
    """(value, end, digits) of up to 19 digits at b[i], None when none or more than 19."""
    j = i
    while j < end and b[j] in DIGITS and j - i < 19:
        j += 1
    if j == i or (j < end and b[j] in DIGITS):
        return None
    return int(b[i:j]), j, j - i


def skip_blanks(b: bytes, i: int, end: int) -> int:
    """The first index from ``i`` that is not a blank (or ``end``)."""
    while i < end and b[i] == 0x20:
        i += 1
    return i
