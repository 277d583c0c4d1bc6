"""Pure-Python twin of the compiled scanner in ``_scan.c``.

Used when the C extension was not built (no compiler on the machine), and by the tests as an
independent implementation: both must split every line identically. Same interface: ``scan``,
``take_rows``, ``table``.
"""

from __future__ import annotations

import codecs
import re
from array import array
from collections.abc import Callable

import numpy as np

KIND_EVENT, KIND_OTHER, KIND_BARE = 0, 1, 2
ERA_NONE, ERA_TID_AT, ERA_ISO, ERA_THREAD_INFO, ERA_STAP = 0, 1, 2, 3, 4
FLAG_BAD_UTF8, FLAG_TEXT_CUT, FLAG_NO_NEWLINE, FLAG_BAD_TIME, FLAG_BAD_ID = 1, 2, 4, 8, 16
OTHER_TEXT_MAX = 1024
_NO_TIME = -(2**63)
_INT64_MAX = 2**63 - 1
_INT32_MAX = 2**31 - 1
_OUT_OF_RANGE = -(2**64)  # stands for a time int64 ns cannot hold (never a valid stamp)


def _one_per_byte(err: UnicodeError) -> tuple[str, int]:
    # The compiled scanner replaces each invalid byte by U+FFFD; Python's "replace" would give
    # one U+FFFD per maximal invalid sequence.
    assert isinstance(err, UnicodeDecodeError)
    return "\ufffd", err.start + 1


codecs.register_error("migtrace-per-byte", _one_per_byte)

_TID_AT = re.compile(rb"(\d{1,19})@(\d{1,19})\.(\d{1,9}):")
_STAP = re.compile(rb"(\d{1,19})@(\d{1,19}) ")
_ISO = re.compile(rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d) ")
_THREAD_INFO = re.compile(rb"(?:\[(?:(?!\] ).)*\] )?[^ (]+\((\d{1,19}):(.*?)\): ", re.S)
_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*(?= |$)")


class _Interner:
    def __init__(self) -> None:
        self.ids: dict[bytes, int] = {}
        self.items: list[bytes] = []

    def intern(self, b: bytes) -> int:
        i = self.ids.get(b)
        if i is None:
            i = len(self.items)
            self.ids[b] = i
            self.items.append(b)
        return i

    def export(self) -> tuple[int, bytes, bytes]:
        offsets = np.zeros(len(self.items) + 1, dtype=np.int64)
        if self.items:
            np.cumsum([len(b) for b in self.items], out=offsets[1:])
        out = (len(self.items), offsets.tobytes(), b"".join(self.items))
        self.__init__()  # type: ignore[misc]
        return out


def _clean(b: bytes) -> tuple[bytes, bool]:
    if b"\x00" not in b:
        try:
            b.decode("utf-8")
            return b, False
        except UnicodeDecodeError:
            pass
    fixed = b.decode("utf-8", "migtrace-per-byte").replace("\x00", "\ufffd").encode("utf-8")
    return fixed, True


def _checked_ns(sec: int, ns: int) -> int | None:
    """sec * 10^9 + ns, or None when int64 cannot hold it (or it is the no-time marker)."""
    v = sec * 1_000_000_000 + ns
    return v if _NO_TIME < v <= _INT64_MAX else None


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year, as in _scan.c)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _id_or_unknown(v: int) -> tuple[int, int]:
    """(id, flag): v when int32 holds it, else -1 with FLAG_BAD_ID."""
    return (v, 0) if v <= _INT32_MAX else (-1, FLAG_BAD_ID)


def _iso_ns(m: re.Match[bytes]) -> int | None:
    """ns of an ISO prefix; None when its fields are invalid, _OUT_OF_RANGE when int64 cannot
    hold it."""
    y, mo, d, h, mi, s = (int(x) for x in m.group(1, 2, 3, 4, 5, 6))
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59 and s <= 60):
        return None
    frac = m.group(7) or b""
    frac_ns = int(frac.ljust(9, b"0")) if frac else 0
    days = _days_from_civil(y, mo, d)
    off = m.group(8)
    offset = 0
    if off != b"Z":
        sign = 1 if off[:1] == b"+" else -1
        offset = sign * (int(off[1:3]) * 3600 + int(off[4:6]) * 60)
    ns = _checked_ns(days * 86400 + h * 3600 + mi * 60 + s - offset, frac_ns)
    return _OUT_OF_RANGE if ns is None else ns


