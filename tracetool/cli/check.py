"""``migtrace check``: rules on the analyses' results, for CI (exit 0 pass, 1 fail, 2 error)."""

from __future__ import annotations

from typing import Annotated

import typer

from tracetool.cli.common import EXIT_FAIL, Inputs, OutputFormat, check_output, command, emit_json, wrote
from tracetool.errors import UsageError

RulesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--rules", metavar="FILE", help="Rules file (TOML, [[rule]] tables). Repeatable.", show_default=False
    ),
]
RuleOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--rule",
        metavar="EXPR",
        help="One rule expression, e.g. 'bql.hold.max{thread=\"mig/dst/main\"} < 5ms'. "
        "Repeatable; works without --rules.",
        show_default=False,
    ),
]
JunitOpt = Annotated[
    str | None,
    typer.Option(
        "--junit",
        metavar="OUT.xml",
        help="Also write the results as JUnit XML to this file (one testcase per rule).",
        show_default=False,
    ),
]


@command(query_migrate=True, strict=False)
def check(
    inputs: Inputs,
    *,
    rules: RulesOpt = None,
    rule: RuleOpt = None,
    junit: JunitOpt = None,
    format: OutputFormat,
) -> None:
    """Check a trace against rules: PASS/FAIL/SKIP per rule with the observed value.

    Exit code 0 when every rule passes (optional rules that cannot be measured are skipped),
    1 when any rule fails, 2 for a bad option, rules file or input.
    """
    from tracetool._check.evaluate import evaluate
    from tracetool._check.rulefile import load_rules
    from tracetool._check.rules import rules_from_expressions

    bound = [r for path in rules or () for r in load_rules(path)]
    if rule:
        bound.extend(rules_from_expressions(rule))
    if not bound:
        raise UsageError("no rules: give --rules FILE or --rule EXPR")
    try:
        check_output(junit)
    except UsageError as exc:
        raise UsageError(f"--junit {exc}") from None
    query = inputs.query()
    report = evaluate(inputs.load(), bound, query_migrate=query)
    if format is OutputFormat.json:
        emit_json(report.to_json())
    else:
        from reports.check import render_check_text
        from reports.console import console

        render_check_text(report, console())
    if junit:
        from reports.junit import write_junit

        write_junit(report, junit)
        wrote(junit)
    if not report.ok:
        # SystemExit, not typer.Exit: the latter's code is returned, not raised, when the app
        # runs with standalone_mode=False.
        raise SystemExit(EXIT_FAIL)
