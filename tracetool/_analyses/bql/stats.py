"""BQL figures: per-thread hold and wait statistics, and hold time inside each phase."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from tracetool._analyses.bql.frames import empty_frame
from tracetool._analyses.bql.holders import Holders
from tracetool._analyses.bql.intervals import Holds, Waits

THREAD_COLUMNS = [
    "tid",
    "name",
    "role",
    "holds",
    "hold_total_us",
    "hold_max_us",
    "hold_p50_us",
    "hold_p90_us",
    "hold_p99_us",
    "open_holds",
    "waits",
    "wait_total_us",
    "wait_max_us",
    "wait_p50_us",
    "wait_p90_us",
    "wait_p99_us",
]
PHASE_COLUMNS = ["phase", "start_ns", "end_ns", "duration_us", "holds", "hold_us", "held_fraction", "threads"]


def _percentiles(d: np.ndarray) -> list[float]:
    """p50, p90, p99: linear interpolation between closest ranks (numpy's default)."""
    if not len(d):
        return [float("nan")] * 3
    return [float(x) for x in np.percentile(d, [50, 90, 99])]


def _stats(d: np.ndarray, prefix: str) -> dict[str, Any]:
    p50, p90, p99 = _percentiles(d)
    return {
        f"{prefix}s": len(d),
        f"{prefix}_total_us": float(d.sum()) if len(d) else 0.0,
        f"{prefix}_max_us": float(d.max()) if len(d) else float("nan"),
        f"{prefix}_p50_us": p50,
        f"{prefix}_p90_us": p90,
        f"{prefix}_p99_us": p99,
    }


def _split(keys: np.ndarray, values: np.ndarray) -> dict[int, np.ndarray]:
    """Values split by key: one numpy slice per key."""
    if not len(keys):
        return {}
    small = keys.astype(np.int16) if keys.min() >= 0 and keys.max() < 2**15 else keys
    order = np.argsort(small, kind="stable")  # radix sort for small keys
    k, v = keys[order], values[order]
    first = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    bounds = np.r_[first, len(k)]
    return {int(k[f]): v[bounds[i] : bounds[i + 1]] for i, f in enumerate(first.tolist())}


def thread_stats(holds: Holds, waits: Waits, holders: Holders) -> pd.DataFrame:
    """Per holder: count, total, max, p50/p90/p99 of complete holds and of waits."""
    hd, wd, hold_key, wait_key = holds.duration_us, waits.duration_us, holds.key, waits.key
    done = holds.complete
    timed = done & ~np.isnan(hd)
    hold_d = _split(hold_key[timed], hd[timed])
    wait_d = _split(wait_key[~np.isnan(wd)], wd[~np.isnan(wd)])
    n_done = np.bincount(hold_key[done & (hold_key >= 0)], minlength=len(holders.roles))
    n_open = np.bincount(hold_key[~done & (hold_key >= 0)], minlength=len(holders.roles))
    n_wait = np.bincount(wait_key[wait_key >= 0], minlength=len(holders.roles))
    records = []
    for key in np.flatnonzero(n_done + n_open + n_wait).tolist():  # one step per thread
        tid, name, role = holders.describe(key)
        rec: dict[str, Any] = {"tid": tid, "name": name, "role": role}
        rec.update(_stats(hold_d.get(key, np.zeros(0)), "hold"))
        rec.update(_stats(wait_d.get(key, np.zeros(0)), "wait"))
        # Counts include holds/waits without timestamps, which have no duration.
        rec.update(holds=int(n_done[key]), open_holds=int(n_open[key]), waits=int(n_wait[key]))
        for kind in ("hold", "wait"):  # counted but never timed: the total is unknown, not 0
            if rec[f"{kind}s"] and not len((hold_d if kind == "hold" else wait_d).get(key, ())):
                rec[f"{kind}_total_us"] = float("nan")
        records.append(rec)
    out = pd.DataFrame(records, columns=THREAD_COLUMNS)
    out = out.sort_values(["hold_total_us", "holds"], ascending=False, kind="stable").reset_index(drop=True)
    out["tid"] = pd.array(out["tid"].tolist(), dtype="Int64")
    return out


def hold_time_by_phase(phases: pd.DataFrame, holds: Holds, holders: Holders) -> pd.DataFrame:
    """Hold time inside each phase (holds cut at the phase's edges), in all and per holder."""
    if phases.empty:
        return empty_frame(PHASE_COLUMNS)
    done = holds.complete & (holds.start_ns != NO_TIME) & (holds.end_ns != NO_TIME) & (holds.key >= 0)
    hs, he, key = holds.start_ns[done], holds.end_ns[done], holds.key[done]
    records = []
    for name, ps, pe in zip(
        phases["name"].astype(str).tolist(),
        phases["start_ns"].to_numpy(dtype=np.int64).tolist(),
        phases["end_ns"].to_numpy(dtype=np.int64).tolist(),
        strict=True,
    ):
        # phases are few: one step each
        inside = (he > ps) & (hs < pe)
        overlap = np.minimum(he[inside], pe) - np.maximum(hs[inside], ps)
        per_ns = np.bincount(key[inside], weights=overlap, minlength=len(holders.roles))
        count = np.bincount(key[inside], minlength=len(holders.roles))
        threads = [
            _phase_holder(holders, k, int(count[k]), float(per_ns[k]) / 1000.0)
            for k in np.flatnonzero(count).tolist()
        ]
        threads.sort(key=lambda x: -float(x["hold_us"] or 0))
        duration = (pe - ps) / 1000.0
        total = float(overlap.sum()) / 1000.0
        records.append(
            {
                "phase": name,
                "start_ns": ps,
                "end_ns": pe,
                "duration_us": duration,
                "holds": int(inside.sum()),
                "hold_us": total,
                "held_fraction": total / duration if duration > 0 else float("nan"),
                "threads": threads,
            }
        )
    return pd.DataFrame(records, columns=PHASE_COLUMNS)


def _phase_holder(
    holders: Holders, key: int, holds: int, hold_us: float
) -> dict[str, int | float | str | None]:
    tid, name, role = holders.describe(key)
    return {"tid": tid, "thread": name, "role": role, "holds": holds, "hold_us": hold_us}
