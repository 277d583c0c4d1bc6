"""Finding the rows of the metric table a rule names, with close matches when there is none."""

from __future__ import annotations

from tracetool._check.metric_types import PLACEHOLDER, SELECTORS, Metric
from tracetool._check.metrics import METRICS, metric_paths
from tracetool._check.suggest import close_matches


class MetricError(ValueError):
    """A rule names an unknown metric or selector, or one a metric does not take."""

    def __init__(self, message: str, column: int = 1) -> None:
        super().__init__(message)
        self.column = column


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
        raise MetricError(f"unknown metric {path}(...){close_matches(path + '()', _call_names())}")
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
    raise MetricError(f"unknown metric {path}{close_matches(path, _instantiated(path))}")


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


def pick_metric(rows: list[Metric], selector_keys: list[str], column: int = 1) -> Metric:
    """The row of a metric that takes all the given selectors (the first such row)."""
    for key in selector_keys:
        if key not in SELECTORS:
            raise MetricError(
                f"unknown selector {key!r}{close_matches(key, SELECTORS)}; selectors: "
                + ", ".join(SELECTORS),
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
