"""Rendering ``migtrace check`` results: one verdict per rule, the observed value next to the
threshold, and a closing count line."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from tracetool._check.evaluate import CheckReport, RuleResult, Status

_STYLE = {Status.PASS: "green", Status.FAIL: "bold red", Status.SKIP: "yellow"}


def result_lines(r: RuleResult) -> list[str]:
    """The lines shown for one rule (first the verdict and name, then indented details)."""
    lines = [f"{r.status.value.upper():4}  {r.rule.name}"]
    ref = r.rule.expression.reference()
    if r.observed is None:
        lines.append(f"      {ref}: not measurable: {r.reason}")
    else:
        lines.append(f"      {ref} = {r.observed_text}   (expected {r.rule.expected})")
    if r.failed:
        lines.append(f"      measured: {r.measured}")
        if r.rule.line is not None:
            lines.append(f"      rule at {r.rule.location}")
    return lines


def closing_line(report: CheckReport) -> str:
    """``3 passed, 1 failed, 0 skipped`` (the count line CI log readers look for)."""
    c = report.counts()
    return f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"


def render_check_text(report: CheckReport, out: Console) -> None:
    """Prints every rule's verdict and the closing count line."""
    for r in report.results:
        first, *rest = result_lines(r)
        verdict = Text(first[:4], style=_STYLE[r.status])
        verdict.append(first[4:])
        out.print(verdict)
        for line in rest:
            out.print(line)
    out.print(closing_line(report))
