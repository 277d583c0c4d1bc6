"""The metric registry: metric names, where each one is read in the analyses' JSON, and how.

A metric name is the path of a value in the JSON one analysis prints (``migtrace summary``,
``bql``, ``phases``, ``preempt`` with ``--format json``). ``METRICS`` is the one table of them;
the README's metric table is generated from it (``metric_table_markdown``). Adding a metric is
adding a row: which analysis, which JSON table (a dotted path; ``a[].b`` flattens the lists
``b`` of every record of ``a``, keeping the parent's fields), which value of a record
(``value_key``), how the selected records are combined, and which selectors pick records.

In ``a[].b``, an object ``b`` (not a list) is one record per record of ``a``
(``processes[].summary``).

A path may contain one ``<name>`` placeholder (``phases.<name>.duration``,
``events.<name>.count``, ``event(<name>)``): in a table path it indexes a JSON object, otherwise
it must equal the record field ``key``.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

PLACEHOLDER = "<name>"


class Kind(StrEnum):
    """What a metric's values are, which decides the thresholds and operators it accepts."""

    DURATION = "duration"
    COUNT = "count"
    NUMBER = "number"
    TEXT = "text"
    FLAG = "flag"
    PRESENCE = "presence"


class Aggregate(StrEnum):
    """How the values of the selected records become one observed value."""

    VALUE = "value"  # the table is one value
    MAX = "max"
    MIN = "min"
    SUM = "sum"
    COUNT = "count"  # number of selected records
    ANY = "any"  # whether any record is selected (presence)


@dataclass(frozen=True)
class Selector:
    """A selector name, what it matches and how."""

    name: str
    help: str
    match: str  # "text": exact or glob; "device": idstr, its last '/' part, or glob; "int"; "load"


SELECTORS: dict[str, Selector] = {
    s.name: s
    for s in (
        Selector("thread", "thread name, exact or a glob (mig/dst/*)", "text"),
        Selector("role", "thread role: main, load, vcpu, listen, fault, preempt, recv_N, colo, ...", "text"),
        Selector("tid", "thread id", "int"),
        Selector(
            "load",
            "`true`: the thread that ran the incoming load, whichever it is (`mig/dst/main`, or the main "
            "thread on QEMU <= 10.0, whose coroutine runs the load: `carries_load` in the threads "
            "table); `false`: every other thread",
            "load",
        ),
        Selector("process", "process label: dst, src", "text"),
        Selector("side", "COLO side: primary or secondary (colo.* metrics)", "text"),
        Selector("phase", "incoming phase name (see phases.<name>.duration)", "text"),
        Selector(
            "device",
            "device idstr (0000:00:02.0/virtio-net), its last part (virtio-net), or a glob",
            "device",
        ),
    )
}

_THREAD_SELECT = {"thread": "name", "role": "role", "tid": "tid", "load": "tid"}
_HOLDS = ("qemu_mutex_locked", "qemu_mutex_unlock")
_WAITS = ("qemu_mutex_lock", "qemu_mutex_locked")
_DEVICES = ("qemu_loadvm_state_section_startfull",)
_PHASE_THREAD_SELECT = {"thread": "thread", "role": "role", "tid": "tid", "load": "tid"}


@dataclass(frozen=True)
class Metric:
    """One row of the registry (see the module docstring)."""

    path: str
    analysis: str
    kind: Kind
    table: str
    value_key: str | None = None
    aggregate: Aggregate = Aggregate.VALUE
    select: Mapping[str, str] = field(default_factory=dict)
    key: str | None = None
    default: Any = None
    names: str | None = None
    choices: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    help: str = ""

    @property
    def is_template(self) -> bool:
        """Whether the path has a ``<name>`` placeholder."""
        return PLACEHOLDER in self.path

    @property
    def takes_argument(self) -> bool:
        """Whether the name is written as an argument: ``event("name")``."""
        return self.path.endswith(f"({PLACEHOLDER})")

    def source(self) -> str:
        """Where the value comes from, for the metric table: ``bql.threads[].hold_max_us``."""
        table = self.table if self.aggregate is Aggregate.VALUE else f"{self.table}[]"
        return f"{table}.{self.value_key}" if self.value_key else table