class Scanner:
    """Splits QEMU text trace lines into interned columns (pure Python)."""

    def __init__(self) -> None:
        self._tables = {k: _Interner() for k in ("names", "bodies", "arg_texts", "threads", "others")}
        self._body_name: list[int] = []
        self._body_nlen: list[int] = []
        self._body_args: list[int] = []
        self._args_per_body = False  # LTTng: args ids are body ids (see body_added in _scan.c)
        self._reset_rows()

    def _reset_rows(self) -> None:
        self.kind, self.era, self.flags = array("B"), array("B"), array("B")
        self.ts = array("q")
        self.tid, self.tname, self.name, self.args = array("i"), array("i"), array("i"), array("i")
        self.pid, self.cpu = array("i"), array("i")  # filled by scan_ftrace / scan_lttng only

    def scan(self, data: bytes, default_tid: int = -1, final: bool = False) -> int:
        """Log-backend lines; returns the rows added."""
        return self._scan_with(data, final, lambda line, flags: self._line(line, default_tid, flags))

    def _line(self, line: bytes, default_tid: int, flags: int) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        era, ts, tid, tname = ERA_NONE, _NO_TIME, default_tid, -1
        body: int | None = None
        bad_time = False
        m = _TID_AT.match(line)
        if m:
            stamp = _checked_ns(int(m.group(2)), int(m.group(3).ljust(9, b"0")))
            if stamp is None:
                bad_time = True
            else:
                era, ts, body = ERA_TID_AT, stamp, m.end()
                tid, bad_id = _id_or_unknown(int(m.group(1)))
                flags |= bad_id
        elif m := _STAP.match(line):
            if int(m.group(2)) <= _INT64_MAX:
                era, ts, body = ERA_STAP, int(m.group(2)), m.end()
                tid, bad_id = _id_or_unknown(int(m.group(1)))
                flags |= bad_id
            else:
                bad_time = True
        elif (m := _ISO.match(line)) and (iso := _iso_ns(m)) is not None:
            if iso == _OUT_OF_RANGE:
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
        n = None if bad_time else _NAME.match(line, start)
        if n:
            kind = KIND_EVENT if body is not None else KIND_BARE
            args_id, name_id, flags = self._intern_body(line[start:], n.end() - start, flags)
        else:
            kind, name_id = KIND_OTHER, -1
            text = line
            if len(text) > OTHER_TEXT_MAX:
                text, flags = text[:OTHER_TEXT_MAX], flags | FLAG_TEXT_CUT
            text, bad = _clean(text)
            flags |= FLAG_BAD_UTF8 if bad else 0
            args_id = self._tables["others"].intern(text)
        # The log scan leaves the pid and cpu columns empty, as the compiled scanner does.
        self._push(kind, era, flags, ts, tid, tname, name_id, args_id, ext=False)

    def _thread_info(self, t: re.Match[bytes], flags: int) -> tuple[int, int, int]:
        """(tid, thread-name id, flags) of a matched thread-info prefix."""
        tid, bad_id = _id_or_unknown(int(t.group(1)))
        name, bad = _clean(t.group(2))
        flags |= bad_id | (FLAG_BAD_UTF8 if bad else 0)
        return tid, self._tables["threads"].intern(name), flags

    # ------------------------------------------------------------ ftrace and LTTng text lines
    # Same grammar and the same checks as ftrace_line / lttng_line in _scan.c.

    def scan_ftrace(self, data: bytes, final: bool = False) -> int:
        """ftrace / trace-cmd report lines; returns the rows added."""
        return self._scan_with(data, final, self._ftrace_line)

    def scan_lttng(self, data: bytes, final: bool = False) -> int:
        """babeltrace text lines of LTTng events; returns the rows added."""
        self._args_per_body = True
        return self._scan_with(data, final, self._lttng_line)

    def _scan_with(self, data: bytes, final: bool, line_fn: Callable[[bytes, int], None]) -> int:
        lines = bytes(data).split(b"\n")
        last_without_newline = lines[-1] != b""
        if not last_without_newline:
            lines.pop()
        for i, line in enumerate(lines):
            cut = final and last_without_newline and i == len(lines) - 1
            line_fn(line, FLAG_NO_NEWLINE if cut else 0)
        return len(lines)

    def _push(
        self,
        kind: int,
        era: int,
        flags: int,
        ts: int,
        tid: int,
        tname: int,
        name: int,
        args: int,
        pid: int = -1,
        cpu: int = -1,
        ext: bool = True,
    ) -> None:
        self.kind.append(kind)
        self.era.append(era)
        self.flags.append(flags)
        self.ts.append(ts)
        self.tid.append(tid)
        self.tname.append(tname)
        self.name.append(name)
        self.args.append(args)
        if ext:
            self.pid.append(pid)
            self.cpu.append(cpu)

    def _push_other(self, line: bytes, flags: int) -> None:
        text = line
        if len(text) > OTHER_TEXT_MAX:
            text, flags = text[:OTHER_TEXT_MAX], flags | FLAG_TEXT_CUT
        text, bad = _clean(text)
        flags |= FLAG_BAD_UTF8 if bad else 0
        self._push(KIND_OTHER, ERA_NONE, flags, _NO_TIME, -1, -1, -1, self._tables["others"].intern(text))

    def _intern_body(self, body: bytes, nlen: int, flags: int) -> tuple[int, int, int]:
        """(args id, name id, flags) of the body "name args" whose name is body[:nlen]."""
        whole, bad = _clean(body)
        flags |= FLAG_BAD_UTF8 if bad else 0
        bodies = self._tables["bodies"]
        before = len(bodies.items)
        body_id = bodies.intern(whole)
        if len(bodies.items) != before:
            # The repaired name may be longer than the raw one (an LTTng event word may hold
            # any byte); a blank follows the name, so no UTF-8 sequence spans the boundary.
            clean_nlen = len(_clean(body[:nlen])[0]) if bad else nlen
            self._body_name.append(self._tables["names"].intern(whole[:clean_nlen]))
            self._body_nlen.append(clean_nlen)
            start = clean_nlen + 1 if clean_nlen < len(whole) else len(whole)
            self._body_args.append(
                body_id if self._args_per_body else self._tables["arg_texts"].intern(whole[start:])
            )
        return self._body_args[body_id], self._body_name[body_id], flags

    def _intern_thread(self, name: bytes, flags: int) -> tuple[int, int]:
        clean, bad = _clean(name)
        return self._tables["threads"].intern(clean), flags | (FLAG_BAD_UTF8 if bad else 0)

    def _ftrace_line(self, line: bytes, flags: int) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        end = len(line)
        if end and line[0] == ord("#"):
            self._push(KIND_HEADER, ERA_NONE, flags, _NO_TIME, -1, -1, -1, -1)
            return
        task = _skip_blanks(line, 0, end)
        dash = q = -1
        tid = 0
        id_flags = 0  # FLAG_BAD_ID, for the event row only
        d = task
        while d < end and d - task <= FTRACE_TASK_MAX:
            if line[d] == ord("-"):
                u = _uint(line, d + 1, end)
                if u and u[1] < end and line[u[1]] == ord(" "):
                    t = _skip_blanks(line, u[1], end)
                    if t < end and line[t] in b"([":
                        dash, q = d, t
                        tid, id_flags = _id_or_unknown(u[0])
                        break
            d += 1
        if dash < 0:
            self._push_other(line, flags)
            return
        pid = cpu = -1
        has_tgid = False
        if line[q] == ord("("):
            q = _skip_blanks(line, q + 1, end)
            u = _uint(line, q, end)
            if u:
                (pid, bad_id), t = _id_or_unknown(u[0]), u[1]
                id_flags |= bad_id
            else:
                t = q
                while t < end and line[t] == ord("-"):
                    t += 1
                if t == q:
                    self._push_other(line, flags)
                    return
            if t >= end or line[t] != ord(")"):
                self._push_other(line, flags)
                return
            q = _skip_blanks(line, t + 1, end)
            has_tgid = True
        if q >= end or line[q] != ord("["):
            self._push_other(line, flags)
            return
        u = _uint(line, q + 1, end)
        if not u or u[1] >= end or line[u[1]] != ord("]"):
            self._push_other(line, flags)
            return
        cpu, bad_id = _id_or_unknown(u[0])
        id_flags |= bad_id
        q = _skip_blanks(line, u[1] + 1, end)
        has_flags = False
        stamp = _sec_frac_colon(line, q, end)
        if stamp is None:
            f = q
            while f < end and line[f] != ord(" "):
                f += 1
            if not 1 <= f - q <= 8:
                self._push_other(line, flags)
                return
            stamp = _sec_frac_colon(line, _skip_blanks(line, f, end), end)
            if stamp is None:
                self._push_other(line, flags)
                return
            has_flags = True
        ts, after = stamp
        if has_flags:
            era = ERA_FTRACE_TGID if has_tgid else ERA_FTRACE
        else:
            era = ERA_FTRACE_NOFLAGS_TGID if has_tgid else ERA_FTRACE_NOFLAGS
        ev = _skip_blanks(line, after, end)
        if ev == after:
            self._push_other(line, flags)
            return
        ev_end = ev
        while ev_end < end and line[ev_end] in _NAME_CHARS:
            ev_end += 1
        if ev_end == ev or ev_end >= end or line[ev_end] != ord(":"):
            self._push_other(line, flags)
            return
        event = line[ev:ev_end]
        rest = ev_end + 1
        marker = False
        if event == MARKER_EVENT:
            marker = True
            if rest < end and line[rest] == ord(" "):
                rest += 1
        elif event == b"print":
            rest = _skip_blanks(line, rest, end)
            sym = rest
            while sym < end and (line[sym] in _NAME_CHARS or line[sym] == ord(".")):
                sym += 1
            if sym > rest and sym + 1 < end and line[sym : sym + 2] == b": ":
                rest = sym + 2
            marker = True
        tname, flags = self._intern_thread(line[task:dash], flags | id_flags)
        kind = KIND_KERNEL
        if marker:
            m = _NAME.match(line, rest)
            if m:
                args_id, name_id, flags = self._intern_body(line[rest:], m.end() - rest, flags)
                self._push(KIND_EVENT, era, flags, ts, tid, tname, name_id, args_id, pid, cpu)
                return
            body = MARKER_EVENT + b" " + line[rest:]
            nlen = len(MARKER_EVENT)
        else:
            rest = _skip_blanks(line, rest, end)
            body = event + b" " + line[rest:]
            nlen = len(event)
        args_id, name_id, flags = self._intern_body(body, nlen, flags)
        self._push(kind, era, flags, ts, tid, tname, name_id, args_id, pid, cpu)

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
        if stamp == _OUT_OF_RANGE:
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

    def take_rows(self) -> dict[str, bytes]:
        out = {
            "kind": self.kind.tobytes(),
            "era": self.era.tobytes(),
            "flags": self.flags.tobytes(),
            "ts": self.ts.tobytes(),
            "tid": self.tid.tobytes(),
            "tname": self.tname.tobytes(),
            "name": self.name.tobytes(),
            "args": self.args.tobytes(),
            "pid": self.pid.tobytes(),
            "cpu": self.cpu.tobytes(),
        }
        self._reset_rows()
        return out

    def absorb(self, which: str, count: int, offsets: bytes, data: bytes) -> bytes:
        """The int32 ids here of another scanner's exported table (see ``_scan.c``)."""
        key = {"names": "names", "threads": "threads", "others": "others"}.get(which)
        if which == "args" and not self._args_per_body:
            key = "arg_texts"
        if key is None:
            raise ValueError(f"cannot absorb table {which} (unknown, or malformed offsets)")
        offs = np.frombuffer(offsets, dtype=np.int64)[: count + 1].tolist()
        raw = bytes(data)
        table = self._tables[key]
        return array("i", [table.intern(raw[offs[i] : offs[i + 1]]) for i in range(count)]).tobytes()

    def table(self, which: str) -> tuple[int, bytes, bytes]:
        if which != "args":
            return self._tables[which].export()
        bodies = self._tables["bodies"]
        if self._args_per_body:
            args = _Interner()
            args.items = [
                b[nlen + 1 :] if len(b) > nlen else b""
                for b, nlen in zip(bodies.items, self._body_nlen, strict=True)
            ]
        else:
            args = self._tables["arg_texts"]
        out = args.export()
        self._tables["bodies"] = _Interner()
        self._body_name, self._body_nlen, self._body_args = [], [], []
        return out


