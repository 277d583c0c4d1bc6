"""Measuring a metric: reading one row of the metric table from an analysis's JSON document,
with the records its selectors pick, combined as the row says."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tracetool._check.metric_types import PLACEHOLDER, SELECTORS, Aggregate, Kind, Metric


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
