"""CI trace assertions: rules on the analyses' JSON, checked against a trace.

    >>> from tracetool._check import check
    >>> report = check(trace, ['bql.hold.max{thread="mig/dst/main"} < 5ms', "unparsed_lines == 0"])
    >>> report.ok, report.exit_code
    >>> for r in report.failed: print(r.explain())

Rules come from a TOML rules file (:func:`load_rules`), TOML text (:func:`parse_rules`) or
expressions; metric names are listed in :data:`METRICS` (see ``metrics.py``).
"""

from tracetool._check.evaluate import CheckReport, RuleResult, Status, as_rules, check, evaluate
from tracetool._check.grammar import Expression, ExpressionError, parse_expression
from tracetool._check.metrics import METRICS, SELECTORS, Kind, Metric, metric_table_markdown
from tracetool._check.rules import Rule, RulesError, RuleSet, load_rules, parse_rules, rules_from_expressions

__all__ = [
    "METRICS",
    "SELECTORS",
    "CheckReport",
    "Expression",
    "ExpressionError",
    "Kind",
    "Metric",
    "Rule",
    "RuleResult",
    "RuleSet",
    "RulesError",
    "Status",
    "as_rules",
    "check",
    "evaluate",
    "load_rules",
    "metric_table_markdown",
    "parse_expression",
    "parse_rules",
    "rules_from_expressions",
]