M, A, K = Metric, Aggregate, Kind
_T, _P = _THREAD_SELECT, _PHASE_THREAD_SELECT

METRICS: tuple[Metric, ...] = (
    # ---------------------------------------------------------------- migtrace summary
    M(
        "unparsed_lines",
        "summary",
        K.COUNT,
        "totals.other_lines",
        help="input lines that are not trace events (QEMU messages, garbage)",
    ),
    M(
        "dropped_events",
        "summary",
        K.COUNT,
        "totals.dropped_events",
        help="events the tracer lost (simple backend records)",
    ),
    M(
        "parse_warnings",
        "summary",
        K.COUNT,
        "totals.warnings",
        help="lines the readers kept but did not fully understand",
    ),
    M(
        "events.count",
        "summary",
        K.COUNT,
        "threads",
        "events",
        A.SUM,
        {"thread": "name", "role": "role", "tid": "tid", "load": "tid", "process": "process"},
        help="trace events (of the selected threads)",
    ),
    M(
        "events.<name>.count",
        "summary",
        K.COUNT,
        "event_counts.<name>",
        default=0,
        names="events",
        help="occurrences of one trace event (0 when it never occurred)",
    ),
    M(
        "event(<name>)",
        "summary",
        K.PRESENCE,
        "event_counts.<name>",
        names="events",
        help='whether the event occurs: `event("name") exists` / `absent`',
    ),
    M(
        "thread(<name>)",
        "summary",
        K.PRESENCE,
        "threads",
        aggregate=A.ANY,
        key="name",
        select={"role": "role", "process": "process"},
        help='whether a thread of that name emitted events: `thread("mig/dst/main") exists`',
    ),
    M(
        "threads.count",
        "summary",
        K.COUNT,
        "threads",
        aggregate=A.COUNT,
        select={"thread": "name", "role": "role", "load": "tid", "process": "process"},
        help="threads that emitted events",
    ),
    # ---------------------------------------------------------------- migtrace bql
    M(
        "bql.hold.max",
        "bql",
        K.DURATION,
        "bql.threads",
        "hold_max_us",
        A.MAX,
        _T,
        needs=_HOLDS,
        help="longest BQL hold (of the worst selected thread)",
    ),
    M(
        "bql.hold.p50",
        "bql",
        K.DURATION,
        "bql.threads",
        "hold_p50_us",
        A.MAX,
        _T,
        needs=_HOLDS,
        help="median hold, per thread; the highest of the selected threads",
    ),
    M(
        "bql.hold.p90",
        "bql",
        K.DURATION,
        "bql.threads",
        "hold_p90_us",
        A.MAX,
        _T,
        needs=_HOLDS,
        help="90th percentile hold, per thread; the highest of the selected threads",
    ),
    M(
        "bql.hold.p99",
        "bql",
        K.DURATION,
        "bql.threads",
        "hold_p99_us",
        A.MAX,
        _T,
        needs=_HOLDS,
        help="99th percentile hold, per thread; the highest of the selected threads",
    ),
    M(
        "bql.hold.total",
        "bql",
        K.DURATION,
        "bql.threads",
        "hold_total_us",
        A.SUM,
        _T,
        needs=_HOLDS,
        help="time the selected threads held the BQL",
    ),
    M(
        "bql.hold.total",
        "bql",
        K.DURATION,
        "bql.by_phase[].threads",
        "hold_us",
        A.SUM,
        {"phase": "phase", **_P},
        needs=_HOLDS,
        help="with phase=: BQL hold time inside that phase (holds cut at the phase edges)",
    ),
    M(
        "bql.holds",
        "bql",
        K.COUNT,
        "bql.threads",
        "holds",
        A.SUM,
        _T,
        needs=_HOLDS,
        help="number of complete BQL holds",
    ),
    M(
        "bql.holds",
        "bql",
        K.COUNT,
        "bql.by_phase[].threads",
        "holds",
        A.SUM,
        {"phase": "phase", **_P},
        needs=_HOLDS,
        help="with phase=: holds overlapping that phase",
    ),
    M(
        "bql.held_fraction",
        "bql",
        K.NUMBER,
        "bql.by_phase",
        "held_fraction",
        A.MAX,
        {"phase": "phase"},
        needs=_HOLDS,
        help="share of a phase's wall time with the BQL held (0..1)",
    ),
    M(
        "bql.wait.max",
        "bql",
        K.DURATION,
        "bql.threads",
        "wait_max_us",
        A.MAX,
        _T,
        needs=_WAITS,
        help="longest wait for the BQL",
    ),
    M(
        "bql.wait.p50",
        "bql",
        K.DURATION,
        "bql.threads",
        "wait_p50_us",
        A.MAX,
        _T,
        needs=_WAITS,
        help="median wait, per thread; the highest selected",
    ),
    M(
        "bql.wait.p99",
        "bql",
        K.DURATION,
        "bql.threads",
        "wait_p99_us",
        A.MAX,
        _T,
        needs=_WAITS,
        help="99th percentile wait, per thread; the highest selected",
    ),
    M(
        "bql.wait.total",
        "bql",
        K.DURATION,
        "bql.threads",
        "wait_total_us",
        A.SUM,
        _T,
        needs=_WAITS,
        help="time the selected threads waited for the BQL",
    ),
    M(
        "bql.waits",
        "bql",
        K.COUNT,
        "bql.threads",
        "waits",
        A.SUM,
        _T,
        needs=_WAITS,
        help="number of waits for the BQL",
    ),
    M(
        "bql.inconsistencies",
        "bql",
        K.COUNT,
        "bql.inconsistency_count",
        needs=_HOLDS,
        help="mutex events that do not fit the lock protocol",
    ),
    M(
        "bql.at_end.held",
        "bql",
        K.FLAG,
        "bql.at_end.held_by_non_main",
        needs=_HOLDS,
        help="the BQL was held at the end of the trace by a thread other than the main thread "
        "(QEMU quits with the main thread holding it)",
    ),
    M(
        "bql.deadlocks",
        "bql",
        K.COUNT,
        "bql.at_end.deadlock",
        aggregate=A.COUNT,
        needs=_HOLDS,
        help="threads deadlocked at the end of the trace: waiting for a mutex they hold, or on a "
        "cycle through other mutexes (needs thread ids)",
    ),
    # ---------------------------------------------------------------- migtrace phases
    M(
        "phases.<name>.duration",
        "phases",
        K.DURATION,
        "phases",
        "duration_us",
        A.SUM,
        _P,
        key="name",
        names="phases",
        help="time in one incoming phase (summed if it repeats)",
    ),
    M(
        "phases.<name>.count",
        "phases",
        K.COUNT,
        "phases",
        aggregate=A.COUNT,
        select=_P,
        key="name",
        names="phases",
        help="how often the phase occurred (0: never)",
    ),
    M(
        "devices.count",
        "phases",
        K.COUNT,
        "devices",
        aggregate=A.COUNT,
        select={"device": "idstr", **_P},
        needs=_DEVICES,
        help="device state loads (sections)",
    ),
    M(
        "phases.device_load.count",
        "phases",
        K.COUNT,
        "devices",
        aggregate=A.COUNT,
        select={"device": "idstr", **_P},
        needs=_DEVICES,
        help="device state loads: the same as devices.count",
    ),
    M(
        "devices.duration",
        "phases",
        K.DURATION,
        "devices",
        "duration_us",
        A.MAX,
        {"device": "idstr", **_P},
        needs=_DEVICES,
        help="slowest load of the selected devices",
    ),
    M(
        "devices.duration.total",
        "phases",
        K.DURATION,
        "devices",
        "duration_us",
        A.SUM,
        {"device": "idstr", **_P},
        needs=_DEVICES,
        help="load time of the selected devices together",
    ),
    M(
        "devices.downtime",
        "phases",
        K.DURATION,
        "devices",
        "downtime_us",
        A.MAX,
        {"device": "idstr", **_P},
        needs=("vmstate_downtime_load",),
        help="largest per-device downtime QEMU reported (QEMU >= 8.2)",
    ),
    M(
        "load_thread.name",
        "phases",
        K.TEXT,
        "load_thread.name",
        help="the thread that ran the incoming load (mig/dst/main when threaded)",
    ),
    M(
        "load_thread.role",
        "phases",
        K.TEXT,
        "load_thread.role",
        help="role of the load thread: load (threaded) or main (coroutine)",
    ),
    M(
        "outcome",
        "phases",
        K.TEXT,
        "outcome",
        choices=("completed", "failed", "cancelled", "paused", "incomplete"),
        help="completed, failed, cancelled, paused (postcopy) or incomplete; from both sides",
    ),
    M(
        "downtime.dst",
        "phases",
        K.DURATION,
        "downtime.dst_us",
        help="switchover downtime seen on the destination",
    ),
    M(
        "downtime.src",
        "phases",
        K.DURATION,
        "downtime.src_us",
        help="switchover downtime seen on the source (needs the source trace)",
    ),
    M(
        "downtime.end_to_end",
        "downtime",
        K.DURATION,
        "end_to_end_us",
        needs=("runstate_set",),
        help="the guest's pause: source stops the VM -> destination runs it (needs both traces)",
    ),
    M(
        "downtime.reported",
        "downtime",
        K.DURATION,
        "reported_us",
        help="QEMU's own downtime (source side), from the trace's query-migrate replies or --query-migrate",
    ),
    M(
        "downtime.critical",
        "downtime",
        K.DURATION,
        "by_device",
        "critical_us",
        A.SUM,
        {"device": "device"},
        needs=("runstate_set",),
        help="time the selected devices' save and load spent on the pause's critical path",
    ),
    M(
        "total_time.dst",
        "phases",
        K.DURATION,
        "total_time.dst_us",
        help="incoming migration on the destination, first to last event",
    ),
    M("total_time.src", "phases", K.DURATION, "total_time.src_us", help="outgoing migration on the source"),
    M(
        "ram.iterations",
        "phases",
        K.COUNT,
        "ram.iterations",
        help="RAM sections loaded while the VM ran (PART; not QEMU's dirty-sync-count)",
    ),
    M("ram.pages", "phases", K.COUNT, "ram.pages", help="RAM pages loaded"),
    M("ram.postcopy_pages", "phases", K.COUNT, "ram.postcopy_pages", help="RAM pages loaded during postcopy"),
    M(
        "phases.issues",
        "phases",
        K.COUNT,
        "issue_counts",
        "value",
        A.SUM,
        help="timeline inconsistencies (unclosed spans, lines out of order)",
    ),
    # ---------------------------------------------------------------- migtrace preempt
    M(
        "preempt.enabled",
        "preempt",
        K.FLAG,
        "preempt.enabled",
        help="whether the postcopy preempt channel was in use",
    ),
    M(
        "preempt.thread_wait",
        "preempt",
        K.DURATION,
        "preempt.thread_wait_us",
        help="preempt thread start until its channel was ready",
    ),
    M(
        "preempt.packaged_wait",
        "preempt",
        K.DURATION,
        "preempt.packaged_wait_us",
        help="packaged command received until its load started",
    ),
    M(
        "preempt.page_requests.count",
        "preempt",
        K.COUNT,
        "preempt.page_requests.count",
        help="postcopy page requests (faults sent to the source)",
    ),
    M(
        "preempt.page_requests.p50",
        "preempt",
        K.DURATION,
        "preempt.page_requests.p50_us",
        help="median page-request latency",
    ),
    M(
        "preempt.page_requests.p99",
        "preempt",
        K.DURATION,
        "preempt.page_requests.p99_us",
        help="99th percentile page-request latency",
    ),
    M(
        "preempt.page_requests.max",
        "preempt",
        K.DURATION,
        "preempt.page_requests.max_us",
        help="slowest page request",
    ),
    M(
        "preempt.pages.main",
        "preempt",
        K.COUNT,
        "preempt.pages_by_channel.0",
        default=0,
        help="postcopy pages that arrived on the main channel",
    ),
    M(
        "preempt.pages.preempt",
        "preempt",
        K.COUNT,
        "preempt.pages_by_channel.1",
        default=0,
        help="postcopy pages that arrived on the preempt channel",
    ),
)
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


