"""Source and destination on one time axis, and the switchover downtime seen from both ends.

Traces on the same clock (both wall clock, as the log backend with ``-msg timestamp=on``) are
used as they are. Otherwise the source is shifted onto the destination's clock with events
that pair across the migration channel (``[[wire]]`` in tracetool/_timeline/spans.toml): a message sent by
the source is received later on the destination, so ``dst_receive - src_send`` is an upper
bound of the clock offset; a reply from the destination gives a lower bound. The estimate is
the middle of the two bounds (or the one bound there is), and the report says which.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from tracetool._model.querymigrate import QueryMigrate
from tracetool._model.trace import Trace

if TYPE_CHECKING:
    from tracetool._timeline.result import Timeline
    from tracetool._timeline.rules import WireRule
# The timeline (its rules, its builder) is imported where it is used: the helpers on processes
# serve commands that build no timeline (summary).

SAME_CLOCK = "same-clock"
WIRE_EVENTS = "wire-events"
NO_ALIGNMENT = "none"


@dataclass
class Alignment:
    """How the source's times map onto the destination's clock.

    ``offset_ns`` is added to the source's timestamps. ``lower_ns``/``upper_ns`` are the bounds
    the wire events give (None when no such pair was found); ``pairs`` counts them per anchor.
    ``method``: "same-clock", "wire-events" or "none" (one side only, or no timestamps).
    """

    method: str
    src: str | None
    dst: str | None
    offset_ns: int = 0
    lower_ns: int | None = None
    upper_ns: int | None = None
    pairs: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def uncertainty_ns(self) -> int | None:
        """Half the width of the offset interval, when both bounds are known."""
        if self.lower_ns is None or self.upper_ns is None:
            return None
        return abs(self.upper_ns - self.lower_ns) // 2

    def to_json(self) -> dict[str, Any]:
        """JSON form: method, processes, offset and bounds (ns), pair counts, notes."""
        return {
            "method": self.method,
            "src": self.src,
            "dst": self.dst,
            "offset_ns": self.offset_ns,
            "lower_ns": self.lower_ns,
            "upper_ns": self.upper_ns,
            "uncertainty_ns": self.uncertainty_ns,
            "pairs": dict(self.pairs),
            "notes": list(self.notes),
        }


def process_of_side(trace: Trace, side: str) -> str | None:
    """Label of the first process on ``side`` ("src"/"dst"), or None."""
    p = trace.processes
    hit = p[p["side"] == side]
    return str(hit["label"].iloc[0]) if len(hit) else None


def process_mask(trace: Trace, label: str) -> np.ndarray:
    """Boolean mask of the rows of one process."""
    th = trace.threads
    codes = th["process"].cat.codes.to_numpy()
    want = list(th["process"].cat.categories).index(label)
    return (codes == want)[trace.row_thread] if len(trace) else np.zeros(0, bool)


def process_clock(trace: Trace, mask: np.ndarray) -> str:
    """The clock of a process's inputs ("wall", "monotonic"... or "mixed"/"none")."""
    sources: list[int] = np.unique(trace.source[mask]).tolist() if mask.any() else []
    all_clocks = trace.inputs["clock"].astype(str).tolist()
    clocks = {all_clocks[s] for s in sources}
    clocks.discard("none")
    if not clocks:
        return "none"
    return clocks.pop() if len(clocks) == 1 else "mixed"


