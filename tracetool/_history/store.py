"""The run history store: runs, their labels and metric values in SQLite or PostgreSQL.

Where: a path is a SQLite file; ``sqlite:///PATH`` too; ``postgresql://USER:PASS@HOST/DB`` a
PostgreSQL server (through psycopg, in the ``scale`` extra). Nothing given: ``$MIGTRACE_HISTORY``,
else ``migtrace-history.sqlite`` in the current directory.

A run is stored once, under the id of its trace files' content
(:mod:`tracetool._check.runid`): adding it again adds the metric ids it did not have and merges
its labels (a new value of a key replaces the old one). Each run is added in one transaction
guarded by unique constraints, so several processes can add at once: the same run added twice
at the same time is stored once. SQLite runs in WAL mode and waits up to ``BUSY_SECONDS`` for
another writer: its own busy wait, and a retry of the whole transaction when SQLite answers
"database is locked" without waiting (another connection opening or closing the write-ahead
log). A database error is a :class:`~tracetool.errors.UsageError` of one line.

    >>> with History("ci-history.sqlite") as h:
    ...     h.add(tracetool.run_metrics("runs/threadify/run-1"), labels={"branch": "main"})
    ...     h.series("downtime.end_to_end")
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from tracetool._check.runid import check_label, merge_labels
from tracetool.errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

DEFAULT_FILE = "migtrace-history.sqlite"
ENV_VAR = "MIGTRACE_HISTORY"
BUSY_SECONDS = 60.0
SCALE_EXTRA = "pip install 'migtrace[scale]'"
_REQUIRED = ("run", "labels", "id", "value", "unit")
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
T = TypeVar("T")


def default_location() -> str:
    """``$MIGTRACE_HISTORY``, else ``migtrace-history.sqlite`` in the current directory."""
    return os.environ.get(ENV_VAR) or DEFAULT_FILE


def is_url(where: str) -> bool:
    """Whether ``where`` is a database URL rather than a file path."""
    return "://" in where


@dataclass(frozen=True)
class Added:
    """What adding one run did: stored it anew, or found it and merged its labels."""

    run: str
    source: str | None
    new: bool
    metrics: int
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Point:
    """One run's value of one metric: ``time_ns`` is the first event's wall-clock time (UTC ns),
    or the time the run was added when its trace has no wall clock."""

    run: str
    time_ns: int
    labels: dict[str, str]
    value: float
    process: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"run", "time_ns", "labels", "value"}``."""
        return {"run": self.run, "time_ns": self.time_ns, "labels": dict(self.labels), "value": self.value}


