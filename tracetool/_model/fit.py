"""Whether a side file belongs to the trace it is given with.

A thread-name sidecar describes one QEMU process; a ``--borrow-from`` log is the twin of a
simple-backend trace. Given with the wrong trace (another run, the other side of the
migration) either would be taken without a word and name threads wrongly, so both are checked:

* a sidecar belongs when some process of the trace is the process it describes: the same pid
  where the trace and the sidecar both know it, else at least one of the sidecar's thread ids
  among the trace's; and, when both are on the wall clock, the time it was sampled overlaps
  that process's events. A trace with neither pids nor thread ids cannot tell (only the time
  is checked then);
* a borrow twin belongs when at least half of the events of every simple-trace process found
  their log event and the matched events agree on one clock offset (``ClockFit.mad_ns``).

The real twin of a simple trace matches ~100 % of its events with offsets spread by < 1 µs;
the log of another run of the same scenario matches 4-15 % with a spread of 0.3-13 ms (the
shipped threadify samples), so the two limits below sit far from both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from tracetool._model.borrow import ProcessMatch
from tracetool._model.sidecar import ThreadMap
from tracetool._model.trace import Trace

MIN_MATCH_RATE = 0.5
MAX_CLOCK_SPREAD_NS = 100_000
SHOWN_TIDS = 4


@dataclass(frozen=True)
class ProcessView:
    """What the trace itself says about one process (nothing borrowed from a sidecar)."""

    label: str
    side: str | None
    pid: int | None
    tids: frozenset[int]
    first_ns: int | None
    last_ns: int | None


def process_views(trace: Trace) -> list[ProcessView]:
    """Each process's own pid (from the trace lines, not a sidecar), thread ids and wall-clock
    time range (None unless the trace is on the wall clock)."""
    th = trace.threads
    labels = [str(x) for x in th["process"].cat.categories]
    codes = th["process"].cat.codes.to_numpy()
    row_proc = codes[trace.row_thread]
    raw_pid = trace._c.pid
    wall = trace.clock == "wall"
    sides = dict(zip(trace.processes["label"].astype(str), trace.processes["side"], strict=True))
    out = []
    for i, label in enumerate(labels):
        pids = np.unique(raw_pid[(row_proc == i) & (raw_pid >= 0)])
        rows = th[codes == i]
        tids = frozenset(int(t) for t in rows["tid"].dropna().tolist())
        first = rows["first_ns"].dropna()
        last = rows["last_ns"].dropna()
        side = sides.get(label)
        out.append(
            ProcessView(
                label=label,
                side=str(side) if side is not None and not pd.isna(side) else None,
                pid=int(pids[0]) if len(pids) == 1 else None,
                tids=tids,
                first_ns=int(first.min()) if wall and len(first) else None,
                last_ns=int(last.max()) if wall and len(last) else None,
            )
        )
    return out


def _same_process(m: ThreadMap, p: ProcessView) -> bool | None:
    """True/False when pid or thread ids decide, None when the trace cannot tell."""
    if m.pid is not None and p.pid is not None:
        return m.pid == p.pid
    if p.tids and m.names:
        return bool(p.tids & set(m.names))
    return None


def _overlaps(m: ThreadMap, p: ProcessView) -> bool | None:
    if None in (m.first_seen_s, m.last_seen_s, p.first_ns, p.last_ns):
        return None
    assert m.first_seen_s is not None and m.last_seen_s is not None
    assert p.first_ns is not None and p.last_ns is not None
    return m.first_seen_s * 1e9 <= p.last_ns and p.first_ns <= m.last_seen_s * 1e9


def _clock(ns: float) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%H:%M:%S.%f")[:-3]


def _tids(tids: frozenset[int] | set[int]) -> str:
    shown = sorted(tids)[:SHOWN_TIDS]
    return ", ".join(map(str, shown)) + (", ..." if len(tids) > SHOWN_TIDS else "")


def sidecar_misfit(trace: Trace, m: ThreadMap, views: list[ProcessView] | None = None) -> str | None:
    """Why sidecar ``m`` does not belong to ``trace`` (one line), or None when it may."""
    views = process_views(trace) if views is None else views
    verdicts = [(p, _same_process(m, p)) for p in views]
    same = [p for p, v in verdicts if v]
    open_ = [p for p, v in verdicts if v is None]
    if not same and not open_:
        return _identity_reason(m, views)
    candidates = same or open_
    timed = [(p, _overlaps(m, p)) for p in candidates]
    if any(v is not False for _, v in timed):
        return None
    p = candidates[0]
    assert m.first_seen_s is not None and m.last_seen_s is not None
    assert p.first_ns is not None and p.last_ns is not None
    return (
        f"its threads were sampled {_clock(m.first_seen_s * 1e9)}-{_clock(m.last_seen_s * 1e9)} UTC, "
        f"the trace's {p.label} runs {_clock(p.first_ns)}-{_clock(p.last_ns)} UTC"
    )


def _identity_reason(m: ThreadMap, views: list[ProcessView]) -> str:
    with_pid = [p for p in views if p.pid is not None]
    if m.pid is not None and with_pid:
        pids = ", ".join(f"{p.pid} ({p.label})" for p in with_pid)
        return f"it describes pid {m.pid}, the trace has pid {pids}"
    tids = frozenset().union(*(p.tids for p in views))
    who = f"{m.side} process, " if m.side else ""
    return f"none of its thread ids ({who}{_tids(set(m.names))}) is in the trace (thread ids {_tids(tids)})"


def sidecar_side_untraced(trace: Trace, m: ThreadMap, views: list[ProcessView] | None = None) -> bool:
    """True when ``m`` names its side and the trace has no process of that side: a sidecar
    found next to a trace of one side only describes the process that was not traced."""
    views = process_views(trace) if views is None else views
    return m.side is not None and all(p.side != m.side for p in views)


def borrow_misfit(match: ProcessMatch) -> str | None:
    """Why the log twin does not fit one simple-trace process (one line), or None."""
    if not match.simple_events:
        return None
    who = f"{match.simple_process}" + (f" (pid {match.simple_pid})" if match.simple_pid is not None else "")
    if match.simple_match_rate < MIN_MATCH_RATE:
        return (
            f"only {match.matched} of the {match.simple_events} events of {who} "
            f"({100 * match.simple_match_rate:.0f} %) are in the log"
        )
    if match.clock is not None and match.clock.mad_ns > MAX_CLOCK_SPREAD_NS:
        return (
            f"the events of {who} matched in the log disagree on the clock offset "
            f"(spread {match.clock.mad_ns / 1e6:.2f} ms; a twin of the same run agrees within µs)"
        )
    return None