def wire_pairs(trace: Trace, rule: WireRule, src_mask: np.ndarray, dst_mask: np.ndarray) -> pd.DataFrame:
    """Send/receive pairs of one anchor: columns send_ns, receive_ns (each on its own clock)."""
    send_mask, recv_mask = (src_mask, dst_mask) if rule.sender == "src" else (dst_mask, src_mask)
    s = trace.rows(rule.send)
    r = trace.rows(rule.receive)
    s = s[send_mask[s]] if len(s) else s
    r = r[recv_mask[r]] if len(r) else r
    empty = pd.DataFrame({"send_ns": np.zeros(0, np.int64), "receive_ns": np.zeros(0, np.int64)})
    if not len(s) or not len(r):
        return empty
    sk = _keys(trace, s, rule.key)
    rk = _keys(trace, r, rule.key)
    left = pd.DataFrame({"key": sk, "send_ns": trace.ts[s]})
    right = pd.DataFrame({"key": rk, "receive_ns": trace.ts[r]})
    left["k"] = left.groupby("key").cumcount()
    right["k"] = right.groupby("key").cumcount()
    # Only keys seen as often on both sides: a missing message would shift every later pair.
    ns, nr = left["key"].value_counts(), right["key"].value_counts()
    both = ns.index.intersection(nr.index)
    same = both[(ns.reindex(both) == nr.reindex(both)).to_numpy()]
    out = left[left["key"].isin(same)].merge(right[right["key"].isin(same)], on=["key", "k"])
    timed = (out["send_ns"] != NO_TIME) & (out["receive_ns"] != NO_TIME)
    return out.loc[timed, ["send_ns", "receive_ns"]].reset_index(drop=True)


def _keys(trace: Trace, rows: np.ndarray, key: str) -> np.ndarray:
    if key == "ordinal":
        return np.zeros(len(rows), dtype=object)
    out = np.full(len(rows), None, dtype=object)
    codes = trace.name_codes[rows]
    for code in np.unique(codes).tolist():
        f = trace.fields(trace.event_names[code])
        sel = np.flatnonzero(codes == code)
        if key in f.columns:
            out[sel] = f[key].reindex(rows[sel]).astype("string").to_numpy(dtype=object)
    return out


def align(trace: Trace, method: str = "auto") -> Alignment:
    """Puts the source on the destination's time axis (see module docstring).

    ``method``: "auto" (same clock when both inputs use one, else wire events), or force
    "same-clock" / "wire-events".
    """
    src, dst = process_of_side(trace, "src"), process_of_side(trace, "dst")
    if src is None or dst is None:
        return Alignment(NO_ALIGNMENT, src, dst, notes=["only one side of the migration is in the trace"])
    src_mask, dst_mask = process_mask(trace, src), process_mask(trace, dst)
    c_src, c_dst = process_clock(trace, src_mask), process_clock(trace, dst_mask)
    if "none" in (c_src, c_dst):
        return Alignment(NO_ALIGNMENT, src, dst, notes=["a side has no timestamps: no common time axis"])
    from tracetool._timeline.rules import rules

    lower: list[int] = []
    upper: list[int] = []
    pairs: dict[str, int] = {}
    for rule in rules().wires:
        got = wire_pairs(trace, rule, src_mask, dst_mask)
        if not len(got):
            continue
        pairs[rule.name] = len(got)
        if rule.sender == "src":  # dst_receive >= src_send + offset
            upper.append(int((got["receive_ns"] - got["send_ns"]).min()))
        else:  # src_receive + offset >= dst_send
            lower.append(int((got["send_ns"] - got["receive_ns"]).max()))
    lo = max(lower) if lower else None
    hi = min(upper) if upper else None
    same = c_src == c_dst and c_src != "mixed"
    chosen = SAME_CLOCK if (method == "auto" and same) or method == SAME_CLOCK else WIRE_EVENTS
    a = Alignment(chosen, src, dst, lower_ns=lo, upper_ns=hi, pairs=pairs)
    if chosen == SAME_CLOCK:
        a.notes.append(f"both sides use the {c_src} clock: one time axis as recorded")
        if (hi is not None and hi < 0) or (lo is not None and lo > 0):
            a.notes.append(
                "wire events disagree with one clock (a receive before its send): "
                "the clocks may not be synchronised"
            )
        return a
    if lo is None and hi is None:
        a.method = NO_ALIGNMENT
        a.notes.append(f"clocks differ ({c_src} vs {c_dst}) and no events pair across the wire")
        return a
    if lo is not None and hi is not None:
        a.offset_ns = (lo + hi) // 2
        if lo > hi:
            a.notes.append(
                "lower bound above upper bound: pairs disagree (clock drift or lost events); using the middle"
            )
    else:
        a.offset_ns = hi if hi is not None else int(lo)  # type: ignore[arg-type]
        a.notes.append("only one direction pairs: the offset assumes no transfer latency")
    a.notes.append(
        f"source shifted by {a.offset_ns} ns onto the destination clock "
        f"({c_src} -> {c_dst}) from {sum(pairs.values())} wire pairs"
    )
    return a


