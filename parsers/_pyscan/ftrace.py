"""ftrace text (raw tracefs or ``trace-cmd report``) lines, as ``_scan.c``'s ftrace_line: the
QEMU markers as events, the kernel's events as kernel rows, ``#`` lines as headers."""

from __future__ import annotations

from parsers._pyscan.rows import RowStore
from parsers._pyscan.text import (
    ERA_FTRACE,
    ERA_FTRACE_NOFLAGS,
    ERA_FTRACE_NOFLAGS_TGID,
    ERA_FTRACE_TGID,
    ERA_NONE,
    EVENT_NAME,
    KIND_EVENT,
    KIND_HEADER,
    KIND_KERNEL,
    NAME_CHARS,
    NO_TIME,
    id_or_unknown,
    skip_blanks,
    uint_at,
)

FTRACE_TASK_MAX = 64
MARKER_EVENT = b"tracing_mark_write"


class FtraceScan(RowStore):
    """Rows of ftrace text lines."""

    def scan_ftrace(self, data: bytes, final: bool = False) -> int:
        """ftrace / trace-cmd report lines; returns the rows added."""
        return self._scan_with(data, final, self._ftrace_line)

    def _ftrace_line(self, line: bytes, flags: int) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        end = len(line)
        if end and line[0] == ord("#"):
            self._push(KIND_HEADER, ERA_NONE, flags, NO_TIME, -1, -1, -1, -1)
            return
        task = skip_blanks(line, 0, end)
        dash = q = -1
        tid = 0
        id_flags = 0  # FLAG_BAD_ID, for the event row only
        d = task
        while d < end and d - task <= FTRACE_TASK_MAX:
            if line[d] == ord("-"):
                u = uint_at(line, d + 1, end)
                if u and u[1] < end and line[u[1]] == ord(" "):
                    t = skip_blanks(line, u[1], end)
                    if t < end and line[t] in b"([":
                        dash, q = d, t
                        tid, id_flags = id_or_unknown(u[0])
                        break
            d += 1
        if dash < 0:
            self._push_other(line, flags)
            return
        pid = cpu = -1
        has_tgid = False
        if line[q] == ord("("):
            q = skip_blanks(line, q + 1, end)
            u = uint_at(line, q, end)
            if u:
                (pid, bad_id), t = id_or_unknown(u[0]), u[1]
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
            q = skip_blanks(line, t + 1, end)
            has_tgid = True
        if q >= end or line[q] != ord("["):
            self._push_other(line, flags)
            return
        u = uint_at(line, q + 1, end)
        if not u or u[1] >= end or line[u[1]] != ord("]"):
            self._push_other(line, flags)
            return
        cpu, bad_id = id_or_unknown(u[0])
        id_flags |= bad_id
        q = skip_blanks(line, u[1] + 1, end)
        has_flags = False
        stamp = _sec_frac_colon(line, q, end)
        if stamp is None:
            f = q
            while f < end and line[f] != ord(" "):
                f += 1
            if not 1 <= f - q <= 8:
                self._push_other(line, flags)
                return
            stamp = _sec_frac_colon(line, skip_blanks(line, f, end), end)
            if stamp is None:
                self._push_other(line, flags)
                return
            has_flags = True
        ts, after = stamp
        if has_flags:
            era = ERA_FTRACE_TGID if has_tgid else ERA_FTRACE
        else:
            era = ERA_FTRACE_NOFLAGS_TGID if has_tgid else ERA_FTRACE_NOFLAGS
        ev = skip_blanks(line, after, end)
        if ev == after:
            self._push_other(line, flags)
            return
        ev_end = ev
        while ev_end < end and line[ev_end] in NAME_CHARS:
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
            rest = skip_blanks(line, rest, end)
            sym = rest
            while sym < end and (line[sym] in NAME_CHARS or line[sym] == ord(".")):
                sym += 1
            if sym > rest and sym + 1 < end and line[sym : sym + 2] == b": ":
                rest = sym + 2
            marker = True
        tname, flags = self._intern_thread(line[task:dash], flags | id_flags)
        kind = KIND_KERNEL
        if marker:
            m = EVENT_NAME.match(line, rest)
            if m:
                args_id, name_id, flags = self._intern_body(line[rest:], m.end() - rest, flags)
                self._push(KIND_EVENT, era, flags, ts, tid, tname, name_id, args_id, pid, cpu)
                return
            body = MARKER_EVENT + b" " + line[rest:]
            nlen = len(MARKER_EVENT)
        else:
            rest = skip_blanks(line, rest, end)
            body = event + b" " + line[rest:]
            nlen = len(event)
        args_id, name_id, flags = self._intern_body(body, nlen, flags)
        self._push(kind, era, flags, ts, tid, tname, name_id, args_id, pid, cpu)


def _sec_frac_colon(b: bytes, i: int, end: int) -> tuple[int, int] | None:
    sec = uint_at(b, i, end)
    if not sec or sec[1] >= end or b[sec[1]] != ord(".") or sec[0] > 9_000_000_000:
        return None
    frac = uint_at(b, sec[1] + 1, end)
    if not frac or frac[2] > 9 or frac[1] >= end or b[frac[1]] != ord(":"):
        return None
    return sec[0] * 1_000_000_000 + frac[0] * 10 ** (9 - frac[2]), frac[1] + 1