class History:
    """A run history (see the module docstring). Use as a context manager, or call
    :meth:`close`. Raises :class:`~tracetool.errors.UsageError` for a store that cannot be
    opened (one line, the password hidden)."""

    def __init__(self, where: str | os.PathLike[str] | None = None) -> None:
        self.where = os.fspath(where) if where is not None else default_location()
        self._engine: Engine = _engine(self.where)
        self.migrated_from: int | None = None
        self._open()

    # ------------------------------------------------------------------ opening
    @property
    def shown(self) -> str:
        """Where the history is, for messages (a URL's password hidden)."""
        return _shown(self.where)

    def _open(self) -> None:
        from tracetool._history import schema

        def migrate() -> int:
            with self._engine.begin() as conn:
                return schema.migrate(conn)[0]

        try:
            before = self._transaction("cannot open the history", migrate)
        except UsageError:
            self._engine.dispose()
            raise
        if before > schema.SCHEMA_VERSION:
            self._engine.dispose()
            raise UsageError(
                f"{self.shown}: the history has schema version {before}, newer than this migtrace "
                f"({schema.SCHEMA_VERSION}): upgrade migtrace"
            )
        self.migrated_from = before if before != schema.SCHEMA_VERSION else None

    def close(self) -> None:
        """Closes the connections."""
        self._engine.dispose()

    def __enter__(self) -> History:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return str(self._engine.dialect.name)

    def schema_version(self) -> int:
        """The database's schema version."""
        from tracetool._history import schema

        return self._reading(schema.current_version)

    def _transaction(self, what: str, action: Callable[[], T]) -> T:
        """Runs ``action`` (one transaction), again while SQLite answers "locked" within
        ``BUSY_SECONDS``; a database error becomes a one-line UsageError saying ``what``."""
        from sqlalchemy.exc import SQLAlchemyError

        started = time.monotonic()
        pause = 0.01
        while True:
            try:
                return action()
            except SQLAlchemyError as exc:
                waited = time.monotonic() - started
                if not (self.dialect == "sqlite" and _is_busy(exc)):
                    raise UsageError(f"{self.shown}: {what}: {_reason(exc)}") from None
                if waited + pause > BUSY_SECONDS:
                    raise UsageError(
                        f"{self.shown}: {what}: {_reason(exc)} (waited {waited:.1f} s for another process)"
                    ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.25)

    def _reading(self, body: Callable[[Connection], T]) -> T:
        """``body`` on a connection, as a transaction of :meth:`_transaction`."""

        def read() -> T:
            with self._engine.connect() as conn:
                return body(conn)

        return self._transaction("cannot read the history", read)

    # ------------------------------------------------------------------ adding
    def add(self, table: pd.DataFrame, labels: Mapping[str, str] | None = None) -> list[Added]:
        """Adds every run of a metrics table (:func:`~tracetool.run_metrics`, or a batch table:
        its error rows are skipped); ``labels`` go to every run, over the run's own. One
        transaction per run."""
        missing = [c for c in _REQUIRED if c not in table.columns]
        if missing:
            raise UsageError(f"not a migtrace metrics table: no column {', '.join(missing)}")
        given = dict(labels or {})
        for k, v in given.items():
            check_label(k, v)
        rows = table
        if "error" in rows.columns:
            rows = rows[rows["error"].isna()]
        rows = rows[rows["run"].notna()]
        out = []
        for run, part in rows.groupby("run", sort=False):
            out.append(self._add_run(str(run), part, given))
        return out

    def _add_run(self, run: str, part: pd.DataFrame, given: Mapping[str, str]) -> Added:
        first = {str(k): v for k, v in part.iloc[0].items()}
        own = _labels_of(first.get("labels"))
        labels = merge_labels(own, given)
        for k, v in labels.items():
            check_label(k, v)
        values = part.drop_duplicates("id")
        record: dict[str, Any] = {
            "run": run,
            "source": _text(first.get("source")),
            "start_ns": _int(first.get("start_ns")),
            "clock": _text(first.get("clock")),
            "added_ns": time.time_ns(),
        }

        def write() -> tuple[bool, int, dict[str, str]]:
            with self._engine.begin() as conn:
                return self._write_run(conn, record, labels, values)

        new, added, all_labels = self._transaction(f"cannot add run {run}", write)
        return Added(run, record["source"], new, added, all_labels)

    def _write_run(
        self, conn: Connection, record: dict[str, Any], labels: Mapping[str, str], values: pd.DataFrame
    ) -> tuple[bool, int, dict[str, str]]:
        """Inserts one run, its labels and its measurements; (new run?, measurements added,
        the run's labels after the merge)."""
        import sqlalchemy as sa

        from tracetool._history import schema

        run = record["run"]
        # RETURNING says whether a row was written (rowcount is not reliable for
        # ON CONFLICT DO NOTHING on every driver).
        inserted = conn.execute(
            self._insert(schema.runs, record)
            .on_conflict_do_nothing(index_elements=["run"])
            .returning(schema.runs.c.id)
        ).all()
        run_pk = conn.execute(sa.select(schema.runs.c.id).where(schema.runs.c.run == run)).scalar_one()
        if labels:
            stmt = self._insert(
                schema.run_labels, [{"run_id": run_pk, "key": k, "value": v} for k, v in labels.items()]
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["run_id", "key"], set_={"value": stmt.excluded.value}
                )
            )
        measured = [
            {
                "run_id": run_pk,
                "metric": str(r["id"]),
                "process": _text(r.get("process")),
                "value": float(r["value"]),
                "unit": str(r["unit"]),
            }
            for r in values.to_dict("records")
            if _number(r["value"]) is not None
        ]
        added = 0
        if measured:
            added = len(
                conn.execute(
                    self._insert(schema.measurements, measured)
                    .on_conflict_do_nothing(index_elements=["run_id", "metric"])
                    .returning(schema.measurements.c.metric)
                ).all()
            )
        all_labels = _labels_by_run(conn, [run_pk]).get(run_pk, {})
        return bool(inserted), added, all_labels

    def _insert(self, table: Any, values: Any) -> Any:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table).values(values)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).values(values)

    # ------------------------------------------------------------------ reading
    def runs(self) -> pd.DataFrame:
        """One row per run: ``run``, ``source``, ``start_ns``, ``clock``, ``added_ns``,
        ``time_ns`` (as in :class:`Point`), ``labels`` (a dict), ``metrics`` (how many)."""
        import sqlalchemy as sa

        from tracetool._history import schema

        r, m = schema.runs, schema.measurements
        count = sa.select(m.c.run_id, sa.func.count().label("n")).group_by(m.c.run_id).subquery()
        query = (
            sa.select(r.c.id, r.c.run, r.c.source, r.c.start_ns, r.c.clock, r.c.added_ns, count.c.n)
            .outerjoin(count, count.c.run_id == r.c.id)
            .order_by(r.c.id)
        )
        rows, labels = self._reading(lambda conn: (conn.execute(query).all(), _labels_by_run(conn, None)))
        records = [
            {
                "run": row.run,
                "source": row.source,
                "start_ns": row.start_ns,
                "clock": row.clock,
                "added_ns": row.added_ns,
                "time_ns": _time_of(row.start_ns, row.clock, row.added_ns),
                "labels": labels.get(row.id, {}),
                "metrics": int(row.n or 0),
            }
            for row in rows
        ]
        frame = pd.DataFrame(
            records,
            columns=["run", "source", "start_ns", "clock", "added_ns", "time_ns", "labels", "metrics"],
        )
        return frame.sort_values(["time_ns", "run"], kind="stable").reset_index(drop=True)

    def metric_ids(self) -> dict[str, int]:
        """Every metric id stored, with the number of runs that have it."""
        import sqlalchemy as sa

        from tracetool._history import schema

        m = schema.measurements
        query = sa.select(m.c.metric, sa.func.count()).group_by(m.c.metric).order_by(m.c.metric)
        return self._reading(lambda conn: {str(k): int(n) for k, n in conn.execute(query)})

    def series(self, metric: str, where: Mapping[str, str] | None = None) -> tuple[str | None, list[Point]]:
        """The unit of ``metric`` (a canonical id, see :func:`canonical_id`) and every run's
        value of it, oldest first; ``where`` keeps the runs with those label values."""
        import sqlalchemy as sa

        from tracetool._history import schema

        r, m = schema.runs, schema.measurements
        query = (
            sa.select(
                r.c.id, r.c.run, r.c.start_ns, r.c.clock, r.c.added_ns, m.c.value, m.c.unit, m.c.process
            )
            .join(m, m.c.run_id == r.c.id)
            .where(m.c.metric == metric)
        )
        for i, (key, value) in enumerate((where or {}).items()):
            lab = schema.run_labels.alias(f"l{i}")
            query = query.join(lab, sa.and_(lab.c.run_id == r.c.id, lab.c.key == key, lab.c.value == value))

        def read(conn: Connection) -> tuple[Sequence[Any], dict[int, dict[str, str]]]:
            rows = conn.execute(query).all()
            return rows, _labels_by_run(conn, [row.id for row in rows])

        rows, labels = self._reading(read)
        points = [
            Point(
                row.run,
                _time_of(row.start_ns, row.clock, row.added_ns),
                labels.get(row.id, {}),
                float(row.value),
                row.process,
            )
            for row in rows
        ]
        points.sort(key=lambda p: (p.time_ns, p.run))
        unit = rows[0].unit if rows else None
        return unit, points


