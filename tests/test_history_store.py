"""The run history on a SQLite file and on a real PostgreSQL server: one copy per run, labels
merged, several processes adding at once, and a version-1 database migrated forward."""

from __future__ import annotations

import json
import multiprocessing
import re
import sqlite3
import sys
import threading
import time
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

import tracetool
from tests.history_support import A72, C72
from tracetool._history import schema
from tracetool._history.store import History
from tracetool.errors import UsageError


@cache
def table(folder: Path) -> pd.DataFrame:
    return tracetool.run_metrics(str(folder))


def test_a_run_added_twice_is_one_run_with_its_labels_merged(store_url: str) -> None:
    a = table(A72)
    with History(store_url) as h:
        first = h.add(a, labels={"machine": "ci-1", "branch": "main"})
        again = h.add(a, labels={"branch": "next", "pr": "324"})
        runs = h.runs()
        unit, points = h.series("downtime.end_to_end")
    assert [x.new for x in first] == [True] and [x.new for x in again] == [False]
    assert first[0].metrics == len(a) and again[0].metrics == 0
    assert len(runs) == 1 and runs["metrics"].iloc[0] == len(a)
    own = json.loads(a["labels"].iloc[0])
    assert runs["labels"].iloc[0] == {**own, "machine": "ci-1", "branch": "next", "pr": "324"}
    want = a.set_index("id").loc["downtime.end_to_end"]
    assert unit == "us"
    assert [(p.run, p.value, p.time_ns) for p in points] == [
        (want["run"], want["value"], int(a["start_ns"].iloc[0]))
    ]


def test_series_order_where_and_every_value(store_url: str) -> None:
    a, c = table(A72), table(C72)
    with History(store_url) as h:
        h.add(c, labels={"scenario": "postcopy"})
        h.add(a, labels={"scenario": "precopy"})
        _, both = h.series("total_time.dst")
        _, only = h.series("total_time.dst", {"scenario": "postcopy"})
        stored = h.metric_ids()
    assert [p.run for p in both] == [
        t["run"].iloc[0] for t in sorted((a, c), key=lambda t: int(t["start_ns"].iloc[0]))
    ]
    assert [p.run for p in only] == [c["run"].iloc[0]]
    for t in (a, c):
        for metric_id in t["id"]:
            assert metric_id in stored
    assert stored["total_time.dst"] == 2


def test_batch_error_rows_are_not_added(store_url: str) -> None:
    a = table(A72).copy()
    a["error"] = None
    bad = pd.DataFrame({c: [None] for c in a.columns}).assign(source="broken", error="InputError: x")
    with History(store_url) as h:
        added = h.add(pd.concat([a, bad], ignore_index=True))
        assert len(added) == 1 and len(h.runs()) == 1


def test_labels_that_cannot_be_stored_are_refused(store_url: str) -> None:
    with History(store_url) as h, pytest.raises(UsageError, match="label key"):
        h.add(table(A72), labels={"bad key": "x"})


# ---------------------------------------------------------------------------------- concurrency
def _add_in_a_process(where: str, tables: list[pd.DataFrame], worker: int, barrier: object) -> None:
    barrier.wait(timeout=120)  # type: ignore[attr-defined]
    with History(where) as h:
        for t in tables:
            h.add(t, labels={f"worker{worker}": "yes", "last": str(worker)})


