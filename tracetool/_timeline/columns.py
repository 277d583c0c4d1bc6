"""Access to the rows of a trace for the timeline builder: per-row thread and process codes,
argument values, event selection with ``where`` filters, and issues with file and line."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tracetool._model.trace import Trace
from tracetool._timeline.frames import typed
from tracetool._timeline.rules import Rules


class EventColumns:
    """The columns of a trace, as the span, instant and phase rules read them."""

    def __init__(self, trace: Trace, r: Rules) -> None:
        self.trace = trace
        self.rules = r
        self.n = len(trace)
        self.ts = trace.ts
        self.row_thread = trace.row_thread
        th = trace.threads
        self.t_proc = th["process"].cat.codes.to_numpy().astype(np.int32)
        self.proc_labels = [str(x) for x in th["process"].cat.categories]
        self._row_process: np.ndarray | None = None
        self.t_tid = th["tid"]
        # a thread nothing named has no name (None), never a placeholder
        self.t_name = th["name"].astype(object).where(th["name"].notna(), None).to_numpy()
        self.t_role = th["role"].astype(str).to_numpy()
        self.threads_known = trace.has_tids
        self.has_time = trace.has_time
        self.paths = trace.inputs["path"].astype(str).tolist() if len(trace.inputs) else []
        self._scope_rows: dict[tuple[str, int], np.ndarray] = {}
        self.issues: list[tuple[str, str, int, str]] = []
        self.open_spans: list[tuple[np.ndarray, list[str]]] = []  # begin rows, messages
        self.notes: list[str] = []

    @property
    def row_process(self) -> np.ndarray:
        """Process index per row (built on first use: one gather over every row)."""
        if self._row_process is None:
            if len(self.proc_labels) <= 1:
                self._row_process = np.zeros(self.n, dtype=np.int32)
            else:
                self._row_process = self.t_proc[self.row_thread]
        return self._row_process

    # -- helpers -----------------------------------------------------------------------------
    def scope_codes(self, scope: str, rows: np.ndarray) -> np.ndarray:
        """Thread (or process) code of each row."""
        return self.row_thread[rows] if scope == "thread" else self.row_process[rows]

    def _rows_of(self, scope: str, code: int) -> np.ndarray:
        """Row numbers of one thread (or process), ascending."""
        got = self._scope_rows.get((scope, code))
        if got is None:
            codes = self.row_thread if scope == "thread" else self.row_process
            got = np.flatnonzero(codes == code)
            self._scope_rows[(scope, code)] = got
        return got

    def last_row_before(self, scope: str, codes: np.ndarray, limit: np.ndarray) -> np.ndarray:
        """Per query, the last row of that thread/process with a row number below ``limit``
        (the thread's first row when it has none below, 0 when it has no rows)."""
        out = np.zeros(len(codes), dtype=np.int64)
        if len(codes) <= _LOOK_BACK_QUERIES:
            # A few queries: the row is usually close before the limit, so look back from there
            # instead of listing every row of the thread.
            by_row = self.row_thread if scope == "thread" else self.row_process
            found = [_look_back(by_row, int(c), int(lim)) for c, lim in zip(codes, limit, strict=True)]
            if all(f is not None for f in found):
                return np.asarray(found, dtype=np.int64)
        # Many queries concern a few threads; one pass per thread beats sorting every row.
        for code in np.unique(codes).tolist():
            sel = codes == code
            rows = self._rows_of(scope, int(code))
            idx = np.searchsorted(rows, limit[sel]) - 1
            out[sel] = rows[np.maximum(idx, 0)] if len(rows) else 0
        return out

    def where_mask(self, rows: np.ndarray, where: Mapping[str, tuple[str, ...]]) -> np.ndarray:
        """Rows whose arguments take one of the allowed values (rows without the argument pass)."""
        keep = np.ones(len(rows), dtype=bool)
        for arg, allowed in where.items():
            vals, has = self.arg_values(rows, arg)
            ok = vals.astype("string").isin(list(allowed)).fillna(False).to_numpy(dtype=bool)
            keep &= ok | ~has
        return keep

    def arg_values(self, rows: np.ndarray, arg: str) -> tuple[pd.Series, np.ndarray]:
        """Values of argument ``arg`` at ``rows`` (positional) and whether the event has it."""
        out = pd.Series(pd.NA, index=pd.RangeIndex(len(rows)), dtype=object)
        has = np.zeros(len(rows), dtype=bool)
        if not len(rows):
            return out, has
        codes = self.trace.name_codes[rows]
        names = self.trace.event_names
        for code in np.unique(codes).tolist():
            f = self.trace.fields(names[code])
            if arg not in f.columns:
                continue
            sel = np.flatnonzero(codes == code)
            vals = f[arg].reindex(rows[sel])
            out.iloc[sel] = vals.astype(object).where(vals.notna(), None).to_numpy()
            has[sel] = True
        return out, has

    def typed_column(self, rows: np.ndarray, arg: str) -> pd.Series:
        """Values of argument ``arg`` at ``rows`` as a typed column (Int64 or strings)."""
        vals, _ = self.arg_values(rows, arg)
        return typed(vals)

    def location(self, rows: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Input file and line of each row."""
        src = self.trace.source[rows].astype(np.int64)
        return [self.paths[s] for s in src.tolist()], self.trace.line[rows]

    def add_issues(self, kind: str, rows: np.ndarray, messages: Sequence[str] | str) -> None:
        """Records an issue of ``kind`` at each row, with its file and line."""
        if not len(rows):
            return
        paths, lines = self.location(rows)
        msgs = [messages] * len(rows) if isinstance(messages, str) else list(messages)
        self.issues.extend(zip([kind] * len(rows), paths, lines.tolist(), msgs, strict=True))

    def base_frame(self, rows: np.ndarray, role_hint: str | None) -> dict[str, Any]:
        """process, tid, thread and role of each row (``role_hint`` for threads of unknown role)."""
        t = self.row_thread[rows]
        role = self.t_role[t]
        if role_hint:
            role = np.where(role == "unknown", role_hint, role)
        return {
            "process": np.array(self.proc_labels, dtype=object)[self.t_proc[t]]
            if len(self.proc_labels)
            else np.zeros(0, dtype=object),
            "tid": pd.array(self.t_tid.to_numpy(dtype=object)[t] if len(t) else [], dtype="Int64"),
            "thread": self.t_name[t].astype(object),
            "role": role.astype(object),
        }

    def render_names(
        self, template: str, rows: np.ndarray, extra: Mapping[str, pd.Series] | None = None
    ) -> np.ndarray:
        """Span or instant names from a template: ``{arg}``, ``{a|b}`` (first present),
        ``{arg:table}`` (mapped through a [names] table); missing values read ``?``."""
        parts = re.split(r"(\{[^}]*\})", template)
        out = pd.Series([""] * len(rows), dtype=object)
        for part in parts:
            if not part:
                continue
            if not (part.startswith("{") and part.endswith("}")):
                out = out + part
                continue
            spec = part[1:-1]
            table = None
            if ":" in spec:
                spec, table = spec.split(":", 1)
            value = pd.Series([pd.NA] * len(rows), dtype=object)
            for alt in spec.split("|"):
                if extra is not None and alt in extra:
                    v = extra[alt].reset_index(drop=True).astype(object)
                else:
                    v, _ = self.arg_values(rows, alt)
                value = value.where(value.notna(), v)
            text = value.map(lambda x: "?" if x is pd.NA or x is None else str(x))
            if table:
                mapping = self.rules.names.get(table, {})
                text = text.map(lambda x, m=mapping: m.get(x, x))
            out = out + text
        return out.to_numpy(dtype=object)

    # -- spans -------------------------------------------------------------------------------
    def event_rows(self, events: Sequence[str], where: Mapping[str, tuple[str, ...]]) -> np.ndarray:
        """Rows of ``events`` that pass the ``where`` filter."""
        rows = self.trace.rows(events)
        if where and len(rows):
            rows = rows[self.where_mask(rows, where)]
        return rows


_LOOK_BACK_QUERIES = 64
_LOOK_BACK_ROWS = 1 << 20


def _look_back(by_row: np.ndarray, code: int, limit: int) -> int | None:
    """The last row before ``limit`` whose code is ``code``; None when none is within
    ``_LOOK_BACK_ROWS`` rows (the caller lists the rows)."""
    return nearest_row(by_row, code, limit, -1, _LOOK_BACK_ROWS)


def nearest_row(by_row: np.ndarray, code: int, pos: int, step: int, reach: int | None = None) -> int | None:
    """The row nearest ``pos`` whose code is ``code``: the last one before it (``step`` -1) or
    the first one at or after it (``step`` 1), found in windows that grow from ``pos``; None
    when there is none (within ``reach`` rows, when given)."""
    n = len(by_row)
    window = 4096
    if step < 0:
        hi = min(pos, n)
        while hi > 0 and (reach is None or pos - hi < reach):
            lo = max(0, hi - window)
            hit = np.flatnonzero(by_row[lo:hi] == code)
            if len(hit):
                return lo + int(hit[-1])
            hi, window = lo, window * 4
        return None
    lo = max(pos, 0)
    while lo < n and (reach is None or lo - pos < reach):
        hi = min(n, lo + window)
        hit = np.flatnonzero(by_row[lo:hi] == code)
        if len(hit):
            return lo + int(hit[0])
        lo, window = hi, window * 4
    return None
