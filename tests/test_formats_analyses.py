"""Every analysis answers on a trace read from every backend, with the stated degradations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tracetool
from tests.conftest import sample
from tracetool._analyses.phases import analyze_phases
from tracetool._analyses.preempt import analyze_preempt

# (trace, whether its format carries thread ids); query-migrate.json of the same run is beside it
CASES = [
    ("qemu-threadify-ftrace/a-precopy-mutex/ftrace.txt.xz", True),
    ("qemu-threadify-ftrace/d-precopy-mutex-trace-cmd/trace-cmd-report.txt.xz", True),
    ("qemu-threadify-lttng/a-precopy-mutex/lttng-babeltrace2.txt.xz", True),
    ("qemu-threadify/e-precopy-mutex/dst.simple.xz", False),
]


@pytest.mark.parametrize(("rel", "has_tids"), CASES)
def test_analyses_run_on_every_backend(rel: str, has_tids: bool) -> None:
    path = sample(*rel.split("/"))
    status = json.loads((Path(path).parent / "query-migrate.json").read_text())["dst"]["status"]
    trace = tracetool.load(path)
    phases = analyze_phases(trace)
    assert phases.to_json()["outcome"] == status == "completed"
    bql = tracetool.analyze_bql(trace).to_json()["bql"]
    assert bql["mutex"] is not None
    assert bql["attribution"] == ("thread" if has_tids else "call-site")
    load = phases.to_json()["load_thread"]
    if has_tids:
        assert load["name"] == "mig/dst/main" and load["tid"] is not None
        load_row = next(t for t in bql["threads"] if t["name"] == "mig/dst/main")
        assert load_row["holds"] > 0
    else:
        assert load["tid"] is None  # pid only: the load thread is known by its role
        assert any(t["role"] == "load" for t in bql["threads"])
    assert analyze_preempt(trace).to_json()["preempt"]["enabled"] is False  # precopy runs