# ------------------------------------------------------------ helpers of the ftrace / LTTng twins

KIND_KERNEL, KIND_HEADER = 3, 4
ERA_FTRACE, ERA_FTRACE_TGID, ERA_FTRACE_NOFLAGS, ERA_FTRACE_NOFLAGS_TGID = 5, 6, 7, 8
ERA_LTTNG_TIME_OF_DAY, ERA_LTTNG_DATE, ERA_LTTNG_SECONDS = 9, 10, 11
ERA_LTTNG_CYCLES, ERA_LTTNG_NO_CLOCK = 12, 13
FTRACE_TASK_MAX = 64
MARKER_EVENT = b"tracing_mark_write"
_NAME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_DIGITS = frozenset(b"0123456789")


def _uint(b: bytes, i: int, end: int) -> tuple[int, int, int] | None:
    """(value, end, digits) of up to 19 digits at b[i], None when none or more than 19."""
    j = i
    while j < end and b[j] in _DIGITS and j - i < 19:
        j += 1
    if j == i or (j < end and b[j] in _DIGITS):
        return None
    return int(b[i:j]), j, j - i


def _skip_blanks(b: bytes, i: int, end: int) -> int:
    while i < end and b[i] == 0x20:
        i += 1
    return i


def _sec_frac_colon(b: bytes, i: int, end: int) -> tuple[int, int] | None:
    sec = _uint(b, i, end)
    if not sec or sec[1] >= end or b[sec[1]] != ord(".") or sec[0] > 9_000_000_000:
        return None
    frac = _uint(b, sec[1] + 1, end)
    if not frac or frac[2] > 9 or frac[1] >= end or b[frac[1]] != ord(":"):
        return None
    return sec[0] * 1_000_000_000 + frac[0] * 10 ** (9 - frac[2]), frac[1] + 1


