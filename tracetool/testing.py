"""Trace assertions for tests (pytest or any runner that reports AssertionError).

    from tracetool.testing import assert_trace

    def test_load_thread_keeps_bql_holds_short():
        assert_trace("out/dst-trace/", 'bql.hold.max{role=load} < 5ms',
                     threads=["out/dst-threads.json"])

Each trace is loaded once per process and reused by every assertion on the same inputs
(``load_cached``); a failed assertion says which rule failed, what was observed, what was
expected and what was measured.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from tracetool._check.evaluate import CheckReport, RulesLike, as_rules, evaluate
from tracetool._model.trace import Trace

CACHED_TRACES = 8


class TraceCheckFailed(AssertionError):
    """Some rules failed; ``report`` holds every result."""

    def __init__(self, message: str, report: CheckReport) -> None:
        super().__init__(message)
        self.report = report


def _stamp(path: str) -> tuple[str, int, int]:
    """A path with its modification time and size, so a rewritten file is loaded again."""
    try:
        st = os.stat(path)
    except OSError:
        return (path, -1, -1)
    return (str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=CACHED_TRACES)
def _load(
    paths: tuple[tuple[str, int, int], ...],
    threads: tuple[tuple[str, int, int], ...],
    events: tuple[tuple[str, int, int], ...],
) -> Trace:
    from tracetool._model.load import load

    return load(
        [p for p, _, _ in paths], threads=[t for t, _, _ in threads], events=[e for e, _, _ in events]
    )


def _paths(value: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    if isinstance(value, str | os.PathLike):
        return [os.fspath(value)]
    return [os.fspath(v) for v in value]


def load_cached(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    threads: Sequence[str | os.PathLike[str]] = (),
    events: Sequence[str | os.PathLike[str]] = (),
) -> Trace:
    """Loads a trace once per process (per inputs, sidecars, event files and their mtimes)."""
    return _load(
        tuple(_stamp(p) for p in _paths(path)),
        tuple(_stamp(os.fspath(t)) for t in threads),
        tuple(_stamp(os.fspath(e)) for e in events),
    )


def clear_cache() -> None:
    """Forgets the loaded traces."""
    _load.cache_clear()


def assert_trace(
    trace: Trace | str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *rules: RulesLike,
    threads: Sequence[str | os.PathLike[str]] = (),
    events: Sequence[str | os.PathLike[str]] = (),
) -> CheckReport:
    """Asserts that a trace satisfies rules; returns the report when every rule passed.

    ``trace``: a loaded Trace or the paths to load (cached, see :func:`load_cached`).
    ``rules``: expressions, rules file paths, TOML text or parsed rules. Raises
    :class:`TraceCheckFailed` (an AssertionError) naming each failed rule.
    """
    __tracebackhide__ = True  # pytest: show the test's line, not this helper's
    if not rules:
        raise ValueError("assert_trace needs at least one rule")
    bound = [r for item in rules for r in as_rules(item)]
    loaded = trace if isinstance(trace, Trace) else load_cached(trace, threads=threads, events=events)
    report = evaluate(loaded, bound)
    if report.ok:
        return report
    where = ", ".join(report.inputs) or "the trace"
    failed = report.failed
    head = f"{len(failed)} of {len(report.results)} trace rules failed on {where}:"
    raise TraceCheckFailed("\n".join([head, *(r.explain() for r in failed)]), report)
