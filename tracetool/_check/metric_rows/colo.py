"""Metric rows read from ``migtrace colo``: checkpoints, pauses and their parts, failover."""

from __future__ import annotations

from tracetool._check.metric_rows.common import HOLDS, WAITS
from tracetool._check.metric_types import Aggregate, Kind, Metric

_COLO_SIDE = {"process": "label", "side": "role"}
_COLO = ("colo_send_message", "colo_receive_message")
_COLO_PAUSE = ("colo_vm_state_change",)
_COLO_RAM = ("ram_load_complete",)
_COLO_FLUSH = ("colo_flush_ram_cache_begin", "colo_flush_ram_cache_end")
_COLO_FAILOVER = ("colo_failover_set_state",)


def _colo_summary(path: str, key: str, kind: Kind, help: str, needs: tuple[str, ...] = ()) -> Metric:
    """A figure of a COLO side's summary; with both sides in the trace, the larger one unless
    ``side=`` or ``process=`` picks one."""
    return Metric(
        path,
        "colo",
        kind,
        "processes[].summary",
        key,
        Aggregate.MAX,
        _COLO_SIDE,
        needs=_COLO + needs,
        help=help,
    )


def _colo_checkpoint(path: str, key: str, help: str, needs: tuple[str, ...]) -> Metric:
    """The largest of one figure over the checkpoints (of both sides unless selected)."""
    return Metric(
        path,
        "colo",
        Kind.DURATION,
        "processes[].checkpoints",
        key,
        Aggregate.MAX,
        _COLO_SIDE,
        needs=_COLO + needs,
        help=help,
    )


ROWS: tuple[Metric, ...] = (
    _colo_summary("colo.checkpoints", "checkpoints", Kind.COUNT, "COLO checkpoints requested"),
    _colo_summary(
        "colo.completed", "completed", Kind.COUNT, "checkpoints completed ('vmstate-loaded' exchanged)"
    ),
    _colo_summary(
        "colo.cut", "cut", Kind.COUNT, "checkpoints cut by failover, the next checkpoint or the trace's end"
    ),
    _colo_summary(
        "colo.pause.max", "pause_max_us", Kind.DURATION, "longest COLO pause of the VM", _COLO_PAUSE
    ),
    _colo_summary("colo.pause.p99", "pause_p99_us", Kind.DURATION, "99th percentile COLO pause", _COLO_PAUSE),
    _colo_summary("colo.pause.p90", "pause_p90_us", Kind.DURATION, "90th percentile COLO pause", _COLO_PAUSE),
    _colo_summary("colo.pause.p50", "pause_p50_us", Kind.DURATION, "median COLO pause", _COLO_PAUSE),
    _colo_summary(
        "colo.pause.total", "pause_total_us", Kind.DURATION, "COLO pauses of the VM together", _COLO_PAUSE
    ),
    _colo_summary(
        "colo.paused_fraction",
        "paused_fraction",
        Kind.NUMBER,
        "share of COLO's wall time the VM was stopped by checkpoints (0..1)",
        _COLO_PAUSE,
    ),
    _colo_checkpoint("colo.ram_load.max", "ram_load_us", "secondary: slowest checkpoint RAM load", _COLO_RAM),
    _colo_checkpoint("colo.flush.max", "flush_us", "secondary: slowest RAM-cache flush", _COLO_FLUSH),
    _colo_checkpoint(
        "colo.device_load.max",
        "device_load_us",
        "secondary: slowest device-state load (flush end -> VM running)",
        _COLO_FLUSH + _COLO_PAUSE,
    ),
    _colo_checkpoint(
        "colo.bql.hold.max", "bql_hold_us", "most BQL time the COLO thread held in one checkpoint", HOLDS
    ),
    _colo_checkpoint(
        "colo.bql.wait.max",
        "bql_wait_us",
        "most BQL wait time of the other threads in one checkpoint",
        WAITS,
    ),
    Metric(
        "colo.failover",
        "colo",
        Kind.TEXT,
        "failover.state",
        choices=("none", "require", "active", "relaunch", "completed"),
        needs=_COLO + _COLO_FAILOVER,
        help="the secondary's last failover state (none: no failover in the trace)",
    ),
    Metric(
        "colo.failover.during",
        "colo",
        Kind.TEXT,
        "failover.during",
        needs=_COLO + _COLO_FAILOVER,
        help="what the secondary was doing when failover was asked for: idle, ram-load, flush, "
        "device-load, ...",
    ),
)
