"""CI trace assertions: rules on the analyses' JSON, checked against a trace.

``tracetool.check_trace(trace, rules)`` is the entry point (``evaluate.check``). Rules come from
a TOML rules file (``rules.load_rules``), TOML text (``rules.parse_rules``) or expressions
(``grammar.parse_expression``); metric names are the table ``metrics.METRICS`` (rows per
analysis in ``metric_rows/``, what a row says in ``metric_types``), found by
``metric_lookup`` and read from an analysis's JSON by ``measure``.
"""
