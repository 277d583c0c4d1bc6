"""The log backend's lines, every era: ``TID@SEC.USEC:``, SystemTap's ``TID@NS ``, ISO 8601
with or without thread info, and bare ``name args`` (as ``_scan.c``'s log_line)."""

from __future__ import annotations

import re

from parsers._pyscan.rows import RowStore
from parsers._pyscan.text import (
    ERA_ISO,
    ERA_NONE,
    ERA_STAP,
    ERA_THREAD_INFO,
    ERA_TID_AT,
    EVENT_NAME,
    FLAG_BAD_TIME,
    FLAG_BAD_UTF8,
    FLAG_TEXT_CUT,
    INT64_MAX,
    KIND_BARE,
    KIND_EVENT,
    KIND_OTHER,
    NO_TIME,
    OTHER_TEXT_MAX,
    OUT_OF_RANGE,
    checked_ns,
    clean_bytes,
    days_from_civil,
    id_or_unknown,
)

_TID_AT = re.compile(rb"(\d{1,19})@(\d{1,19})\.(\d{1,9}):")
_STAP = re.compile(rb"(\d{1,19})@(\d{1,19}) ")
_ISO = re.compile(rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d) ")
_THREAD_INFO = re.compile(rb"(?:\[(?:(?!\] ).)*\] )?[^ (]+\((\d{1,19}):(.*?)\): ", re.S)


def _iso_ns(m: re.Match[bytes]) -> int | None:
    """ns of an ISO prefix; None when its fields are invalid, OUT_OF_RANGE when int64 cannot
    hold it."""
    y, mo, d, h, mi, s = (int(x) for x in m.group(1, 2, 3, 4, 5, 6))
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59 and s <= 60):
        return None
    frac = m.group(7) or b""
    frac_ns = int(frac.ljust(9, b"0")) if frac else 0
    days = days_from_civil(y, mo, d)
    off = m.group(8)
    offset = 0
    if off != b"Z":
        sign = 1 if off[:1] == b"+" else -1
        offset = sign * (int(off[1:3]) * 3600 + int(off[4:6]) * 60)
    ns = checked_ns(days * 86400 + h * 3600 + mi * 60 + s - offset, frac_ns)
    return OUT_OF_RANGE if ns is None else ns


class LogScan(RowStore):
    """Rows of log-backend lines."""

    def scan(self, data: bytes, default_tid: int = -1, final: bool = False) -> int:
        """Log-backend lines; returns the rows added."""
        return self._scan_with(data, final, lambda line, flags: self._line(line, default_tid, flags))

    def _line(self, line: bytes, default_tid: int, flags: int) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        era, ts, tid, tname = ERA_NONE, NO_TIME, default_tid, -1
        body: int | None = None
        bad_time = False
        m = _TID_AT.match(line)
        if m:
            stamp = checked_ns(int(m.group(2)), int(m.group(3).ljust(9, b"0")))
            if stamp is None:
                bad_time = True
            else:
                era, ts, body = ERA_TID_AT, stamp, m.end()
                tid, bad_id = id_or_unknown(int(m.group(1)))
                flags |= bad_id
        elif m := _STAP.match(line):
            if int(m.group(2)) <= INT64_MAX:
                era, ts, body = ERA_STAP, int(m.group(2)), m.end()
                tid, bad_id = id_or_unknown(int(m.group(1)))
                flags |= bad_id
            else:
                bad_time = True
        elif (m := _ISO.match(line)) and (iso := _iso_ns(m)) is not None:
            if iso == OUT_OF_RANGE:
                bad_time = True
            else:
                era, ts, body = ERA_ISO, iso, m.end()
                t = _THREAD_INFO.match(line, body)
                if t:
                    tid, tname, flags = self._thread_info(t, flags)
                    era, body = ERA_THREAD_INFO, t.end()
        if body is None and not bad_time and (t := _THREAD_INFO.match(line)):
            tid, tname, flags = self._thread_info(t, flags)
            era, body = ERA_THREAD_INFO, t.end()
        if bad_time:
            flags |= FLAG_BAD_TIME
        start = body if body is not None else 0
        n = None if bad_time else EVENT_NAME.match(line, start)
        if n:
            kind = KIND_EVENT if body is not None else KIND_BARE
            args_id, name_id, flags = self._intern_body(line[start:], n.end() - start, flags)
        else:
            kind, name_id = KIND_OTHER, -1
            text = line
            if len(text) > OTHER_TEXT_MAX:
                text, flags = text[:OTHER_TEXT_MAX], flags | FLAG_TEXT_CUT
            text, bad = clean_bytes(text)
            flags |= FLAG_BAD_UTF8 if bad else 0
            args_id = self._tables["others"].intern(text)
        # The log scan leaves the pid and cpu columns empty, as the compiled scanner does.
        self._push(kind, era, flags, ts, tid, tname, name_id, args_id, ext=False)

    def _thread_info(self, t: re.Match[bytes], flags: int) -> tuple[int, int, int]:
        """(tid, thread-name id, flags) of a matched thread-info prefix."""
        tid, bad_id = id_or_unknown(int(t.group(1)))
        name, bad = clean_bytes(t.group(2))
        flags |= bad_id | (FLAG_BAD_UTF8 if bad else 0)
        return tid, self._tables["threads"].intern(name), flags
