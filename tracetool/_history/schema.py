"""The history's tables, and the numbered migrations that build them (SQLAlchemy Core).

The schema's version is the one row of ``schema_version``. A database is brought to
``SCHEMA_VERSION`` by running, in one transaction, every migration above its version in order;
a new database runs them all. A migration is a small function of a connection that states the
tables as they were at its version (never the current ones), so an old database migrates the
same way whenever it is opened. Two processes opening a database at once migrate it once:
PostgreSQL takes an advisory lock inside the transaction; SQLite's transactions begin
``IMMEDIATE`` (the write lock first), which serialises them.

Version 1: ``runs`` (one row per run id, its labels as JSON text) and ``measurements`` (one
row per run and metric id). Version 2: labels in their own table ``run_labels`` (one row per run
and key), so that adding labels to a run is a row upsert, never a rewrite of a JSON text that
two writers could race on, and ``--by LABEL`` is an indexed join.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

SCHEMA_VERSION = 2
ADVISORY_LOCK = 0x6D69677472616365  # "migtrace": serialises migrations on one PostgreSQL database

metadata = sa.MetaData()
"""The tables at ``SCHEMA_VERSION``: what the store reads and writes."""

schema_version = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, nullable=False))
runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run", sa.String(64), nullable=False, unique=True),
    sa.Column("source", sa.Text),
    sa.Column("start_ns", sa.BigInteger),
    sa.Column("clock", sa.String(16)),
    sa.Column("added_ns", sa.BigInteger, nullable=False),
)
measurements = sa.Table(
    "measurements",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("metric", sa.String(400), primary_key=True),
    sa.Column("process", sa.String(32)),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("unit", sa.String(16), nullable=False),
)
run_labels = sa.Table(
    "run_labels",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)


# ---------------------------------------------------------------------------------- migrations
def _v1_create(conn: Connection) -> None:
    """Version 1: runs with their labels as JSON text, and one row per run and metric id."""
    md = sa.MetaData()
    sa.Table(
        "runs",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run", sa.String(64), nullable=False, unique=True),
        sa.Column("source", sa.Text),
        sa.Column("start_ns", sa.BigInteger),
        sa.Column("clock", sa.String(16)),
        sa.Column("added_ns", sa.BigInteger, nullable=False),
        sa.Column("labels", sa.Text, nullable=False, server_default="{}"),
    )
    sa.Table(
        "measurements",
        md,
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("metric", sa.String(400), primary_key=True),
        sa.Column("process", sa.String(32)),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Index("measurements_metric", "metric", "run_id"),
    )
    md.create_all(conn)


def _v2_label_rows(conn: Connection) -> None:
    """Version 2: the labels of each run as rows of ``run_labels``; ``runs.labels`` dropped."""
    md = sa.MetaData()
    sa.Table("runs", md, sa.Column("id", sa.Integer, primary_key=True))  # what the key refers to
    labels = sa.Table(
        "run_labels",
        md,
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Index("run_labels_key", "key", "value"),
    )
    labels.create(conn)
    old_runs = sa.table("runs", sa.column("id"), sa.column("labels"))
    rows = []
    for run_id, text in conn.execute(sa.select(old_runs.c.id, old_runs.c.labels)):
        try:
            found = json.loads(text or "{}")
        except json.JSONDecodeError:
            found = {}
        if isinstance(found, dict):
            rows += [{"run_id": run_id, "key": str(k), "value": str(v)} for k, v in found.items()]
    if rows:
        conn.execute(labels.insert(), rows)
    conn.execute(sa.text("ALTER TABLE runs DROP COLUMN labels"))


MIGRATIONS: tuple[tuple[int, Callable[[Connection], None]], ...] = ((1, _v1_create), (2, _v2_label_rows))
"""(version, migration): each brings a database from the version before to this one."""


def current_version(conn: Connection) -> int:
    """The database's schema version (0: an empty database)."""
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    found = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
    return int(found or 0)


def migrate(conn: Connection) -> tuple[int, int]:
    """Brings the database to ``SCHEMA_VERSION`` inside the caller's transaction; returns
    (version before, version after). A database newer than this migtrace is left alone
    (the caller refuses it)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})
    before = current_version(conn)
    if before >= SCHEMA_VERSION:
        return before, before
    if before == 0:
        schema_version.create(conn, checkfirst=True)
    for version, step in MIGRATIONS:
        if version > before:
            step(conn)
    conn.execute(schema_version.delete())
    conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
    return before, SCHEMA_VERSION
