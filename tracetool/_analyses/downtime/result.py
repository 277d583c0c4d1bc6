"""The result of the downtime analysis: :class:`DowntimeReport` and its JSON document."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tracetool._json import plain


@dataclass
class DowntimeReport:
    """The guest's pause end to end, what it was spent on, and QEMU's own figure.

    Times (``start.ns``, ``end.ns``, steps' ``start_ns``/``end_ns``) are on the destination's
    clock: the source's are shifted by ``alignment.offset_ns``. See :meth:`to_json`.
    """

    end_to_end_us: float | None
    reported_us: float | None
    reported_from: str | None
    start: dict[str, Any] | None
    end: dict[str, Any] | None
    source_end: dict[str, Any] | None
    alignment: dict[str, Any]
    critical_path: list[dict[str, Any]]
    by_device: list[dict[str, Any]]
    built_from: str | None
    explanation: list[str] = field(default_factory=list)
    switchover: dict[str, Any] = field(default_factory=dict)
    total_time: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    steps: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """True when neither the trace nor QEMU gave any figure of the pause or the migration."""
        known = [self.start, self.end, self.reported_us, *self.switchover.values()]
        known += [self.total_time.get(k) for k in ("src_us", "dst_us", "qemu_reported_ms")]
        return all(v is None or isinstance(v, str) for v in known)

    @property
    def issue_count(self) -> int:
        """Inconsistencies of the input are counted by the phase analysis (the timeline)."""
        return 0

    def to_json(self) -> dict[str, Any]:
        """The ``migtrace downtime --format json`` document (keys documented in the README)."""
        return plain(
            {
                "end_to_end_us": self.end_to_end_us,
                "reported_us": self.reported_us,
                "reported_from": self.reported_from,
                "start": self.start,
                "end": self.end,
                "source_end": self.source_end,
                "alignment": self.alignment,
                "built_from": self.built_from,
                "critical_path": self.critical_path,
                "by_device": self.by_device,
                "steps": {side: list(v) for side, v in self.steps.items()},
                "explanation": list(self.explanation),
                "switchover": dict(self.switchover),
                "total_time": dict(self.total_time),
                "notes": list(self.notes),
            }
        )