# ---------------------------------------------------------------------------------- helpers
def _labels_by_run(conn: Connection, run_ids: Iterable[int] | None) -> dict[int, dict[str, str]]:
    import sqlalchemy as sa

    from tracetool._history import schema

    lab = schema.run_labels
    query = sa.select(lab.c.run_id, lab.c.key, lab.c.value)
    out: dict[int, dict[str, str]] = {}
    if run_ids is None:
        chunks: list[list[int] | None] = [None]
    else:
        ids = sorted(set(run_ids))
        chunks = [ids[i : i + 500] for i in range(0, len(ids), 500)]
    for chunk in chunks:
        q = query if chunk is None else query.where(lab.c.run_id.in_(chunk))
        for run_id, key, value in conn.execute(q):
            out.setdefault(int(run_id), {})[str(key)] = str(value)
    return {k: dict(sorted(v.items())) for k, v in out.items()}


def _time_of(start_ns: int | None, clock: str | None, added_ns: int) -> int:
    return int(start_ns) if start_ns is not None and clock == "wall" else int(added_ns)


def _labels_of(value: Any) -> dict[str, str]:
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return {}
    try:
        found = json.loads(str(value))
    except json.JSONDecodeError:
        raise UsageError(f"labels {str(value)[:60]!r}: not a JSON object") from None
    if not isinstance(found, dict):
        raise UsageError(f"labels {str(value)[:60]!r}: not a JSON object")
    return {str(k): str(v) for k, v in found.items()}