def aligned_ts(trace: Trace, alignment: Alignment) -> np.ndarray:
    """Event times with the source moved onto the destination's axis (NO_TIME kept)."""
    ts = trace.ts.copy()
    if alignment.src is None or alignment.offset_ns == 0:
        return ts
    m = process_mask(trace, alignment.src) & (ts != NO_TIME)
    ts[m] += alignment.offset_ns
    return ts


# ---------------------------------------------------------------------------------- downtime
@dataclass
class Downtime:
    """Switchover downtime from both ends, next to QEMU's own number.

    ``src_us``: source VM stop -> source done (src-downtime-start -> src-downtime-end, or the
    stop -> completion / package sent); this is what QEMU reports. ``dst_us``: the first thing
    the destination reads that the source sends only after stopping (SWITCHOVER_START, the
    END section, the postcopy discard or package) -> destination VM running.
    ``end_to_end_us``: source VM stop -> destination VM running on the common axis.
    """

    src_us: float | None
    dst_us: float | None
    end_to_end_us: float | None
    qemu_reported_ms: float | None
    method: str
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``downtime`` object of ``migtrace phases --format json``."""
        return {
            "src_us": self.src_us,
            "dst_us": self.dst_us,
            "qemu_reported_ms": self.qemu_reported_ms,
            "method": self.method,
            "end_to_end_us": self.end_to_end_us,
        }


@dataclass
class TotalTime:
    """Whole migration: source ``migrate`` command -> completed; destination accept -> done."""

    src_us: float | None
    dst_us: float | None
    qemu_reported_ms: float | None

    def to_json(self) -> dict[str, Any]:
        """JSON form (durations in µs, QEMU's in ms)."""
        return {"src_us": self.src_us, "dst_us": self.dst_us, "qemu_reported_ms": self.qemu_reported_ms}


def phase_span(timeline: Timeline, process: str | None, name: str) -> pd.Series | None:
    """The phase span ``name`` of a process, or None."""
    if process is None:
        return None
    s = timeline.spans
    hit = s[(s["kind"] == "phase") & (s["name"] == name) & (s["process"] == process)]
    return hit.iloc[0] if len(hit) else None


def _us(span: pd.Series | None) -> float | None:
    if span is None or not bool(span["closed"]) or pd.isna(span["duration_us"]):
        return None
    return float(span["duration_us"])


def switchover_downtime(
    trace: Trace, query: QueryMigrate | None = None, alignment: Alignment | None = None
) -> Downtime:
    """Downtime from the source's and the destination's phases (see :class:`Downtime`)."""
    from tracetool._timeline.builder import build_timeline

    tl = build_timeline(trace)
    a = alignment or align(trace)
    src, dst = process_of_side(trace, "src"), process_of_side(trace, "dst")
    s_span = phase_span(tl, src, "src-downtime")
    d_span = phase_span(tl, dst, "switchover")
    end_to_end = None
    notes: list[str] = []
    if s_span is not None and d_span is not None and a.method != NO_ALIGNMENT and bool(d_span["closed"]):
        start = int(s_span["start_ns"]) + a.offset_ns
        end_to_end = (int(d_span["end_ns"]) - start) / 1000.0
    if d_span is not None and not bool(d_span["closed"]):
        notes.append("the destination VM never started in this trace")
    unset = query.unset_note() if query is not None else None
    if unset:
        notes.append(unset)
    return Downtime(
        src_us=_us(s_span),
        dst_us=_us(d_span),
        end_to_end_us=end_to_end,
        qemu_reported_ms=query.downtime_ms if query else None,
        method=a.method,
        notes=notes,
    )


def total_time(trace: Trace, query: QueryMigrate | None = None) -> TotalTime:
    """Total migration time from the source's and the destination's phases."""
    from tracetool._timeline.builder import build_timeline

    tl = build_timeline(trace)
    src, dst = process_of_side(trace, "src"), process_of_side(trace, "dst")
    return TotalTime(
        src_us=_us(phase_span(tl, src, "migrate")),
        dst_us=_us(phase_span(tl, dst, "incoming")),
        qemu_reported_ms=query.total_time_ms if query else None,
    )
