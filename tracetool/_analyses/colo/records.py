"""A checkpoint as the JSON record ``migtrace colo`` prints, and the summary of a side.

Durations are differences of step times (µs; null when either time is missing). The
components of a pause add up to it when every step was traced:

* secondary: ``wait`` (VM stopped -> 'vmstate-send' received), ``ram_load`` (-> ram_load_complete),
  ``receive`` (-> RAM-cache flush begins: 'vmstate-size' and the device state arrive),
  ``flush`` (the flush), ``device_load`` (flush end -> VM running again);
* primary: ``save`` (VM stopped -> 'vmstate-size' sent), ``ack`` (-> 'vmstate-received'),
  ``load_wait`` (-> 'vmstate-loaded'), ``resume`` (-> VM running again).

Percentiles are numpy's linear interpolation over the checkpoints whose pause is known.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tracetool._analyses.colo.walk import Checkpoint

TIMES = {
    "secondary": (
        "request_ns",
        "stop_ns",
        "ram_start_ns",
        "ram_end_ns",
        "flush_begin_ns",
        "flush_end_ns",
        "resume_ns",
        "loaded_ns",
    ),
    "primary": ("request_ns", "reply_ns", "stop_ns", "sent_ns", "received_ns", "loaded_ns", "resume_ns"),
}
COMPONENTS = {
    "secondary": (
        ("wait_us", "stop_ns", "ram_start_ns"),
        ("ram_load_us", "ram_start_ns", "ram_end_ns"),
        ("receive_us", "ram_end_ns", "flush_begin_ns"),
        ("flush_us", "flush_begin_ns", "flush_end_ns"),
        ("device_load_us", "flush_end_ns", "resume_ns"),
    ),
    "primary": (
        ("save_us", "stop_ns", "sent_ns"),
        ("ack_us", "sent_ns", "received_ns"),
        ("load_wait_us", "received_ns", "loaded_ns"),
        ("resume_us", "loaded_ns", "resume_ns"),
    ),
}
"""Per side: (key, from, to) of each component of the pause, in order."""
COMPONENT_NAMES = {
    "wait_us": "wait for state",
    "ram_load_us": "RAM load",
    "receive_us": "device state receive",
    "flush_us": "RAM-cache flush",
    "device_load_us": "device load",
    "save_us": "save and send",
    "ack_us": "wait for 'vmstate-received'",
    "load_wait_us": "wait for 'vmstate-loaded'",
    "resume_us": "resume",
}
"""Each part of a pause in words (figure legends, Perfetto slices)."""
COUNTS = {"secondary": ("flush_pages", "dirty_pages"), "primary": ("dirty_pages", "dirty_pages")}
"""Per side: the JSON key of the counted pages and the argument it adds up."""


def _us(a: int | None, b: int | None) -> float | None:
    return None if a is None or b is None else (b - a) / 1000.0


def end_ns(c: Checkpoint) -> int | None:
    """Where the checkpoint ends: 'vmstate-loaded' when it completed, else where it was cut."""
    return c.times.get("loaded_ns") if c.completed else c.cut_ns


def checkpoint_record(c: Checkpoint, role: str, bql: tuple[float | None, float | None]) -> dict[str, Any]:
    """The JSON record of one checkpoint (keys documented in the README)."""
    rec: dict[str, Any] = {"index": c.index}
    for key in TIMES[role]:
        rec[key] = c.times.get(key)
    rec["end_ns"] = end_ns(c)
    rec["pause_us"] = _us(c.times.get("stop_ns"), c.times.get("resume_ns"))
    rec["duration_us"] = _us(c.times.get("request_ns"), c.times.get("loaded_ns"))
    for key, a, b in COMPONENTS[role]:
        rec[key] = _us(c.times.get(a), c.times.get(b))
    key, arg = COUNTS[role]
    rec[key] = c.counts.get(arg)
    rec["bql_hold_us"], rec["bql_wait_us"] = bql
    rec["completed"] = c.completed
    rec["cut_in"] = None if c.completed else c.cut_in
    rec["cut_by"] = None if c.completed else c.cut_by
    rec["peer"] = None
    return rec


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None, "total": None}
    a = np.asarray(values, dtype=float)
    return {
        "p50": float(np.percentile(a, 50)),
        "p90": float(np.percentile(a, 90)),
        "p99": float(np.percentile(a, 99)),
        "max": float(a.max()),
        "total": float(a.sum()),
    }


def _mean(values: list[Any]) -> float | None:
    nums = [float(v) for v in values if v is not None]
    return float(np.mean(nums)) if nums else None


def _max(values: list[Any]) -> float | None:
    nums = [float(v) for v in values if v is not None]
    return max(nums) if nums else None


def paused_time(records: list[dict[str, Any]], start: int | None, end: int | None) -> float | None:
    """µs the VM was stopped by COLO inside [start, end]; a pause that never ended lasts to
    ``end``."""
    if start is None or end is None or end <= start:
        return None
    total = 0
    for r in records:
        stop = r["stop_ns"]
        if stop is None:
            continue
        resume = r["resume_ns"] if r["resume_ns"] is not None else end
        total += max(0, min(resume, end) - max(stop, start))
    return total / 1000.0


def summarize(records: list[dict[str, Any]], role: str, start: int | None, end: int | None) -> dict[str, Any]:
    """The ``summary`` object of one side."""
    pauses = [r["pause_us"] for r in records if r["pause_us"] is not None]
    s = _stats(pauses)
    window = None if start is None or end is None else (end - start) / 1000.0
    paused = paused_time(records, start, end)
    out: dict[str, Any] = {
        "checkpoints": len(records),
        "completed": sum(1 for r in records if r["completed"]),
        "cut": sum(1 for r in records if not r["completed"]),
        "pauses": len(pauses),
        "pause_p50_us": s["p50"],
        "pause_p90_us": s["p90"],
        "pause_p99_us": s["p99"],
        "pause_max_us": s["max"],
        "pause_total_us": s["total"],
        "colo_us": window,
        "paused_us": paused,
        "paused_fraction": None if paused is None or not window else paused / window,
        "duration_mean_us": _mean([r["duration_us"] for r in records]),
        "duration_max_us": _max([r["duration_us"] for r in records]),
    }
    for key, _, _ in COMPONENTS[role]:
        stem = key.removesuffix("_us")
        out[f"{stem}_mean_us"] = _mean([r[key] for r in records])
        out[f"{stem}_max_us"] = _max([r[key] for r in records])
    pages = COUNTS[role][0]
    got = [r[pages] for r in records if r[pages] is not None]
    out[f"{pages}_total"] = int(sum(got)) if got else None
    out[f"{pages}_max"] = int(max(got)) if got else None
    out["bql_hold_mean_us"] = _mean([r["bql_hold_us"] for r in records])
    out["bql_hold_max_us"] = _max([r["bql_hold_us"] for r in records])
    out["bql_wait_mean_us"] = _mean([r["bql_wait_us"] for r in records])
    out["bql_wait_max_us"] = _max([r["bql_wait_us"] for r in records])
    return out