METRICS = (
    *METRICS,
    _colo_summary("colo.checkpoints", "checkpoints", K.COUNT, "COLO checkpoints requested"),
    _colo_summary(
        "colo.completed", "completed", K.COUNT, "checkpoints completed ('vmstate-loaded' exchanged)"
    ),
    _colo_summary(
        "colo.cut", "cut", K.COUNT, "checkpoints cut by failover, the next checkpoint or the trace's end"
    ),
    _colo_summary("colo.pause.max", "pause_max_us", K.DURATION, "longest COLO pause of the VM", _COLO_PAUSE),
    _colo_summary("colo.pause.p99", "pause_p99_us", K.DURATION, "99th percentile COLO pause", _COLO_PAUSE),
    _colo_summary("colo.pause.p90", "pause_p90_us", K.DURATION, "90th percentile COLO pause", _COLO_PAUSE),
    _colo_summary("colo.pause.p50", "pause_p50_us", K.DURATION, "median COLO pause", _COLO_PAUSE),
    _colo_summary(
        "colo.pause.total", "pause_total_us", K.DURATION, "COLO pauses of the VM together", _COLO_PAUSE
    ),
    _colo_summary(
        "colo.paused_fraction",
        "paused_fraction",
        K.NUMBER,
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
        "colo.bql.hold.max", "bql_hold_us", "most BQL time the COLO thread held in one checkpoint", _HOLDS
    ),
    _colo_checkpoint(
        "colo.bql.wait.max",
        "bql_wait_us",
        "most BQL wait time of the other threads in one checkpoint",
        _WAITS,
    ),
    M(
        "colo.failover",
        "colo",
        K.TEXT,
        "failover.state",
        choices=("none", "require", "active", "relaunch", "completed"),
        needs=_COLO + _COLO_FAILOVER,
        help="the secondary's last failover state (none: no failover in the trace)",
    ),
    M(
        "colo.failover.during",
        "colo",
        K.TEXT,
        "failover.during",
        needs=_COLO + _COLO_FAILOVER,
        help="what the secondary was doing when failover was asked for: idle, ram-load, flush, "
        "device-load, ...",
    ),
)
del M, A, K, _T, _P, _HOLDS, _WAITS, _DEVICES


