"""The primary's and the secondary's checkpoints on one time axis, paired.

The axis is the secondary's clock. When both traces use the host's wall clock the times are
used as recorded; otherwise the primary is shifted by the offset :func:`merge.align` finds from
messages that pair across the channel (``[[wire]]`` in spans.toml, the COLO messages among
them: a message is received after it was sent).

A checkpoint lasts from its 'checkpoint-request' to its 'vmstate-loaded' (or to where it was
cut) on both sides, and the secondary's part lies inside the primary's; consecutive
checkpoints of one side never overlap. So a secondary checkpoint pairs with the primary
checkpoint that overlaps it most on the common axis. Log timestamps of two processes can
disagree by a few tens of µs (a receive stamped before its send), hence a small slack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tracetool._analyses.merge import NO_ALIGNMENT, SAME_CLOCK, align
from tracetool._model.trace import Trace

if TYPE_CHECKING:
    from tracetool._analyses.colo.colo import ColoProcess

SLACK_NS = 1_000_000
"""How far a receive may seem to precede its send (ns)."""


def pair_sides(trace: Trace, secondary: ColoProcess, primary: ColoProcess) -> dict[str, Any]:
    """Sets ``primary.offset_ns`` and each checkpoint's ``peer``; returns the ``alignment``
    object of the document (method, reference, offset, pairs, notes)."""
    a = align(trace)
    notes: list[str] = []
    offset = 0
    if a.method == NO_ALIGNMENT or a.src != primary.label or a.dst != secondary.label:
        method = NO_ALIGNMENT
        notes.append(
            "checkpoints not paired: no common time axis for the primary and the secondary"
            + (f" ({'; '.join(a.notes)})" if a.notes else "")
        )
        return _doc(method, secondary.label, offset, 0, a.uncertainty_ns, notes)
    method = a.method
    offset = 0 if method == SAME_CLOCK else a.offset_ns
    primary.offset_ns = offset
    slack = SLACK_NS + (0 if method == SAME_CLOCK else (a.uncertainty_ns or 0))
    paired = _pair(secondary.checkpoints, primary.checkpoints, offset, slack)
    if method == SAME_CLOCK:
        notes.append(f"checkpoints paired on the host's {_clock(a.notes)} clock, as recorded")
    else:
        notes.append(
            f"checkpoints paired after shifting the primary by {offset / 1e6:.3f} ms onto the "
            f"secondary's clock (from {sum(a.pairs.values())} messages that pair across the channel)"
        )
    return _doc(method, secondary.label, offset, paired, a.uncertainty_ns, notes)


def _window(c: dict[str, Any], offset: int) -> tuple[int, int] | None:
    a = c["request_ns"]
    if a is None:
        return None
    b = c["end_ns"] if c["end_ns"] is not None else a
    return a + offset, max(b, a) + offset


def _pair(secondary: list[dict[str, Any]], primary: list[dict[str, Any]], offset: int, slack: int) -> int:
    """Sets ``peer`` on both sides' records; returns how many pairs."""
    windows = [(w, c) for c in primary if (w := _window(c, offset)) is not None]
    starts = np.array([w[0] for w, _ in windows], dtype=np.int64)
    ends = np.maximum.accumulate(np.array([w[1] for w, _ in windows], dtype=np.int64)) if windows else starts
    paired, used = 0, -1
    for c in secondary:
        w = _window(c, 0)
        if w is None:
            continue
        lo = max(int(np.searchsorted(ends, w[0] - slack, side="left")), used + 1)
        hi = int(np.searchsorted(starts, w[1] + slack, side="right"))
        best, best_overlap = None, -slack - 1
        for j in range(lo, hi):
            (s, e), _ = windows[j]
            overlap = min(w[1], e) - max(w[0], s)
            if overlap > best_overlap:
                best, best_overlap = j, overlap
        if best is None:
            continue
        peer = windows[best][1]
        c["peer"], peer["peer"] = peer["index"], c["index"]
        used = best
        paired += 1
    return paired


def _clock(notes: list[str]) -> str:
    """The clock name from merge.align's same-clock note ("both sides use the wall clock")."""
    for n in notes:
        if n.startswith("both sides use the "):
            return n.removeprefix("both sides use the ").split(" clock")[0]
    return "common"


def _doc(
    method: str, reference: str, offset: int, paired: int, uncertainty: int | None, notes: list[str]
) -> dict[str, Any]:
    return {
        "method": method,
        "reference": reference,
        "primary_offset_ns": offset,
        "uncertainty_ns": uncertainty,
        "paired": paired,
        "notes": notes,
    }