def _two_digits(b: bytes, i: int) -> int | None:
    if b[i] in _DIGITS and b[i + 1] in _DIGITS:
        return (b[i] - 48) * 10 + b[i + 1] - 48
    return None


def _lttng_cycles(t: bytes) -> int | None:
    """The value of 20 digits (_OUT_OF_RANGE beyond int64), None when t is not that form."""
    if len(t) != 20 or any(c not in _DIGITS for c in t):
        return None
    v = int(t)
    return v if v <= _INT64_MAX else _OUT_OF_RANGE


def _lttng_time(t: bytes) -> tuple[int, int] | None:
    """(era, ns) of babeltrace's [TIME] text (ns _OUT_OF_RANGE beyond int64), or None."""
    n = len(t)
    if t == b"??:??:??.?????????":
        return ERA_LTTNG_NO_CLOCK, _NO_TIME
    days, era, s = 0, ERA_LTTNG_TIME_OF_DAY, t
    if n == 29 and t[4:5] == b"-" and t[7:8] == b"-" and t[10:11] == b" ":
        y1, y2, mo, d = (_two_digits(t, k) for k in (0, 2, 5, 8))
        if y1 is None or y2 is None or mo is None or d is None:
            return None
        if not (1 <= mo <= 12 and 1 <= d <= 31) or y1 + y2 == 0:
            return None
        days = _days_from_civil(y1 * 100 + y2, mo, d)
        era, s, n = ERA_LTTNG_DATE, t[11:], n - 11
    if n == 18 and s[2:3] == b":" and s[5:6] == b":" and s[8:9] == b".":
        h, mi, sec = (_two_digits(s, k) for k in (0, 3, 6))
        if h is None or mi is None or sec is None or h > 23 or mi > 59 or sec > 60:
            return None
        frac = _uint(s, 9, n)
        if not frac or frac[1] != n or frac[2] != 9:
            return None
        ns = _checked_ns(days * 86400 + h * 3600 + mi * 60 + sec, frac[0])
        return era, _OUT_OF_RANGE if ns is None else ns
    if era == ERA_LTTNG_DATE:
        return None
    negative = 1 if n and t[0] == ord("-") else 0
    whole = _uint(t, negative, n)
    if not whole:
        return None
    if whole[1] < n and t[whole[1]] == ord("."):
        frac = _uint(t, whole[1] + 1, n)
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
    if q >= end or not (b[q] in _NAME_CHARS and b[q] not in _DIGITS):
        return False
    while q < end and b[q] in _NAME_CHARS:
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
        q = _skip_blanks(b, q, e)
        name_start = q
        while q < e and b[q] in _NAME_CHARS:
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
        if val < val_end and all(c in _DIGITS for c in b[val:val_end]):
            u = _uint(b, val, val_end)
            number = u[0] if u and u[1] == val_end and u[0] <= _INT32_MAX else -1
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