# ---------------------------------------------------------------------------------- lookup
class MetricError(ValueError):
    """A rule names an unknown metric or selector, or one a metric does not take."""

    def __init__(self, message: str, column: int = 1) -> None:
        super().__init__(message)
        self.column = column


def metric_paths() -> list[str]:
    """Every metric name, in table order, without repeats."""
    return list(dict.fromkeys(m.path for m in METRICS))


def _template_matches(template: str, path: str) -> str | None:
    """The ``<name>`` part when ``path`` fits ``template`` segment by segment, else None."""
    t, p = template.split("."), path.split(".")
    if len(t) != len(p):
        return None
    name = None
    for a, b in zip(t, p, strict=True):
        if a == PLACEHOLDER:
            name = b
        elif a != b:
            return None
    return name


def find_metrics(path: str, argument: str | None) -> tuple[list[Metric], str | None]:
    """The registry rows for a written metric, and the ``<name>`` it fills in.

    Raises :class:`MetricError` naming close matches when there is none.
    """
    if argument is not None:
        rows = [m for m in METRICS if m.takes_argument and m.path == f"{path}({PLACEHOLDER})"]
        if rows:
            return rows, argument
        raise MetricError(f"unknown metric {path}(...){_suggest(path + '()', _call_names())}")
    rows = [m for m in METRICS if m.path == path]
    if rows:
        return rows, None
    for m in METRICS:
        if m.is_template and not m.takes_argument:
            name = _template_matches(m.path, path)
            if name is not None:
                return [r for r in METRICS if r.path == m.path], name
    if f"{path}({PLACEHOLDER})" in {m.path for m in METRICS}:
        raise MetricError(f'{path} needs a name: {path}("name") exists')
    raise MetricError(f"unknown metric {path}{_suggest(path, _instantiated(path))}")


