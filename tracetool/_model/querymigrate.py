"""QEMU's own view of a migration: the ``query-migrate`` result, read from a JSON file.

Accepted shapes: ``{"src": {...}, "dst": {...}}`` or ``{"source": ..., "destination": ...}``
(one result per side), a QMP reply ``{"return": {...}}``, or a plain query-migrate return
object (taken as the source's when it carries ``total-time``/``downtime``, which only the
source reports, else as the destination's).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracetool.errors import UsageError

_SIDES = {"src": "src", "source": "src", "dst": "dst", "destination": "dst"}


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
    def downtime_ms(self) -> float | None:
        """QEMU's downtime in ms (source side; absent before completion)."""
        return _number((self.src or {}).get("downtime"))

    @property
    def total_time_ms(self) -> float | None:
        """QEMU's total-time in ms (source side)."""
        return _number((self.src or {}).get("total-time"))

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
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


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
        return QueryMigrate(src=sides.get("src"), dst=sides.get("dst"), path=path)
    if "status" not in data:
        raise UsageError(f"{where}: no 'status' and no src/dst objects: not a query-migrate result")
    if "total-time" in data or "downtime" in data:
        return QueryMigrate(src=data, dst=None, path=path)
    return QueryMigrate(src=None, dst=data, path=path)


def load_query_migrate(path: str) -> QueryMigrate:
    """Reads a query-migrate JSON file; problems become a one-line UsageError."""
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read query-migrate file: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    return parse_query_migrate(data, path)
