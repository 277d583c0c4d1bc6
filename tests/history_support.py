"""What the history and batch tests share: run folders to measure, a PostgreSQL server, a fresh
database per test, and plain readings of trace files to compare with.

The PostgreSQL server is ``$MIGTRACE_TEST_POSTGRES`` (``.ci/run`` starts one and sets it), else
one these tests start themselves with ``scripts/pg_server.py`` when the machine has PostgreSQL;
without either the PostgreSQL tests skip, unless ``MIGTRACE_REQUIRE_POSTGRES=1`` makes that a
failure. The URL's role must be allowed to create databases: each test gets its own.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_traces"
REPEATS = Path("/work/shared/traces/repeats")
A72 = SAMPLES / "qemu-7.2" / "a-precopy-plain"  # log backend, TID@SEC.USEC, dst + src
E72 = SAMPLES / "qemu-7.2" / "e-precopy-mutex"  # with the BQL's mutex events
C72 = SAMPLES / "qemu-7.2" / "c-postcopy"  # destination only, postcopy
D72 = SAMPLES / "qemu-7.2" / "d-postcopy-preempt"  # postcopy with the preempt channel
_LOG_LINE = re.compile(rb"^(\d+)@(\d+)\.(\d+):(\w+)")


def needs_repeats() -> Path:
    """The shared repeated runs, or a skip naming them."""
    if not (REPEATS / "qemu-7.2" / "run-1").is_dir():
        pytest.skip(f"the shared repeated runs are not here ({REPEATS})")
    return REPEATS


def trace_files(folder: Path) -> list[Path]:
    """The trace files of a sample run folder (what the run id hashes)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and ".trace" in p.name)


def plain_run_id(files: list[Path]) -> str:
    """The run id computed the plain way: sha256 of the sorted per-file sha256 digests."""
    digests = sorted(hashlib.sha256(f.read_bytes()).digest() for f in files)
    return hashlib.sha256(b"".join(digests)).hexdigest()[:16]


def plain_log_walk(files: list[Path]) -> tuple[dict[str, int], int]:
    """Event counts and the first timestamp (ns) of ``TID@SEC.USEC:name`` log files, read line
    by line with a regular expression."""
    from tests.conftest import read_lines

    counts: dict[str, int] = {}
    first: int | None = None
    for f in files:
        for line in read_lines(str(f)):
            m = _LOG_LINE.match(line)
            if not m:
                continue
            name = m.group(4).decode()
            counts[name] = counts.get(name, 0) + 1
            ns = int(m.group(2)) * 1_000_000_000 + int(m.group(3)) * 1000
            first = ns if first is None else min(first, ns)
    assert first is not None
    return counts, first


# ---------------------------------------------------------------------------------- PostgreSQL
def _pg_server_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pg_server", REPO / "scripts" / "pg_server.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _no_postgres(reason: str) -> None:
    if os.environ.get("MIGTRACE_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"MIGTRACE_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server whose role may create databases."""
    given = os.environ.get("MIGTRACE_TEST_POSTGRES")
    if given:
        yield given
        return
    pg = _pg_server_module()
    folder = tempfile.mkdtemp(prefix="migtrace-pg-", dir="/tmp")
    try:
        url = pg.start(folder)
    except (pg.ServerError, OSError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        _no_postgres(f"no PostgreSQL server to test with: {exc}")
        return
    try:
        yield url
    finally:
        pg.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A new, empty database on the server for one test (dropped afterwards)."""
    import sqlalchemy as sa

    name = f"migtrace_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        sa.engine.make_url(postgres_server).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.OperationalError as exc:
        admin.dispose()
        _no_postgres(f"cannot create a database on the PostgreSQL server: {str(exc).splitlines()[0]}")
    url = sa.engine.make_url(postgres_server).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh history: a SQLite file, or a database on the PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "history.sqlite")
    return str(request.getfixturevalue("postgres_url"))


# ---------------------------------------------------------------------------------- generated
HOUR_NS = 3_600_000_000_000


def generated_runs(
    values: list[float],
    metric: str = "downtime.end_to_end",
    labels: dict[str, str] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """A metrics table of ``len(values)`` runs one hour apart, one value each (generated by this
    code for the statistics of the history: real runs are too few to show a regression)."""
    import json

    rows = []
    start = 1_790_000_000_000_000_000 + seed * 1000 * HOUR_NS
    for i, value in enumerate(values):
        run = hashlib.sha256(f"generated-{seed}-{i}".encode()).hexdigest()[:16]
        rows.append(
            {
                "run": run,
                "source": f"generated/run-{i + 1}",
                "start_ns": start + i * HOUR_NS,
                "clock": "wall",
                "labels": json.dumps(dict(sorted((labels or {}).items()))),
                "process": None,
                "metric": metric,
                "selector": "",
                "id": metric,
                "value": float(value),
                "unit": "us",
            }
        )
    return pd.DataFrame(rows)