def _call_names() -> list[str]:
    return [m.path.replace(PLACEHOLDER, "") for m in METRICS if m.takes_argument]


def _instantiated(path: str) -> list[str]:
    """All metric names, templates filled with the user's own segment where lengths fit."""
    out: list[str] = []
    parts = path.split(".")
    for p in metric_paths():
        if PLACEHOLDER in p and "(" not in p:
            t = p.split(".")
            if len(t) == len(parts):
                out.append(".".join(b if a == PLACEHOLDER else a for a, b in zip(t, parts, strict=True)))
                continue
        out.append(p)
    return out


def _suggest(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(dict.fromkeys(candidates)), n=3, cutoff=0.6)
    return f" (did you mean: {', '.join(close)}?)" if close else ""


def close_matches(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean: a, b?)`` or an empty string."""
    return _suggest(word, candidates)


def pick_metric(rows: list[Metric], selector_keys: list[str], column: int = 1) -> Metric:
    """The row of a metric that takes all the given selectors (the first such row)."""
    for key in selector_keys:
        if key not in SELECTORS:
            raise MetricError(
                f"unknown selector {key!r}{_suggest(key, SELECTORS)}; selectors: " + ", ".join(SELECTORS),
                column,
            )
    for m in rows:
        if set(selector_keys) <= set(m.select):
            return m
    takes = list(dict.fromkeys(k for m in rows for k in m.select))
    bad = [k for k in selector_keys if k not in takes]
    what = f"selector {bad[0]!r}" if bad else "this combination of selectors " + str(selector_keys)
    allowed = ", ".join(takes) if takes else "no selectors"
    raise MetricError(f"{rows[0].path} does not take {what} (it takes: {allowed})", column)


# ---------------------------------------------------------------------------------- measuring
@dataclass(frozen=True)
class Measurement:
    """The observed value of a metric, or why there is none.

    ``value`` is in the metric's JSON unit (µs for durations); ``records`` names what was
    combined; ``detail`` says what was measured, for failure messages.
    """

    value: Any
    detail: str
    records: tuple[str, ...] = ()
    reason: str | None = None

    @property
    def measurable(self) -> bool:
        """False when the trace cannot give this metric (see ``reason``)."""
        return self.reason is None


class _Missing(Exception):
    """A JSON path that leads nowhere."""


def _walk(doc: Any, path: str) -> Any:
    node = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise _Missing(part)
        node = node[part]
    return node


def _records(doc: Any, table: str) -> list[Mapping[str, Any]]:
    """The records of a table path; ``a[].b`` flattens each record's ``b`` list."""
    head, _, rest = table.partition("[].")
    rows = _walk(doc, head)
    if isinstance(rows, Mapping):  # {key: value} objects are read as records of both
        rows = [{"key": k, "value": v} for k, v in rows.items()]
    if not isinstance(rows, list):
        raise _Missing(head)
    if not rest:
        return [r for r in rows if isinstance(r, Mapping)]
    out: list[Mapping[str, Any]] = []
    for parent in rows:
        if not isinstance(parent, Mapping):
            continue
        base = {k: v for k, v in parent.items() if not isinstance(v, list | dict)}
        child_node = parent.get(rest) if "[]." not in rest else None
        if isinstance(child_node, Mapping) and rest in parent:
            out.append({**base, **child_node})  # an object: one record with the parent's fields
            continue
        for child in _records(parent, rest):
            out.append({**base, **child})
    return out


