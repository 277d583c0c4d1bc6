"""The critical path of the pause: which side's work the guest was waiting for, moment by moment.

Both sides work at once: while the source saves one device the destination may load the
previous one. The path is walked backwards from the destination starting the VM. On the
destination each step waits for two things: its own previous step, and (for a load or a
command) the source's work that produced its data (``Work.needs`` -> the source's ``provides``
time). When the data came later than the destination was ready, the guest was waiting for the
source: the path crosses to the source at that time, and stays there (the source never waits
for the destination in the pause). A destination "wait for data" gap crosses too: to the
producer of the data that ended it when known (a send the trace does not show counts as done
when the source's part ended: a wait that began later is the destination's own time); a wait
before a step that names no data goes to whatever the source was doing then.
Between the source's work and the destination's, a ``wire`` step covers data that was sent but
not yet read.

The steps it returns are contiguous and tile [start, end] exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracetool._analyses.downtime.steps import Key, Step

WIRE_STEP = "transfer"
UNTRACED_STEP = "untraced"


@dataclass(frozen=True)
class PathStep:
    """A stretch of the critical path: a part (or all) of one side's step, or the wire."""

    side: str
    step: str
    start_ns: int
    end_ns: int
    device: str | None = None
    instance_id: int | None = None
    kind: str | None = None
    section_id: int | None = None
    sent_before_stop: bool = False

    @property
    def us(self) -> float:
        """Duration in µs."""
        return (self.end_ns - self.start_ns) / 1000.0


def _part(s: Step, start: int, end: int) -> PathStep:
    return PathStep(
        s.side, s.step, start, end, s.device, s.instance_id, s.kind, s.section_id, s.sent_before_stop
    )


def _containing(steps: list[Step], t: int) -> int:
    """Index of the step with start < t <= end (the last one starting before t), or -1."""
    for i in range(len(steps) - 1, -1, -1):
        if steps[i].start_ns < t:
            return i
    return -1


def critical_path(
    src: list[Step], dst: list[Step], provides: dict[Key, int], start: int, end: int
) -> list[PathStep]:
    """The critical path from ``start`` (source stops the VM) to ``end`` (destination runs it),
    from each side's tiled steps (see the module docstring)."""
    src_end = src[-1].end_ns if src else start
    path: list[PathStep] = []
    t = end
    i = _containing(dst, t)
    on_source = False
    j = -1

    def jump(at: int) -> None:
        nonlocal on_source, j, t
        at = max(start, min(at, t))
        if at > src_end:
            path.append(PathStep("wire", WIRE_STEP, src_end, at))
            at = src_end
        t = at
        on_source = True
        j = _containing(src, t)

    while t > start:
        if on_source:
            if j < 0:
                path.append(PathStep("src", "untraced", start, t))
                break
            s = src[j]
            begin = max(start, s.start_ns)
            path.append(_part(s, begin, t))
            t = begin
            j -= 1
            continue
        if i < 0:
            jump(t)
            continue
        s = dst[i]
        begin = max(start, s.start_ns)
        if s.gap:
            nxt = dst[i + 1] if i + 1 < len(dst) else None
            needs = nxt.needs if nxt is not None else None
            if needs is None:
                jump(t)  # waiting for nothing named: for the source
                continue
            # A send the trace does not show was done when the source's part ended, at the latest.
            p = provides.get(needs, src_end)
            if p <= begin:
                # The data was ready before the destination began waiting: its own time.
                path.append(PathStep("dst", UNTRACED_STEP, begin, t))
                t = begin
                i -= 1
            else:
                if p < t:
                    path.append(PathStep("wire", WIRE_STEP, p, t))
                jump(p)
            continue
        ready = provides.get(s.needs) if s.needs is not None else None
        if ready is None or ready <= begin:
            path.append(_part(s, begin, t))
            t = begin
            i -= 1
        else:
            if ready < t:
                path.append(_part(s, ready, t))
            jump(ready)
    path.reverse()
    return [p for p in path if p.end_ns > p.start_ns]
