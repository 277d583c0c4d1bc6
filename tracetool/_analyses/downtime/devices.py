"""Per-device save and load times of the pause, and the BQL time of the thread doing them.

With QEMU >= 8.2 the times are QEMU's own measures (the ``downtime`` argument of
``vmstate_downtime_save``/``_load``, µs); before, the section spans of the timeline
(``savevm_section_start`` -> ``_end`` on the source, the FULL/END section on the destination),
paired by section id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tracetool._analyses.bql.report import BqlReport
from tracetool._analyses.downtime.critical import PathStep
from tracetool._analyses.downtime.steps import SideEvents, device_events, records_of
from tracetool._model.trace import Trace

_FAR = np.iinfo(np.int64).max // 4


@dataclass
class ThreadHolds:
    """The BQL holds of one thread (the destination's load thread, the source's migration
    thread), on the common time axis."""

    start_ns: np.ndarray
    end_ns: np.ndarray

    def overlap_us(self, start: int, end: int) -> float:
        """How long the thread held the BQL inside [start, end], in µs."""
        lo = np.maximum(self.start_ns, start)
        hi = np.minimum(self.end_ns, end)
        return float(np.clip(hi - lo, 0, None).sum()) / 1000.0


def thread_holds(
    trace: Trace, label: str, side: str, offset_ns: int, bql: BqlReport | None
) -> ThreadHolds | None:
    """The BQL holds of the side's working thread, or None when there is no BQL analysis of
    that process (no mutex events). Destination: the load thread (by thread id, else the
    ``load`` role); source: the ``save`` role (the migration thread)."""
    if bql is None:
        return None
    proc = bql.processes.get(label)
    if proc is None or proc.mutex is None:
        return None
    h = proc.holds
    pick = np.zeros(len(h), bool)
    load_tid = trace.processes.set_index("label")["load_tid"].get(label) if side == "dst" else None
    if load_tid is not None and not pd.isna(load_tid):
        pick = (h["tid"] == int(load_tid)).fillna(False).to_numpy(dtype=bool)
    else:
        pick = (h["role"] == ("load" if side == "dst" else "save")).fillna(False).to_numpy(dtype=bool)
    h = h[pick]
    start = pd.to_numeric(h["start_ns"], errors="coerce").fillna(-_FAR).to_numpy(np.int64)
    end = pd.to_numeric(h["end_ns"], errors="coerce").fillna(_FAR).to_numpy(np.int64)
    return ThreadHolds(start + offset_ns, end + offset_ns)


@dataclass
class _Row:
    device: str | None
    instance_id: int | None
    kind: str | None
    save_us: float | None = None
    load_us: float | None = None
    save_end_ns: int | None = None
    load_end_ns: int | None = None
    section_id: int | None = None  # rows made from the section events


def _same_device(p: PathStep, r: _Row) -> bool:
    """Whether the critical path's step ``p`` saved or loaded the device of row ``r``: the same
    section when the row comes from the section events (a device may own several sections, and
    a step from the sections knows its own), else the same device, instance and type."""
    if r.section_id is not None:
        return p.section_id == r.section_id
    return (
        p.device == r.device
        and p.instance_id == r.instance_id
        and (p.kind == r.kind or p.kind is None or r.kind is None)
    )


def by_device(
    src: SideEvents | None, dst: SideEvents | None, start: int | None, end: int | None, path: list[PathStep]
) -> list[dict[str, Any]]:
    """One row per device saved or loaded in the pause: ``device``, ``instance_id``, ``type``
    (iterable/non-iterable), ``save_us`` (source), ``load_us`` (destination), ``critical``
    (whether its save or load is on the critical path) and ``critical_us`` (its time there)."""
    lo = start if start is not None else -_FAR
    hi = end if end is not None else _FAR
    rows: dict[tuple[Any, ...], _Row] = {}
    have_events = any(
        s is not None and len(s.rows(e))
        for s, e in ((src, "vmstate_downtime_save"), (dst, "vmstate_downtime_load"))
    )
    if have_events:
        for side, event in ((src, "vmstate_downtime_save"), (dst, "vmstate_downtime_load")):
            if side is None:
                continue
            f = device_events(side, event, lo, hi)
            for kind, idstr, inst, down, t in f.itertuples(index=False):
                inst_v = None if pd.isna(inst) else int(inst)
                row = rows.setdefault((str(kind), str(idstr), inst_v), _Row(str(idstr), inst_v, str(kind)))
                _add(row, side.label == (src.label if src else None), float(down), int(t))
    else:
        for side, names in ((src, None), (dst, ("END", "FULL"))):
            if side is None:
                continue
            sec = side.spans("section", names)
            sec = sec[(sec["end_ns"] >= lo) & (sec["start_ns"] <= hi)]
            if side is src:
                sec = sec[sec["start_ns"] >= lo]
            for s in records_of(sec):
                sid = None if pd.isna(s["section_id"]) else int(s["section_id"])
                name, inst = side.section_device(sid)
                if not pd.isna(s["idstr"]):
                    name = str(s["idstr"])
                own = s.get("instance_id")  # no such column where no section had one
                if own is not None and not pd.isna(own):
                    inst = int(own)
                kind = None if side is src else ("iterable" if s["name"] == "END" else "non-iterable")
                row = rows.setdefault(("section", sid), _Row(name, inst, kind, section_id=sid))
                row.device = row.device or name
                row.instance_id = row.instance_id if row.instance_id is not None else inst
                row.kind = row.kind or kind
                _add(row, side is src, (int(s["end_ns"]) - int(s["start_ns"])) / 1000.0, int(s["end_ns"]))
    out = []
    for r in rows.values():
        on_path = [p for p in path if p.step in ("save", "load") and _same_device(p, r)]
        out.append(
            {
                "device": r.device,
                "instance_id": r.instance_id,
                "type": r.kind,
                "section_id": r.section_id,
                "save_us": r.save_us,
                "load_us": r.load_us,
                "save_end_ns": r.save_end_ns,
                "load_end_ns": r.load_end_ns,
                "critical": bool(on_path),
                "critical_us": sum(p.us for p in on_path) if on_path else 0.0,
            }
        )
    return out


def _add(row: _Row, is_save: bool, us: float, t: int) -> None:
    if is_save:
        row.save_us = (row.save_us or 0.0) + us
        row.save_end_ns = t
    else:
        row.load_us = (row.load_us or 0.0) + us
        row.load_end_ns = t
