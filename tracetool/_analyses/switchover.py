"""The switchover downtime and total migration time as the two ends measured them, next to the
figures QEMU reported: the report's ``downtime`` section, taken from the incoming phases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracetool._analyses.phases import PhaseReport


@dataclass
class SwitchoverSummary:
    """``switchover``, ``total_time`` and ``alignment`` as :func:`analyze_phases` measured them."""

    switchover: dict[str, Any]
    total_time: dict[str, Any]
    alignment: dict[str, Any]

    @property
    def empty(self) -> bool:
        """True when neither the trace nor QEMU gave a downtime or a total time."""
        down, total = self.switchover, self.total_time
        known = [down.get(k) for k in ("src_us", "dst_us", "end_to_end_us", "qemu_reported_ms")]
        known += [total.get(k) for k in ("src_us", "dst_us", "qemu_reported_ms")]
        return all(v is None for v in known)

    @property
    def issue_count(self) -> int:
        """Inconsistencies are counted by the phase analysis."""
        return 0

    def to_json(self) -> dict[str, Any]:
        """``{"switchover": ..., "total_time": ..., "alignment": ...}``."""
        return {
            "switchover": dict(self.switchover),
            "total_time": dict(self.total_time),
            "alignment": dict(self.alignment),
        }


def switchover_summary(phases: PhaseReport) -> SwitchoverSummary:
    """The downtime figures of a phase report."""
    return SwitchoverSummary(dict(phases.downtime), dict(phases.total_time), dict(phases.alignment))
