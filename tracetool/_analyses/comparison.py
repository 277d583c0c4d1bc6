"""What a comparison of two runs is: figures on both sides (:class:`Delta`), the threads
matched across them (:class:`ThreadPair`), each side's load thread (:class:`Side`), and the
whole :class:`Comparison` with its ``--format json`` document. Built by
:func:`tracetool._analyses.compare.compare`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Delta:
    """One figure on both sides; ``unit`` is "us" for durations, "count", or "fraction" (0..1)."""

    name: str
    before: float | None
    after: float | None
    unit: str = "us"

    @property
    def change(self) -> float | None:
        """after - before (None when a side is unknown)."""
        if self.before is None or self.after is None:
            return None
        return self.after - self.before

    @property
    def relative(self) -> float | None:
        """(after - before) / before (None when unknown or before is 0)."""
        c = self.change
        return None if c is None or not self.before else c / self.before

    def to_json(self) -> dict[str, Any]:
        """``name``, ``unit``, ``before``, ``after``, ``delta``, ``relative``."""
        return {
            "name": self.name,
            "unit": self.unit,
            "before": self.before,
            "after": self.after,
            "delta": self.change,
            "relative": self.relative,
        }


@dataclass(frozen=True)
class ThreadRef:
    """A thread of one side: tid, name, role, and whether it carries the incoming load."""

    tid: int | None
    name: str | None
    role: str
    carries_load: bool

    def label(self) -> str:
        """``name (tid)``, the role when the thread is unnamed."""
        base = self.name or self.role
        return f"{base} ({self.tid})" if self.tid is not None else base

    def to_json(self) -> dict[str, Any]:
        """tid, name, role, carries_load."""
        return {"tid": self.tid, "name": self.name, "role": self.role, "carries_load": self.carries_load}


@dataclass
class ThreadPair:
    """The BQL figures of one thread on each side (None where that side has no match)."""

    before: ThreadRef | None
    after: ThreadRef | None
    metrics: list[Delta]
    matched_by: str  # "role+name", "role", "load", or "unmatched"

    @property
    def role(self) -> str:
        """The role the pair was matched on."""
        ref = self.before or self.after
        return ref.role if ref is not None else "?"

    def metric(self, name: str) -> Delta:
        """One of ``compare.BQL_METRICS``."""
        return next(m for m in self.metrics if m.name == name)

    def to_json(self) -> dict[str, Any]:
        """before/after thread, how they were matched, and each metric with its delta."""
        return {
            "before": self.before.to_json() if self.before else None,
            "after": self.after.to_json() if self.after else None,
            "matched_by": self.matched_by,
            "metrics": {m.name: m.to_json() for m in self.metrics},
        }


@dataclass
class PhaseDelta:
    """A destination phase on both sides, with the thread that ran it on each."""

    delta: Delta
    before_thread: str | None
    after_thread: str | None

    def to_json(self) -> dict[str, Any]:
        """The delta plus ``before_thread``/``after_thread``."""
        return {
            **self.delta.to_json(),
            "before_thread": self.before_thread,
            "after_thread": self.after_thread,
        }


@dataclass
class Side:
    """What one side of the comparison is: its label, inputs and load thread."""

    label: str
    inputs: list[str]
    load_thread: dict[str, Any] | None

    @property
    def load_label(self) -> str:
        """The load thread in words: ``main (coroutine)`` for the pre-threadify load."""
        return load_thread_label(self.load_thread)

    def to_json(self) -> dict[str, Any]:
        """label, inputs, load_thread (with its label)."""
        return {
            "label": self.label,
            "inputs": list(self.inputs),
            "load_thread": None
            if self.load_thread is None
            else {**self.load_thread, "label": self.load_label},
        }


@dataclass
class Comparison:
    """Result of :func:`compare`; ``to_json`` is the ``migtrace compare --format json`` document."""

    before: Side
    after: Side
    phases: list[PhaseDelta]
    devices: list[Delta]
    bql_process: str | None
    bql_threads: list[ThreadPair]
    bql_load: ThreadPair | None
    preempt: list[Delta]
    downtime: list[Delta]
    critical_path: list[Delta] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    colo: list[Delta] = field(default_factory=list)

    @property
    def load_move(self) -> str:
        """``before → after`` load thread, e.g. ``main (coroutine) → mig/dst/main``."""
        b, a = self.before.load_label, self.after.load_label
        return f"{b} → {a}" if b != a else f"{b} (unchanged)"

    def to_json(self) -> dict[str, Any]:
        """Stable keys: before, after, load_thread, phases, devices, bql, preempt, downtime,
        critical_path (time per step of the pause's critical path on each side), colo, notes."""
        return {
            "before": self.before.to_json(),
            "after": self.after.to_json(),
            "load_thread": {
                "before": self.before.load_label,
                "after": self.after.load_label,
                "moved": self.before.load_label != self.after.load_label,
                "text": self.load_move,
            },
            "phases": [p.to_json() for p in self.phases],
            "devices": [d.to_json() for d in self.devices],
            "bql": {
                "process": self.bql_process,
                "load": self.bql_load.to_json() if self.bql_load else None,
                "threads": [t.to_json() for t in self.bql_threads],
            },
            "preempt": [d.to_json() for d in self.preempt],
            "downtime": [d.to_json() for d in self.downtime],
            "critical_path": [d.to_json() for d in self.critical_path],
            "colo": [d.to_json() for d in self.colo],
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------------------------- labels
def load_thread_label(lt: dict[str, Any] | None) -> str:
    """How a load thread is named in a comparison.

    The pre-threadify load runs in a coroutine on the main thread: ``main (coroutine)``.
    Otherwise the thread's name (``mig/dst/main``), else its role and tid.
    """
    if not lt or (lt.get("name") is None and lt.get("role") is None):
        return "unknown"
    if lt.get("role") == "main":
        return "main (coroutine)"
    name = lt.get("name")
    if name and not str(name).startswith("<"):
        return str(name)
    tid = lt.get("tid")
    return f"{lt.get('role') or 'load'} thread" + (f" ({tid})" if tid is not None else "")