@pytest.mark.slow
def test_several_processes_adding_at_once_store_each_run_once(store_url: str) -> None:
    tables = [table(A72), table(C72)]
    context = multiprocessing.get_context("spawn")
    workers = 4
    barrier = context.Barrier(workers)
    procs = [
        context.Process(target=_add_in_a_process, args=(store_url, tables, i, barrier))
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    assert [p.exitcode for p in procs] == [0] * workers
    with History(store_url) as h:
        runs = h.runs()
    assert sorted(runs["run"]) == sorted(t["run"].iloc[0] for t in tables)
    assert sorted(runs["metrics"]) == sorted(len(t) for t in tables)
    for labels in runs["labels"]:
        assert {f"worker{i}" for i in range(workers)} <= set(labels)
        assert labels["last"] in {str(i) for i in range(workers)}


def _rollback_writer(path: Path) -> sqlite3.Connection:
    """A SQLite file in rollback-journal mode with a writer inside its transaction: SQLite
    answers "locked" at once, without its busy wait, to a connection that read the file and
    then wants to write it (here: to switch it to WAL)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("CREATE TABLE other (x INTEGER)")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO other VALUES (1)")
    return conn


def test_a_history_locked_without_a_busy_wait_is_opened_when_the_lock_goes(tmp_path: Path) -> None:
    writer = _rollback_writer(tmp_path / "history.sqlite")
    release = threading.Timer(0.5, writer.execute, ("COMMIT",))
    started = time.monotonic()
    release.start()
    try:
        with History(str(tmp_path / "history.sqlite")) as h:
            version = h.schema_version()
    finally:
        release.join()
        writer.close()
    assert version == schema.SCHEMA_VERSION
    assert time.monotonic() - started >= 0.5


def test_a_history_locked_too_long_is_one_line_naming_the_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tracetool._history.store.BUSY_SECONDS", 0.3)
    writer = _rollback_writer(tmp_path / "history.sqlite")
    try:
        with pytest.raises(UsageError) as caught:
            History(str(tmp_path / "history.sqlite"))
    finally:
        writer.close()
    message = str(caught.value)
    assert "cannot open the history: database is locked" in message
    assert re.search(r"\(waited [0-9]+\.[0-9] s for another process\)$", message) and "\n" not in message


# ---------------------------------------------------------------------------------- migrations
V1_SQL = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "INSERT INTO schema_version VALUES (1)",
    "CREATE TABLE runs (id INTEGER PRIMARY KEY, run VARCHAR(64) NOT NULL UNIQUE, source TEXT, "
    "start_ns BIGINT, clock VARCHAR(16), added_ns BIGINT NOT NULL, labels TEXT NOT NULL DEFAULT '{}')",
    "CREATE TABLE measurements (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, "
    "metric VARCHAR(400) NOT NULL, process VARCHAR(32), value FLOAT NOT NULL, unit VARCHAR(16) NOT NULL, "
    "PRIMARY KEY (run_id, metric))",
    "INSERT INTO runs (run, source, start_ns, clock, added_ns, labels) VALUES "
    "('aaaaaaaaaaaaaaaa', '/runs/old-1', 1700000000000000000, 'wall', "
    '1700000100000000000, \'{"machine": "ci-1", "build": "QEMU 7.2.22"}\')',
    "INSERT INTO runs (run, source, start_ns, clock, added_ns, labels) VALUES "
    "('bbbbbbbbbbbbbbbb', '/runs/old-2', NULL, 'monotonic', 1700000200000000000, '{}')",
    "INSERT INTO measurements VALUES (1, 'downtime.end_to_end', NULL, 150000.0, 'us')",
    "INSERT INTO measurements VALUES (2, 'downtime.end_to_end', NULL, 90000.0, 'us')",
)


def _make_v1(where: str) -> None:
    """A version-1 history written by hand, as migtrace's first schema laid it out."""
    if "://" not in where:
        with sqlite3.connect(where) as conn:
            for statement in V1_SQL:
                conn.execute(statement)
        return
    import sqlalchemy as sa

    engine = sa.create_engine(sa.engine.make_url(where).set(drivername="postgresql+psycopg"))
    with engine.begin() as conn:
        for statement in V1_SQL:
            conn.exec_driver_sql(statement.replace("INTEGER PRIMARY KEY", "SERIAL PRIMARY KEY"))
    engine.dispose()


def test_a_version_1_history_is_migrated_forward(store_url: str) -> None:
    _make_v1(store_url)
    with History(store_url) as h:
        assert h.migrated_from == 1
        assert h.schema_version() == schema.SCHEMA_VERSION == 2
        runs = h.runs().set_index("run")
        _, points = h.series("downtime.end_to_end", {"machine": "ci-1"})
        h.add(table(A72), labels={"machine": "ci-2"})
        assert len(h.runs()) == 3
    assert runs.loc["aaaaaaaaaaaaaaaa", "labels"] == {"build": "QEMU 7.2.22", "machine": "ci-1"}
    assert runs.loc["bbbbbbbbbbbbbbbb", "labels"] == {}
    assert runs.loc["bbbbbbbbbbbbbbbb", "time_ns"] == 1700000200000000000  # no wall clock: when added
    assert [(p.run, p.value) for p in points] == [("aaaaaaaaaaaaaaaa", 150000.0)]
    with History(store_url) as h:
        assert h.migrated_from is None  # nothing left to migrate


def test_a_new_history_runs_every_migration(store_url: str) -> None:
    with History(store_url) as h:
        assert h.migrated_from == 0 and h.schema_version() == schema.SCHEMA_VERSION


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    where = str(tmp_path / "h.sqlite")
    History(where).close()
    with sqlite3.connect(where) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(UsageError, match="schema version 99, newer than this migtrace"):
        History(where)


# ---------------------------------------------------------------------------------- opening
def test_what_cannot_be_opened_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    not_db = tmp_path / "notes.txt"
    not_db.write_text("not a database\n" * 100)
    with pytest.raises(UsageError, match="cannot open the history: file is not a database"):
        History(str(not_db))
    with pytest.raises(UsageError, match="no such directory"):
        History(str(tmp_path / "missing" / "h.sqlite"))
    with pytest.raises(UsageError, match="SQLite file path, sqlite:///PATH or postgresql://"):
        History("mysql://u:secret@host/db")
    monkeypatch.setenv("MIGTRACE_HISTORY", str(tmp_path / "from-env.sqlite"))
    with History() as h:
        assert h.where == str(tmp_path / "from-env.sqlite")
    assert (tmp_path / "from-env.sqlite").exists()


def test_postgres_without_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(UsageError) as info:
        History("postgresql://u:secret@127.0.0.1:1/db")
    assert str(info.value) == "a PostgreSQL history needs the scale extra: pip install 'migtrace[scale]'"


def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    with pytest.raises(UsageError) as info:
        History("postgresql://someone:s3cret@127.0.0.1:1/db")
    text = str(info.value)
    assert "s3cret" not in text and "***" in text and "cannot open the history" in text
    assert "\n" not in text
