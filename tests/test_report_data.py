"""``tracetool._analyses.reportdata.collect`` and the ``migtrace report --format json`` document, on the
real sample traces. The loaders here are shared with the other report and compare tests."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache

import pytest

import tracetool
from reports.report_json import report_document, to_json_text
from tests.conftest import SAMPLES
from tracetool._analyses import registry
from tracetool._analyses.bql.report import NOT_IN_TRACE
from tracetool._analyses.registry import NO_TIMESTAMPS
from tracetool._analyses.reportdata import SECTIONS, ReportData, collect
from tracetool._model.querymigrate import load_query_migrate

MUTEX_72 = SAMPLES / "qemu-7.2/e-precopy-mutex"
MUTEX_THREADIFY = SAMPLES / "qemu-threadify/e-precopy-mutex/per-thread"
PLAIN_72 = SAMPLES / "qemu-7.2/a-precopy-plain"
NO_TIME_72 = SAMPLES / "qemu-7.2/g-precopy-plain-notimestamp"


@cache
def mutex_72() -> ReportData:
    """QEMU 7.2 destination with mutex events: the load runs on the main thread."""
    trace = tracetool.load([str(MUTEX_72 / "dst.trace.xz")], threads=[str(MUTEX_72 / "dst-threads.json")])
    return collect(trace, load_query_migrate(str(MUTEX_72 / "query-migrate.json")))


@cache
def mutex_threadify() -> ReportData:
    """Threadify destination, one file per thread, with mutex events: the load is mig/dst/main."""
    trace = tracetool.load(
        [str(MUTEX_THREADIFY / "dst.*.trace.xz")], threads=[str(MUTEX_THREADIFY / "dst-threads.json")]
    )
    return collect(trace, load_query_migrate(str(MUTEX_THREADIFY / "query-migrate.json")))


@cache
def plain_72() -> ReportData:
    """QEMU 7.2 destination traced without mutex events."""
    return collect(tracetool.load([str(PLAIN_72 / "dst.trace.xz")]))


# ---------------------------------------------------------------------------------- collect
def test_mutex_trace_keeps_every_analysis_that_applies() -> None:
    data = mutex_72()
    assert data.phases is not None and data.bql is not None and data.downtime is not None
    assert data.phases.outcome == "completed"
    assert data.bql.primary is not None and data.bql.primary.mutex is not None
    assert data.notes["bql"] == [] and data.notes["phases"] == []
    # precopy: nothing for the preempt analysis, and the note says what it would need
    assert data.preempt is None
    assert data.notes["preempt"][0].startswith("not in this trace: no postcopy")
    assert "postcopy_preempt_thread_entry" in data.notes["preempt"][0]
    assert data.downtime["switchover"]["qemu_reported_ms"] == 150.0  # from query-migrate.json


def test_trace_without_mutex_events_says_which_to_enable() -> None:
    data = plain_72()
    assert data.bql is None
    assert data.notes["bql"] == [NOT_IN_TRACE]
    assert NOT_IN_TRACE == ("not in this trace: enable qemu_mutex_lock, qemu_mutex_locked, qemu_mutex_unlock")
    assert data.phases is not None  # the other sections are still there


def test_source_only_trace_has_no_phases_but_says_why() -> None:
    data = collect(tracetool.load([str(NO_TIME_72 / "src.trace.xz")]))
    assert data.phases is None
    note = data.notes["phases"][0]
    assert note.startswith("not in this trace: no incoming (destination) migration")
    assert "loadvm_state_setup" in note and "qemu_loadvm_state_section" in note
    assert NO_TIMESTAMPS in data.notes["summary"]


def test_a_failing_analysis_becomes_a_note_and_the_rest_still_reports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(trace: object) -> None:
        raise RuntimeError("mutex table exploded")

    trace = mutex_72().trace  # before the patch: the cached report other tests share stays whole
    monkeypatch.delenv("MIGTRACE_DEBUG", raising=False)
    monkeypatch.setitem(registry.ANALYSES, "bql", replace(registry.ANALYSES["bql"], run=broken))
    data = collect(trace)
    assert data.bql is None
    assert data.notes["bql"] == ["the BQL analysis failed on this trace: RuntimeError: mutex table exploded"]
    assert data.phases is not None and data.phases.outcome == "completed"


# ---------------------------------------------------------------------------------- JSON
def test_json_document_holds_each_analysis_contract_under_a_stable_key() -> None:
    data = mutex_threadify()
    doc = json.loads(to_json_text(report_document(data)))  # also: no NaN, all serialisable
    assert list(doc) == ["summary", "phases", "downtime", "bql", "trace_end", "preempt", "colo", "notes"]
    assert list(doc["notes"]) == list(SECTIONS)
    assert doc["summary"]["totals"]["events"] == len(data.trace)
    assert data.phases is not None
    assert doc["phases"] == json.loads(json.dumps(data.phases.to_json()))
    assert data.bql is not None
    assert doc["bql"] == json.loads(json.dumps(data.bql.to_json(top=10)))
    load = [t for t in doc["bql"]["bql"]["threads"] if t["name"] == "mig/dst/main"]
    assert load and load[0]["role"] == "load" and load[0]["holds"] > 0
    assert doc["downtime"]["switchover"]["qemu_reported_ms"] == 97.0
    assert doc["downtime"]["total_time"]["qemu_reported_ms"] == 3186.0
    assert doc["preempt"] is None and doc["notes"]["preempt"]
    assert doc["colo"] is None and doc["notes"]["colo"][0].startswith("not in this trace")


def test_json_of_a_trace_without_mutex_events_has_a_null_section_and_its_note() -> None:
    doc = json.loads(to_json_text(report_document(plain_72())))
    assert doc["bql"] is None
    assert doc["notes"]["bql"] == [NOT_IN_TRACE]
    assert doc["phases"]["outcome"] == "completed"