def _text(value: Any) -> str | None:
    return (
        None
        if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value))
        else str(value)
    )


def _number(value: Any) -> float | None:
    f = None if _text(value) is None else float(value)
    return None if f is None or f != f else f


def _int(value: Any) -> int | None:
    return (
        None
        if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value))
        else int(value)
    )


def _shown(where: str) -> str:
    if not is_url(where):
        return where
    try:
        from sqlalchemy.engine import make_url

        return str(make_url(where).render_as_string(hide_password=True))
    except Exception:
        return where.split("://", 1)[0] + "://..."


def _is_busy(exc: BaseException) -> bool:
    """Whether SQLite refused because another connection holds a lock."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return "database is locked" in str(orig)


def _reason(exc: BaseException) -> str:
    """A database error as one short line (the driver's first line, no SQL, no parameters)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _engine(where: str) -> Engine:
    try:
        import sqlalchemy as sa
    except ImportError:
        raise UsageError("the run history needs SQLAlchemy: pip install 'sqlalchemy>=2'") from None
    if where.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        return _postgres_engine(where)
    if where.startswith("sqlite://"):
        url = where
    elif is_url(where):
        raise UsageError(
            f"{_shown(where)}: the history is a SQLite file path, sqlite:///PATH or postgresql://..."
        )
    else:
        folder = os.path.dirname(os.path.abspath(where))
        if not os.path.isdir(folder):
            raise UsageError(f"{where}: no such directory {folder}")
        url = "sqlite:///" + os.path.abspath(where)
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_SECONDS})
    sa.event.listen(engine, "connect", _sqlite_connect)
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own BEGIN (deferred, only before writes) is switched off: every transaction
    # begins IMMEDIATE in _sqlite_begin, so a writer holds the write lock from its first read.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _postgres_engine(where: str) -> Engine:
    import sqlalchemy as sa

    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise UsageError(f"a PostgreSQL history needs the scale extra: {SCALE_EXTRA}") from None
    url = sa.engine.make_url(where)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
