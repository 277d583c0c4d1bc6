"""babeltrace's text of LTTng-UST events, as ``_scan.c``'s lttng_line: the time in every clock
form babeltrace prints, the event name, the context blocks (tids, pids, cpu, procname), the
payload."""

from __future__ import annotations

from parsers._pyscan.rows import RowStore
from parsers._pyscan.text import (
    DIGITS,
    ERA_LTTNG_CYCLES,
    ERA_LTTNG_DATE,
    ERA_LTTNG_NO_CLOCK,
    ERA_LTTNG_SECONDS,
    ERA_LTTNG_TIME_OF_DAY,
    FLAG_BAD_ID,
    FLAG_BAD_TIME,
    INT32_MAX,
    INT64_MAX,
    KIND_EVENT,
    NAME_CHARS,
    NO_TIME,
    OUT_OF_RANGE,
    checked_ns,
    days_from_civil,
    skip_blanks,
    uint_at,
)


class LttngScan(RowStore):
    """Rows of babeltrace text lines."""

    def scan_lttng(self, data: bytes, final: bool = False) -> int:
        """babeltrace text lines of LTTng events; returns the rows added."""
        self._args_per_body = True
        return self._scan_with(data, final, self._lttng_line)

    def _lttng_line(self, line: bytes, flags: int) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        end = len(line)
        if not end or line[0] != ord("["):
            self._push_other(line, flags)
            return
        close = line.find(b"]", 0, min(end, 40))
        if close < 0:
            self._push_other(line, flags)
            return
        stamp = _lttng_cycles(line[1:close])
        era = ERA_LTTNG_CYCLES
        if stamp is None:
            timed = _lttng_time(line[1:close])
            if timed is None:
                self._push_other(line, flags)
                return
            era, stamp = timed
        if stamp == OUT_OF_RANGE:
            self._push_other(line, flags | FLAG_BAD_TIME)
            return
        q = close + 1
        if q >= end or line[q] != ord(" "):
            self._push_other(line, flags)
            return
        q += 1
        if q < end and line[q] == ord("("):
            c = line.find(b")", q)
            if c < 0 or c + 1 >= end or line[c + 1] != ord(" "):
                self._push_other(line, flags)
                return
            q = c + 2
        ev = ev_end = -1
        for _ in range(8):
            if q >= end:
                break
            w = q
            while q < end and line[q] != ord(" "):
                q += 1
            if q - w >= 2 and line[q - 1] == ord(":"):
                ev, ev_end = w, q - 1
                break
            if q < end:
                q += 1
        if ev < 0:
            self._push_other(line, flags)
            return
        tid = pid = cpu = -1
        id_flags = 0
        procname: bytes | None = None
        payload = payload_end = q
        if q < end:
            q += 1
            while True:
                if q >= end or line[q] != ord("{"):
                    self._push_other(line, flags)
                    return
                b = _block_end(line, q, end)
                if b < 0:
                    self._push_other(line, flags)
                    return
                if b == end:
                    payload, payload_end = q, b
                    break
                if end - b < 3 or line[b : b + 3] != b", {":
                    self._push_other(line, flags)
                    return
                ctx_tid, ctx_pid, ctx_cpu, ctx_name, ctx_bad = _lttng_context(line, q, b)
                id_flags |= ctx_bad
                tid = tid if ctx_tid is None else ctx_tid
                pid = pid if ctx_pid is None else ctx_pid
                cpu = cpu if ctx_cpu is None else ctx_cpu
                procname = procname if ctx_name is None else ctx_name
                q = b + 2
        tname = -1
        flags |= id_flags
        if procname is not None:
            tname, flags = self._intern_thread(procname, flags)
        body = line[ev:ev_end] + b" " + line[payload:payload_end]
        args_id, name_id, flags = self._intern_body(body, ev_end - ev, flags)
        self._push(KIND_EVENT, era, flags, stamp, tid, tname, name_id, args_id, pid, cpu)


def _two_digits(b: bytes, i: int) -> int | None:
    if b[i] in DIGITS and b[i + 1] in DIGITS:
        return (b[i] - 48) * 10 + b[i + 1] - 48
    return None


def _lttng_cycles(t: bytes) -> int | None:
    """The value of 20 digits (OUT_OF_RANGE beyond int64), None when t is not that form."""
    if len(t) != 20 or any(c not in DIGITS for c in t):
        return None
    v = int(t)
    return v if v <= INT64_MAX else OUT_OF_RANGE


