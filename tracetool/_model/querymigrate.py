"""QEMU's own view of a migration: the ``query-migrate`` result, read from a JSON file.

Accepted shapes: ``{"src": {...}, "dst": {...}}`` or ``{"source": ..., "destination": ...}``
(one result per side), a QMP reply ``{"return": {...}}``, or a plain query-migrate return
object (taken as the source's when it carries ``total-time``/``downtime``, which only the
source reports, else as the destination's).
"""

from __future__ import annotations

import math
import signal
from dataclasses import dataclass
from typing import Any

from tracetool._model.jsonfile import json_int, json_number, json_text, read_json_file, shorten
from tracetool.errors import UsageError

_SIDES = {"src": "src", "source": "src", "dst": "dst", "destination": "dst"}


def unset_note(downtime_unset: bool) -> str:
    """The note for a completed query-migrate answer with total-time 0 (see
    :attr:`QueryMigrate.totals_unset`)."""
    what = "downtime and total time" if downtime_unset else "total time"
    return (
        f"QEMU's own {what}: not known (its query-migrate answer says completed with total-time "
        "0: read before QEMU worked it out, or a COLO run, which never does)"
    )


@dataclass(frozen=True)
class QueryMigrate:
    """The query-migrate return objects of the source and the destination (None if absent)."""

    src: dict[str, Any] | None
    dst: dict[str, Any] | None
    path: str = ""

    def status(self, side: str) -> str | None:
        """The ``status`` one side reported."""
        obj = self.src if side == "src" else self.dst
        value = (obj or {}).get("status")
        return str(value) if value is not None else None

    @property
    def totals_unset(self) -> bool:
        """Whether the source's answer says ``completed`` with a ``total-time`` of 0: QEMU's
        zero, not a measure. QEMU sets the completed status before it works out the total time
        (and the downtime, unless postcopy set it when it started), so an answer read in between
        has 0 there; a COLO run ends completed without ever working them out."""
        src = self.src or {}
        return src.get("status") == "completed" and _number(src.get("total-time")) == 0

    @property
    def downtime_ms(self) -> float | None:
        """QEMU's downtime in ms (source side; absent before completion, and None when it is 0
        in an answer whose :attr:`totals_unset`)."""
        value = _number((self.src or {}).get("downtime"))
        return None if value == 0 and self.totals_unset else value

    @property
    def total_time_ms(self) -> float | None:
        """QEMU's total-time in ms (source side; None when :attr:`totals_unset`)."""
        return None if self.totals_unset else _number((self.src or {}).get("total-time"))

    def unset_note(self) -> str | None:
        """What :attr:`totals_unset` means for the figures shown, or None when it is not."""
        if not self.totals_unset:
            return None
        return unset_note(downtime_unset=self.downtime_ms is None)

    def exit_note(self, side: str) -> str | None:
        """How ``side``'s QEMU ended when it exited before answering: ``migtrace capture``
        records its exit code in place of the answer (negative: the signal that killed it)."""
        obj = (self.src if side == "src" else self.dst) or {}
        code = obj.get("exit-code")
        if isinstance(code, bool) or not isinstance(code, int) or code == 0:
            return None
        who = "source" if side == "src" else "destination"
        if code > 0:
            return f"the {who} QEMU exited with code {code} before it answered query-migrate"
        try:
            name = f"signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            name = f"signal {-code}"
        return f"the {who} QEMU was killed by {name} before it answered query-migrate"

    def exit_notes(self) -> list[str]:
        """:meth:`exit_note` of each side that has one, source first."""
        return [n for n in (self.exit_note("src"), self.exit_note("dst")) if n]

    @property
    def setup_time_ms(self) -> float | None:
        """QEMU's setup-time in ms (source side)."""
        return _number((self.src or {}).get("setup-time"))

    @property
    def page_size(self) -> int | None:
        """Target page size in bytes, from the RAM statistics."""
        value = _number(((self.src or {}).get("ram") or {}).get("page-size"))
        return int(value) if value else None


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    try:
        number = float(v)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


# The fields migtrace reads, and the values it accepts (ms; bytes).
_MS_FIELDS = ("downtime", "total-time", "setup-time", "expected-downtime")
_MAX_MS = 1e12  # 31 years
_MAX_PAGE = 1 << 30


def _check_side(obj: dict[str, Any], where: str) -> dict[str, Any]:
    """Refuses a return object whose fields that migtrace reads have the wrong type or range;
    returns it with its status fit to print."""
    if obj.get("status") is not None:
        obj = {**obj, "status": json_text(obj["status"], f"{where}: status")}
    for key in _MS_FIELDS:
        json_number(obj.get(key), f"{where}: {key}", 0.0, _MAX_MS)
    ram = obj.get("ram")
    if ram is not None and not isinstance(ram, dict):
        raise UsageError(f"{where}: ram is {shorten(ram)}, not an object")
    json_int((ram or {}).get("page-size"), f"{where}: ram.page-size", 1, _MAX_PAGE)
    return obj


def parse_query_migrate(data: Any, path: str = "") -> QueryMigrate:
    """Interprets an already-parsed JSON value (see module docstring for the shapes)."""
    where = path or "query-migrate JSON"
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a JSON object, got {type(data).__name__}")
    if "return" in data and isinstance(data["return"], dict):
        data = data["return"]
    sides = {_SIDES[k]: v for k, v in data.items() if k in _SIDES}
    if sides:
        for side, obj in sides.items():
            if obj is not None and not isinstance(obj, dict):
                raise UsageError(f"{where}: '{side}' is not a query-migrate object")
            if obj is not None:
                sides[side] = _check_side(obj, f"{where}: {side}")
        return QueryMigrate(src=sides.get("src"), dst=sides.get("dst"), path=path)
    if "status" not in data:
        raise UsageError(f"{where}: no 'status' and no src/dst objects: not a query-migrate result")
    data = _check_side(data, where)
    if "total-time" in data or "downtime" in data:
        return QueryMigrate(src=data, dst=None, path=path)
    return QueryMigrate(src=None, dst=data, path=path)


def load_query_migrate(path: str) -> QueryMigrate:
    """Reads a query-migrate JSON file; problems become a one-line UsageError."""
    return parse_query_migrate(read_json_file(path, "query-migrate file"), path)
