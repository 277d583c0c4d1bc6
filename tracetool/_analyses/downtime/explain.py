"""The difference between QEMU's downtime and the guest's real pause, in words."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

STEPS_NAMED = 3
"""How many of the destination's longest steps after the source finished are named."""


def duration(us: float) -> str:
    """Microseconds, readable: 850 µs, 12.30 ms, 4.560 s."""
    if abs(us) < 1000:
        return f"{us:.0f} µs"
    if abs(us) < 1_000_000:
        return f"{us / 1000:.2f} ms"
    return f"{us / 1_000_000:.3f} s"


def step_label(step: dict[str, Any]) -> str:
    """``load ram``, ``stop VM``, ``transfer (wire)``."""
    where = "wire" if step["side"] == "wire" else step["side"]
    name = step["step"] + (f" {step['device']}" if step.get("device") else "")
    if step.get("instance_id"):
        name += f"/{step['instance_id']}"
    return f"{name} ({where})"


def explain(
    end_to_end_us: float | None,
    reported_us: float | None,
    source_part_us: float | None,
    path: list[dict[str, Any]],
) -> list[str]:
    """Sentences that explain the pause: QEMU's figure against the end-to-end one, where the
    critical path spent its time, and what the guest still waited for after the source was
    done."""
    out: list[str] = []
    if reported_us is not None:
        own = f" ({duration(source_part_us)} in this trace)" if source_part_us is not None else ""
        out.append(
            f"QEMU reported {duration(reported_us)} of downtime: the source's own measure, from "
            f"stopping the VM until the source had sent the last of the state{own}."
        )
    if end_to_end_us is None:
        return out
    sentence = f"The guest was paused {duration(end_to_end_us)} end to end, until the destination ran it"
    if reported_us is not None:
        diff = end_to_end_us - reported_us
        more = "more" if diff >= 0 else "less"
        sentence += f": {duration(abs(diff))} {more} than QEMU's figure"
    out.append(sentence + ".")
    per_side: dict[str, float] = defaultdict(float)
    for s in path:
        per_side[s["side"]] += s["us"]
    parts = [
        f"{label} {duration(per_side[side])}"
        for side, label in (("src", "source"), ("wire", "data in transit"), ("dst", "destination"))
        if per_side.get(side)
    ]
    if parts:
        out.append("On the critical path: " + ", ".join(parts) + ".")
    backlog = sum(s["us"] for s in path if s.get("sent_before_stop"))
    if backlog:
        out.append(
            f"Of that, the destination spent {duration(backlog)} loading RAM the source had sent "
            "before it stopped the VM (the stream's backlog)."
        )
    if source_part_us is not None and path:
        src_done = path[0]["start_ns"] + int(source_part_us * 1000)
        after = [s for s in path if s["side"] == "dst" and s["end_ns"] > src_done]
        waited = (path[-1]["end_ns"] - src_done) / 1000.0
        if after and waited > 0:
            longest = sorted(after, key=lambda s: -s["us"])[:STEPS_NAMED]
            named = ", ".join(f"{step_label(s)} {duration(s['us'])}" for s in longest)
            out.append(
                f"After the source was done the guest waited {duration(waited)} more for the "
                f"destination; its longest steps then: {named}."
            )
    return out
