"""What a row of the metric table is: the kinds of values, how records combine, the selectors.

A metric name is the path of a value in the JSON one analysis prints (``migtrace summary``,
``bql``, ``phases``, ``preempt`` with ``--format json``). A row says which analysis, which JSON
table (a dotted path; ``a[].b`` flattens the lists ``b`` of every record of ``a``, keeping the
parent's fields), which value of a record (``value_key``), how the selected records are
combined, and which selectors pick records.

In ``a[].b``, an object ``b`` (not a list) is one record per record of ``a``
(``processes[].summary``).

A path may contain one ``<name>`` placeholder (``phases.<name>.duration``,
``events.<name>.count``, ``event(<name>)``): in a table path it indexes a JSON object, otherwise
it must equal the record field ``key``.
"""

from __future__ import annotations

from collections.abc import Mapping
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