def selector_matches(kind: str, value: Any, wanted: str) -> bool:
    """Whether a record's field value matches a selector value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if kind == "int":
        try:
            return int(value) == int(wanted)
        except (TypeError, ValueError):
            return False
    text = str(value)
    if text == wanted:
        return True
    if kind == "device" and text.rsplit("/", 1)[-1] == wanted:
        return True
    return any(c in wanted for c in "*?[") and fnmatch.fnmatchcase(text, wanted)


def _label(rec: Mapping[str, Any]) -> str:
    for k in ("name", "thread", "idstr", "phase", "role"):
        v = rec.get(k)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            role = rec.get("role")
            return f"{v} ({role})" if k in ("name", "thread") and role else str(v)
    return "?"


def _number(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def measure(
    metric: Metric,
    name: str | None,
    selectors: Mapping[str, str],
    doc: Mapping[str, Any],
    analysis_label: str,
    load_tids: frozenset[int] = frozenset(),
) -> Measurement:
    """Reads one metric from an analysis's JSON document.

    ``load_tids``: the thread ids that ran the incoming load (``carries_load``), for ``load=``.
    """
    m = _measure(metric, name, selectors, doc, analysis_label, load_tids)
    if metric.kind is Kind.COUNT and isinstance(m.value, float) and m.value.is_integer():
        return Measurement(int(m.value), m.detail, m.records, m.reason)
    return m


def _measure(
    metric: Metric,
    name: str | None,
    selectors: Mapping[str, str],
    doc: Mapping[str, Any],
    analysis_label: str,
    load_tids: frozenset[int],
) -> Measurement:
    table = metric.table.replace(PLACEHOLDER, name) if name is not None else metric.table
    where = f"{analysis_label}: {table}"
    if metric.aggregate is Aggregate.VALUE:
        try:
            raw = _walk(doc, table)
        except _Missing:
            if metric.default is not None:
                return Measurement(metric.default, f"{where} (absent: {metric.default})")
            if metric.kind is Kind.PRESENCE:
                return Measurement(False, f"{where} (absent)")
            return Measurement(None, where, reason=f"{table} is not in the {analysis_label} output")
        if metric.kind is Kind.PRESENCE:
            return Measurement(bool(_number(raw)), f"{where} = {raw}")
        return _single(metric, raw, where, table, analysis_label)
    try:
        rows = _records(doc, table)
    except _Missing:
        return Measurement(None, where, reason=f"{table} is not in the {analysis_label} output")
    return _aggregate(metric, name, selectors, rows, f"{where}[]", table, load_tids)


def _single(metric: Metric, raw: Any, where: str, table: str, label: str) -> Measurement:
    if metric.kind in (Kind.DURATION, Kind.COUNT, Kind.NUMBER):
        num = _number(raw)
        if num is None:
            return Measurement(None, where, reason=f"no value for {table}")
        return Measurement(num, where)
    if metric.kind is Kind.FLAG:
        if not isinstance(raw, bool):
            return Measurement(None, where, reason=f"no value for {table}")
        return Measurement(raw, where)
    if raw is None:
        return Measurement(None, where, reason=f"no value for {table}")
    return Measurement(str(raw), where)


def _aggregate(
    metric: Metric,
    name: str | None,
    selectors: Mapping[str, str],
    rows: list[Mapping[str, Any]],
    where: str,
    table: str,
    load_tids: frozenset[int] = frozenset(),
) -> Measurement:
    filters: list[tuple[str, str, str, str]] = []  # (selector, field, kind, wanted)
    if metric.key and name is not None:
        filters.append((metric.key, metric.key, "text", name))
    for sel, wanted in selectors.items():
        filters.append((sel, metric.select[sel], SELECTORS[sel].match, wanted))
    chosen = rows
    for sel, fld, kind, wanted in filters:
        fits = _matcher(kind, wanted, load_tids)
        # Counting nothing is an answer (0); a max or sum over nothing is most often a typo.
        if metric.aggregate in (Aggregate.COUNT, Aggregate.ANY):
            chosen = [r for r in chosen if fits(r.get(fld))]
            continue
        known = [r.get(fld) for r in rows]
        if not any(fits(v) for v in known):
            if kind == "load":
                return Measurement(None, where, reason=_no_load_match(wanted, load_tids, table))
            return Measurement(None, where, reason=_no_match(sel, wanted, known, table))
        chosen = [r for r in chosen if fits(r.get(fld))]
    labels = tuple(_label(r) for r in chosen)
    sel_text = ", ".join(f"{k}={v}" for k, v in selectors.items())
    over = f" over {len(chosen)} record{'s' if len(chosen) != 1 else ''}" + (
        f" with {sel_text}" if sel_text else ""
    )
    agg = metric.aggregate
    if agg is Aggregate.COUNT:
        return Measurement(len(chosen), f"count of {where}{over}", labels)
    if agg is Aggregate.ANY:
        return Measurement(bool(chosen), f"{where}{over}", labels)
    assert metric.value_key is not None
    detail = f"{agg} of {where}.{metric.value_key}{over}"
    if not chosen:
        if agg is Aggregate.SUM:
            return Measurement(0, detail, labels)
        return Measurement(None, detail, labels, reason=f"no record has all of {sel_text}")
    values = [r.get(metric.value_key) for r in chosen]
    nums = [n for n in (_number(v) for v in values) if n is not None]
    if not nums:
        return Measurement(None, detail, labels, reason=f"no {metric.value_key} values (all empty)")
    folds: dict[Aggregate, Callable[[list[float]], float]] = {
        Aggregate.MAX: max,
        Aggregate.MIN: min,
        Aggregate.SUM: sum,
    }
    return Measurement(folds[agg](nums), detail, labels)


def _matcher(kind: str, wanted: str, load_tids: frozenset[int]) -> Callable[[Any], bool]:
    """Whether a record's field fits one selector; ``load`` compares a tid with the load's."""
    if kind != "load":
        return lambda value: selector_matches(kind, value, wanted)
    want = wanted == "true"

    def is_load(value: Any) -> bool:
        tid = _number(value)
        return tid is not None and (int(tid) in load_tids) == want

    return is_load


def _no_load_match(wanted: str, load_tids: frozenset[int], table: str) -> str:
    if not load_tids:
        return (
            "the trace does not show which thread ran the incoming load (it needs thread ids and "
            "the load's events: migtrace events --for phases)"
        )
    tids = ", ".join(str(t) for t in sorted(load_tids))
    if wanted == "true":
        return f"{table} has no record of the load thread (tid {tids})"
    return f"{table} has no record of a thread other than the load thread (tid {tids})"


def _no_match(selector: str, wanted: str, known: list[Any], table: str) -> str:
    present = sorted(
        {str(v) for v in known if v is not None and not (isinstance(v, float) and math.isnan(v))}
    )
    if not present:
        return f"{table} has no {selector} values in this trace" + (
            " (no thread ids/names: capture with -d tid, or select by role)"
            if selector in ("thread", "tid")
            else ""
        )
    shown = ", ".join(present[:12]) + (", ..." if len(present) > 12 else "")
    return f"no {selector} matches {wanted!r} in {table} (have: {shown})"


# ---------------------------------------------------------------------------------- docs
def metric_table_markdown() -> str:
    """The metric table of the README, generated from ``METRICS``."""
    lines = [
        "| metric | kind | selectors | analysis: JSON | combined as | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for m in METRICS:
        sel = ", ".join(m.select) or "–"
        agg = {"value": "value"}.get(m.aggregate, m.aggregate.value)
        lines.append(f"| `{m.path}` | {m.kind} | {sel} | {m.analysis}: `{m.source()}` | {agg} | {m.help} |")
    return "\n".join(lines)


def selector_table_markdown() -> str:
    """The selector table of the README, generated from ``SELECTORS``."""
    lines = ["| selector | picks |", "|---|---|"]
    lines += [f"| `{s.name}` | {s.help} |" for s in SELECTORS.values()]
    return "\n".join(lines)