def _lttng_time(t: bytes) -> tuple[int, int] | None:
    """(era, ns) of babeltrace's [TIME] text (ns OUT_OF_RANGE beyond int64), or None."""
    n = len(t)
    if t == b"??:??:??.?????????":
        return ERA_LTTNG_NO_CLOCK, NO_TIME
    days, era, s = 0, ERA_LTTNG_TIME_OF_DAY, t
    if n == 29 and t[4:5] == b"-" and t[7:8] == b"-" and t[10:11] == b" ":
        y1, y2, mo, d = (_two_digits(t, k) for k in (0, 2, 5, 8))
        if y1 is None or y2 is None or mo is None or d is None:
            return None
        if not (1 <= mo <= 12 and 1 <= d <= 31) or y1 + y2 == 0:
            return None
        days = days_from_civil(y1 * 100 + y2, mo, d)
        era, s, n = ERA_LTTNG_DATE, t[11:], n - 11
    if n == 18 and s[2:3] == b":" and s[5:6] == b":" and s[8:9] == b".":
        h, mi, sec = (_two_digits(s, k) for k in (0, 3, 6))
        if h is None or mi is None or sec is None or h > 23 or mi > 59 or sec > 60:
            return None
        frac = uint_at(s, 9, n)
        if not frac or frac[1] != n or frac[2] != 9:
            return None
        ns = checked_ns(days * 86400 + h * 3600 + mi * 60 + sec, frac[0])
        return era, OUT_OF_RANGE if ns is None else ns
    if era == ERA_LTTNG_DATE:
        return None
    negative = 1 if n and t[0] == ord("-") else 0
    whole = uint_at(t, negative, n)
    if not whole:
        return None
    if whole[1] < n and t[whole[1]] == ord("."):
        frac = uint_at(t, whole[1] + 1, n)
        if not frac or frac[1] != n or frac[2] != 9 or whole[0] > 9_000_000_000:
            return None
        v = whole[0] * 1_000_000_000 + frac[0]
        return ERA_LTTNG_SECONDS, -v if negative else v
    return None


def _closes_string(b: bytes, i: int, end: int) -> bool:
    if i == end:
        return True
    if end - i >= 2 and b[i] == 0x20 and b[i + 1] in b"}]":
        return True
    if end - i < 2 or b[i : i + 2] != b", ":
        return False
    q = i + 2
    if q >= end or not (b[q] in NAME_CHARS and b[q] not in DIGITS):
        return False
    while q < end and b[q] in NAME_CHARS:
        q += 1
    return end - q >= 3 and b[q : q + 3] == b" = "


def _string_end(b: bytes, i: int, end: int) -> int:
    q = i + 1
    while q < end:
        if b[q] == ord("\\"):
            q += 2
            continue
        if b[q] == ord('"') and _closes_string(b, q + 1, end):
            return q + 1
        q += 1
    return -1


def _block_end(b: bytes, i: int, end: int) -> int:
    depth = 0
    q = i
    while q < end:
        c = b[q]
        if c == ord('"'):
            e = _string_end(b, q, end)
            if e < 0:
                return -1
            q = e
            continue
        if c == ord("{"):
            depth += 1
        elif c == ord("}"):
            depth -= 1
            if depth == 0:
                return q + 1
        q += 1
    return -1


_Context = tuple[int | None, int | None, int | None, bytes | None, int]


def _lttng_context(b: bytes, i: int, e: int) -> _Context:
    """(tid, pid, cpu, procname, FLAG_BAD_ID or 0) named in the context block b[i:e]; None
    where absent, -1 (with FLAG_BAD_ID) for a number beyond int32."""
    tid: int | None = None
    pid: int | None = None
    cpu: int | None = None
    procname: bytes | None = None
    bad_id = 0
    q = i + 1
    while q < e:
        q = skip_blanks(b, q, e)
        name_start = q
        while q < e and b[q] in NAME_CHARS:
            q += 1
        name = b[name_start:q]
        if not name or e - q < 3 or b[q : q + 3] != b" = ":
            return tid, pid, cpu, procname, bad_id
        q += 3
        val = q
        if q < e and b[q] == ord('"'):
            val_end = _string_end(b, q, e)
            if val_end < 0:
                return tid, pid, cpu, procname, bad_id
            q = val_end
        else:
            while q < e and b[q] not in b", ":
                q += 1
            val_end = q
        number: int | None = None
        if val < val_end and all(c in DIGITS for c in b[val:val_end]):
            u = uint_at(b, val, val_end)
            number = u[0] if u and u[1] == val_end and u[0] <= INT32_MAX else -1
        id_field = number is not None and name in (b"vtid", b"tid", b"vpid", b"pid", b"cpu_id")
        if id_field and name in (b"vtid", b"tid"):
            tid = number
        elif id_field and name in (b"vpid", b"pid"):
            pid = number
        elif id_field:
            cpu = number
        elif name == b"procname" and val_end - val >= 2 and b[val] == ord('"'):
            procname = b[val + 1 : val_end - 1]
        if id_field and number == -1:
            bad_id = FLAG_BAD_ID
        if q < e and b[q] == ord(","):
            q += 1
        else:
            break
    return tid, pid, cpu, procname, bad_id
