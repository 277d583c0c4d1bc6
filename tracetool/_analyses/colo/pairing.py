"""The primary's and the secondary's checkpoints on one time axis, paired.

The axis is the secondary's clock. When both traces use the host's wall clock the times are
used as recorded, unless the COLO messages say the two clocks differ (two hosts); then, and
when the clocks are of different kinds, the primary is shifted by what the messages give.

QEMU traces ``colo_send_message`` after the message went out and ``colo_receive_message``
after it came in, so a message's two times do not bound the clock offset (a receive can be
stamped before its send). Over many messages they still give it: with ``fwd`` the median of
receive - send for messages to the secondary and ``back`` the same for messages to the
primary, the primary's clock is ``(fwd - back) / 2`` behind the secondary's, assuming the
channel is as fast both ways.

A checkpoint lasts from its 'checkpoint-request' to its 'vmstate-loaded' (or to where it was
cut) on both sides, and the secondary's part lies inside the primary's; consecutive
checkpoints of one side never overlap. So a secondary checkpoint pairs with the primary
checkpoint that overlaps it most on the common axis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from parsers.segment import NO_TIME
from tracetool._analyses.colo.protocol import RECEIVE, SEND, arg_text, event_rows, protocol
from tracetool._analyses.merge import process_clock
from tracetool._model.trace import Trace

if TYPE_CHECKING:
    from tracetool._analyses.colo.colo import ColoProcess

SAME_CLOCK = "same-clock"
MESSAGES = "colo-messages"
NO_AXIS = "none"
SLACK_NS = 1_000_000
"""How far a checkpoint may seem to start before its peer on the common axis (ns)."""
DISAGREE_NS = 10_000_000
"""A message-based offset beyond this means the two wall clocks are not one clock."""


def _times(trace: Trace, event: str, mask: np.ndarray, names: frozenset[str]) -> dict[str, list[int]]:
    rows = event_rows(trace, event, mask)
    out: dict[str, list[int]] = {}
    for r, m in zip(rows.tolist(), arg_text(trace, event, rows, "msg"), strict=True):
        t = int(trace.ts[r])
        if m in names and t != NO_TIME:
            out.setdefault(m, []).append(t)
    return out


def _gaps(sent: dict[str, list[int]], received: dict[str, list[int]]) -> list[int]:
    """receive - send of the k-th message of each name, for names seen as often on both ends."""
    out: list[int] = []
    for name, s in sent.items():
        r = received.get(name, [])
        if len(r) == len(s):
            out.extend(b - a for a, b in zip(s, r, strict=True))
    return out


def message_offset(trace: Trace, secondary: np.ndarray, primary: np.ndarray) -> tuple[int | None, int]:
    """ns to add to the primary's times to put them on the secondary's clock, and how many
    messages gave it (None when one direction has none)."""
    proto = protocol()
    fwd = _gaps(
        _times(trace, SEND, primary, proto.to_secondary),
        _times(trace, RECEIVE, secondary, proto.to_secondary),
    )
    back = _gaps(
        _times(trace, SEND, secondary, proto.to_primary), _times(trace, RECEIVE, primary, proto.to_primary)
    )
    if not fwd or not back:
        return None, len(fwd) + len(back)
    return int((np.median(fwd) - np.median(back)) / 2), len(fwd) + len(back)


def pair_sides(
    trace: Trace, secondary: ColoProcess, primary: ColoProcess, masks: tuple[Any, Any]
) -> dict[str, Any]:
    """Sets ``primary.offset_ns`` and each checkpoint's ``peer``; returns the ``alignment``
    object of the document (method, reference, offset, pairs, notes). ``masks``: the rows of
    the secondary's and of the primary's process."""
    s_mask, p_mask = masks
    c_s, c_p = process_clock(trace, s_mask), process_clock(trace, p_mask)
    offset, used = message_offset(trace, s_mask, p_mask)
    notes: list[str] = []
    same = c_s == c_p and c_s not in ("none", "mixed")
    if "none" in (c_s, c_p) or (not same and offset is None):
        notes.append("checkpoints not paired: the two sides have no common time axis")
        return _doc(NO_AXIS, secondary.label, 0, 0, notes)
    if same and (offset is None or abs(offset) <= DISAGREE_NS):
        method, shift = SAME_CLOCK, 0
        notes.append(f"checkpoints paired on the {c_s} clock both sides use, as recorded")
    else:
        method, shift = MESSAGES, int(offset)  # type: ignore[arg-type]
        if same:
            notes.append(
                f"the two sides' {c_s} clocks disagree by {abs(shift) / 1e6:.3f} ms by the COLO messages"
            )
        notes.append(
            f"checkpoints paired after shifting the primary by {shift / 1e6:+.3f} ms onto the secondary's "
            f"clock (from {used} COLO messages, both directions)"
        )
    primary.offset_ns = shift
    paired = _pair(secondary.checkpoints, primary.checkpoints, shift)
    return _doc(method, secondary.label, shift, paired, notes)


def _window(c: dict[str, Any], offset: int) -> tuple[int, int] | None:
    a = c["request_ns"]
    if a is None:
        return None
    b = c["end_ns"] if c["end_ns"] is not None else a
    return a + offset, max(b, a) + offset


def _pair(secondary: list[dict[str, Any]], primary: list[dict[str, Any]], offset: int) -> int:
    """Sets ``peer`` on both sides' records; returns how many pairs."""
    windows = [(w, c) for c in primary if (w := _window(c, offset)) is not None]
    starts = np.array([w[0] for w, _ in windows], dtype=np.int64)
    ends = np.maximum.accumulate(np.array([w[1] for w, _ in windows], dtype=np.int64)) if windows else starts
    paired, used = 0, -1
    for c in secondary:
        w = _window(c, 0)
        if w is None:
            continue
        lo = max(int(np.searchsorted(ends, w[0] - SLACK_NS, side="left")), used + 1)
        hi = int(np.searchsorted(starts, w[1] + SLACK_NS, side="right"))
        best, best_overlap = None, -SLACK_NS - 1
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


def _doc(method: str, reference: str, offset: int, paired: int, notes: list[str]) -> dict[str, Any]:
    return {
        "method": method,
        "reference": reference,
        "primary_offset_ns": offset,
        "paired": paired,
        "notes": notes,
    }
