"""The shape of the code: imports that run one way, one registry of analyses, a curated API.

The layer contracts themselves (parsers -> core -> reports -> CLI, no cycles) are checked by
``lint-imports`` (pyproject.toml), which ``python3 scripts/dev.py test`` runs; these tests check
what that tool cannot express.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import tracetool
from tests.conftest import REPO
from tracetool._analyses import registry
from tracetool._analyses.events import event_data
from tracetool._check.metrics import METRICS

PACKAGES = ("tracetool", "parsers", "reports")
MODULE_LINE_LIMIT = 520
"""Small modules with one job each: about 500 lines at most, this many as a hard limit."""
LIMITED_DIRS = (*PACKAGES, "scripts", "benchmarks")


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py"))


def _is_module(package: str, name: str) -> bool:
    base = REPO.joinpath(*package.split("."))
    return (
        (base / f"{name}.py").exists()
        or (base / name / "__init__.py").exists()
        or (base / f"{name}.c").exists()
    )  # a compiled extension module


def test_no_module_imports_from_a_package_root() -> None:
    """``from tracetool import load`` inside the project would tie every module to the public
    API module and, through it, to everything else; modules import the module that defines a
    name. (Importing a submodule, ``from tracetool._analyses import registry``, is fine.)"""
    bad = []
    for path in _modules():
        tree = ast.parse(path.read_text("utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                root = node.module
                if root.split(".")[0] not in PACKAGES:
                    continue
                if not (REPO.joinpath(*root.split(".")) / "__init__.py").exists():
                    continue  # a module, not a package
                for alias in node.names:
                    if not _is_module(root, alias.name):
                        bad.append(f"{path.relative_to(REPO)}:{node.lineno}: from {root} import {alias.name}")
            elif isinstance(node, ast.Import):
                bad += [
                    f"{path.relative_to(REPO)}:{node.lineno}: import {a.name}"
                    for a in node.names
                    if a.name in PACKAGES
                ]
    assert bad == []


def _is_test_code(path: Path) -> bool:
    return path.name.startswith("test_") or path.name == "conftest.py" or "tests" in path.parts


def test_no_module_is_longer_than_the_limit() -> None:
    """Every Python module outside the tests (the packages, scripts/, benchmarks/) stays within
    MODULE_LINE_LIMIT lines, counted as ``wc -l`` counts them."""
    over = []
    for top in LIMITED_DIRS:
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO)
            if _is_test_code(rel):
                continue
            lines = path.read_bytes().count(b"\n")
            if lines > MODULE_LINE_LIMIT:
                over.append(f"{rel} ({lines})")
    assert not over, f"over {MODULE_LINE_LIMIT} lines, split along their seams: {', '.join(over)}"


def test_every_analysis_has_the_result_contract() -> None:
    for analysis in registry.ANALYSES.values():
        cls = analysis.result_type
        for member in ("to_json", "empty", "issue_count"):
            assert hasattr(cls, member), f"{analysis.name}: {cls.__name__} has no {member}"
        assert inspect.signature(analysis.run).parameters, analysis.name
        if analysis.events_key is not None:
            assert analysis.events_key in event_data().analyses, analysis.name


def test_every_metric_reads_a_registered_analysis() -> None:
    assert {m.analysis for m in METRICS} <= set(registry.ANALYSES)


def test_every_event_list_belongs_to_an_analysis() -> None:
    assert set(event_data().analyses) <= {a.events_key for a in registry.ANALYSES.values()}


def test_registry_runs_each_analysis_once_per_trace_and_options() -> None:
    trace = tracetool.load(str(REPO / "sample_traces/qemu-7.2/a-precopy-plain/src.trace.xz"))
    first = registry.run(trace, "phases")
    assert registry.run(trace, "phases") is first
    assert registry.run(trace, "bql", top=3) is not registry.run(trace, "bql", top=4)
    with pytest.raises(tracetool.UsageError, match="takes no option 'top'"):
        registry.run(trace, "phases", top=3)
    with pytest.raises(tracetool.UsageError, match="unknown analysis 'nope'"):
        registry.run(trace, "nope")


def test_public_api_is_one_flat_list() -> None:
    for name in tracetool.__all__:
        assert hasattr(tracetool, name), name
    # Importing an internal package must not shadow a public name (tracetool.check once did).
    importlib.import_module("tracetool._check.rules")
    assert callable(tracetool.check_trace)
    for name in (
        "load",
        "analyze_bql",
        "analyze_phases",
        "analyze_preempt",
        "build_timeline",
        "compare",
        "check_trace",
        "replay",
    ):
        assert name in tracetool.__all__


def test_public_names_load_lazily_from_where_they_are_defined() -> None:
    assert set(tracetool._WHERE) == set(tracetool.__all__)
    for name, (module, attr) in tracetool._WHERE.items():
        assert getattr(tracetool, name) is getattr(importlib.import_module(module), attr), name
