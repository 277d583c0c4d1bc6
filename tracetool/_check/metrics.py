"""The metric table: every metric name, where each one is read in the analyses' JSON, and how.

``METRICS`` is the one table of them, assembled from the rows of each analysis
(``metric_rows/``); the README's metric table is generated from it (``metric_table_markdown``).
Adding a metric is adding a row to its analysis's module (what a row says:
``tracetool._check.metric_types``).
"""

from __future__ import annotations

from tracetool._check.metric_rows import bql, colo, downtime, phases, preempt, summary
from tracetool._check.metric_types import SELECTORS, Metric

METRICS: tuple[Metric, ...] = (
    *summary.ROWS,
    *bql.ROWS,
    *phases.ROWS,
    *downtime.ROWS,
    *phases.TOTALS,
    *preempt.ROWS,
    *colo.ROWS,
)


def metric_paths() -> list[str]:
    """Every metric name, in table order, without repeats."""
    return list(dict.fromkeys(m.path for m in METRICS))


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
