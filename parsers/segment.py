"""The one columnar shape every reader returns: a Segment per input file.

A reader knows one backend's bytes and nothing about migration. It returns numpy columns (one
row per event, in file order) plus interned string tables, so the model can sort, concatenate
and categorise without a Python object per event.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

NO_TIME = np.iinfo(np.int64).min
"""Timestamp of an event whose line carried none (the log backend without -msg timestamp=on)."""

ARGS_TEXT = "text"
"""Arguments as QEMU's printf formats them (log, ftrace markers, SystemTap log lines)."""
ARGS_LTTNG = "lttng"
"""Arguments as babeltrace prints LTTng fields: ``{ name = value, ... }``."""
ARGS_SIMPLE_LE = "simple-le"
ARGS_SIMPLE_BE = "simple-be"
"""Raw little/big-endian argument bytes of a simple-backend record."""

EVENT_TRUNCATED = 1
"""Event flag: the backend cut the event's text (ftrace's 511-byte marker limit)."""
EVENT_BAD_UTF8 = 2
"""Event flag: invalid UTF-8 in the line was replaced by U+FFFD."""


def any_timed(ts: np.ndarray) -> bool:
    """Whether any of ``ts`` holds a time: one reduction, no mask as long as the column
    (NO_TIME is the smallest int64)."""
    return bool(len(ts)) and int(ts.max()) != NO_TIME


def value_counts(codes: np.ndarray, k: int) -> np.ndarray:
    """How often each of the values 0..k-1 occurs in an integer column (values outside are not
    counted), block by block: ``np.bincount`` would first copy the whole column to int64."""
    out = np.zeros(k, dtype=np.int64)
    for start in range(0, len(codes), 1 << 16):
        block = codes[start : start + (1 << 16)]
        out += np.bincount(block[(block >= 0) & (block < k)], minlength=k)
    return out


@dataclass(frozen=True)
class ParseWarning:
    """Something in an input that was kept but not understood, with where it was."""

    path: str
    line: int  # 1-based line number, or byte offset for binary formats (see ``unit``)
    message: str
    unit: str = "line"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.unit == "line" else f"{self.path}@{self.line}"
        return f"{where}: {self.message}"


@dataclass
class StringTable:
    """Interned strings: ``codes`` columns index into ``values``.

    ``unique`` is the reader's guarantee that no value occurs twice, so the table can serve as
    categories without being checked or factorized again.
    """

    values: pa.Array  # string (or binary for raw argument bytes)
    unique: bool = False

    @classmethod
    def from_list(cls, items: list[str]) -> StringTable:
        return cls(pa.array(items, type=pa.string()))

    def __len__(self) -> int:
        return len(self.values)

    def to_list(self) -> list[str]:
        return list(self.values.to_pylist())


@dataclass
class Segment:
    """Everything one input contributed, rows in file order.

    Columns are numpy arrays of equal length (one row per event). Missing values: ``ts`` is
    ``NO_TIME``, ``tid``/``pid``/``thread_code`` are -1.
    """

    path: str
    format: str  # "log", "stap", "simple", "simpletrace-stap", "ftrace", "trace-cmd", "lttng"
    variant: str  # what exactly was recognised, e.g. "tid@sec.usec", "iso8601", "tracefs+tgid"
    clock: str  # "wall" (ns since the Unix epoch), "monotonic", "ftrace-local", "time-of-day", "none"
    lines: int  # physical lines (text) or records (binary) read
    ts: np.ndarray  # int64 ns
    tid: np.ndarray  # int32
    pid: np.ndarray  # int32
    name_code: np.ndarray  # int32 into names
    names: StringTable
    args_code: np.ndarray  # int32 into args
    args: StringTable
    args_encoding: str  # ARGS_TEXT, ARGS_LTTNG, ARGS_SIMPLE_LE, ARGS_SIMPLE_BE
    thread_code: np.ndarray  # int32 into thread_names, -1 when the line named no thread
    thread_names: StringTable
    line: np.ndarray  # int64: 1-based line number, or byte offset of the record
    flags: np.ndarray  # uint8: EVENT_* bits
    other_line: np.ndarray  # int64 line numbers of lines that are not events
    other_text: list[str]  # their text (cut to 1 KiB)
    warnings: list[ParseWarning] = field(default_factory=list)
    dropped_events: list[tuple[int, int]] = field(default_factory=list)  # (position, count)
    details: dict[str, int] = field(default_factory=dict)  # per-variant line counts etc.
    # Lines (or records) that are neither events nor "other" lines, counted per kind ("header",
    # "lost-events notice", ...): lines == events + other_lines + sum(set_aside.values()).
    set_aside: dict[str, int] = field(default_factory=dict)
    process_hint: str | None = None  # groups per-thread files of one process
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # backend-specific columns (cpu...)
    line_unit: str = "line"  # "line" or "offset"

    @property
    def events(self) -> int:
        return len(self.ts)

    @property
    def other_lines(self) -> int:
        return len(self.other_line)

    def check(self) -> None:
        """Asserts the columns are consistent (used by tests and by readers in debug runs)."""
        n = len(self.ts)
        for name in ("tid", "pid", "name_code", "args_code", "thread_code", "line", "flags"):
            col = getattr(self, name)
            if len(col) != n:
                raise AssertionError(f"{self.path}: column {name} has {len(col)} rows, ts has {n}")
        if len(self.other_line) != len(self.other_text):
            raise AssertionError(f"{self.path}: other_line and other_text differ in length")
        counted = self.events + self.other_lines + sum(self.set_aside.values())
        if counted != self.lines:
            raise AssertionError(
                f"{self.path}: {self.lines} lines but {counted} counted "
                f"(events, other lines and set aside {self.set_aside})"
            )
