"""Building the timeline of a trace from the rules (see :mod:`tracetool._timeline.rules`).

Per rule, the begin and end rows are sorted by (pairing group, row) and each begin finds its
end by ordinal arithmetic (:func:`tracetool._timeline.pairing.pair_rows`), never by a Python
loop over events. Spans whose end never came (trace cut, thread killed, error path) are kept
with ``closed=False`` and end at the last event of their thread (or process). Whatever looks
inconsistent (ends without a begin, begins left open, lines of one thread out of time order)
is listed in ``issues`` with file and line. A span still open where the trace of a process
ends is an inconsistency only when the process completed the migration after the span began;
otherwise the migration failed or was cancelled (QEMU's error paths skip the ends), or the
trace ended first (the process was killed, or the trace cut): it is listed in ``open_at_end``.

    >>> tl = build_timeline(trace)
    >>> tl.spans[tl.spans.kind == "device"][["name", "duration_us"]]
"""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from tracetool._model.trace import Trace
from tracetool._timeline.columns import EventColumns, nearest_row
from tracetool._timeline.frames import (
    INSTANT_COLUMNS,
    ISSUE_COLUMNS,
    SPAN_COLUMNS,
    concat,
    dict_rows,
    fill_idstr,
    typed,
)
from tracetool._timeline.pairing import Pairs, pair_rows
from tracetool._timeline.result import Timeline
from tracetool._timeline.rules import InstantRule, PhaseRule, Rules, SpanRule, rules

_CACHE: weakref.WeakKeyDictionary[Trace, Timeline] = weakref.WeakKeyDictionary()
FINAL_STATES = ("completed", "failed", "cancelled")
"""Migration states that end a migration; spans open when it completed should have closed."""


def build_timeline(trace: Trace, rule_set: Rules | None = None) -> Timeline:
    """The timeline of ``trace`` (cached per Trace object for the shipped rules)."""
    if rule_set is None:
        cached = _CACHE.get(trace)
        if cached is not None:
            return cached
    tl = _Builder(trace, rule_set or rules()).build()
    if rule_set is None:
        _CACHE[trace] = tl
    return tl


class _Builder(EventColumns):
    """One build of one trace's timeline."""

    def group_codes(self, rule: SpanRule, b: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        parts_b = [self.scope_codes(rule.scope, b).astype(str)]
        parts_e = [self.scope_codes(rule.scope, e).astype(str)]
        if rule.begin_prefix:
            names = self.trace.event_names
            parts_b.append(
                np.array(
                    [names[c][len(rule.begin_prefix) :] for c in self.trace.name_codes[b].tolist()],
                    dtype=object,
                ).astype(str)
            )
            parts_e.append(
                np.array(
                    [names[c][len(rule.end_prefix or "") :] for c in self.trace.name_codes[e].tolist()],
                    dtype=object,
                ).astype(str)
            )
        for k in rule.key:
            parts_b.append(self.arg_values(b, k)[0].astype(str).to_numpy().astype(str))
            parts_e.append(self.arg_values(e, k)[0].astype(str).to_numpy().astype(str))
        if len(parts_b) == 1:
            codes = np.concatenate([self.scope_codes(rule.scope, b), self.scope_codes(rule.scope, e)])
            return codes[: len(b)], codes[len(b) :]
        kb = pd.Series(parts_b[0])
        ke = pd.Series(parts_e[0])
        for pb, pe in zip(parts_b[1:], parts_e[1:], strict=True):
            kb = kb + "\x1f" + pd.Series(pb)
            ke = ke + "\x1f" + pd.Series(pe)
        codes, _ = pd.factorize(pd.concat([kb, ke], ignore_index=True))
        codes = np.asarray(codes, dtype=np.int64)
        return codes[: len(b)], codes[len(b) :]

    def span_rule(self, rule: SpanRule) -> pd.DataFrame | None:
        names = self.trace.event_names
        if rule.begin_prefix:
            begin_events = [x for x in names if x.startswith(rule.begin_prefix)]
            end_events = [x for x in names if x.startswith(rule.end_prefix or "\0")]
        else:
            begin_events, end_events = list(rule.begin), list(rule.end)
        b = self.event_rows(begin_events, rule.begin_where)
        if not len(b):
            return None
        e = self.event_rows(end_events, rule.end_where)
        gb, ge = self.group_codes(rule, b, e)
        pairs = pair_rows(b, e, gb, ge, rule.repeat)
        alt = rule.threadless
        if alt is not None and not self.threads_known and len(self.trace.rows(list(alt.end))):
            pairs = self.prefer(pairs, alt, b)
        b_rows, e_rows, cut = pairs.begin_rows, pairs.end_rows, pairs.cut_rows
        closed = e_rows >= 0
        scope_of = self.scope_codes(rule.scope, b_rows)
        limit = np.where(cut >= 0, cut, self.n)
        fallback_end = self.last_row_before(rule.scope, scope_of, limit) if (~closed).any() else b_rows
        end_at = np.where(closed, e_rows, np.maximum(fallback_end, b_rows))
        frame = self.base_frame(b_rows, rule.role)
        frame["kind"] = rule.kind
        attrs = {col: self.typed_column(b_rows, arg) for col, arg in rule.attrs.items()}
        if rule.begin_prefix:
            attrs["command"] = pd.Series(
                [names[c][len(rule.begin_prefix) :] for c in self.trace.name_codes[b_rows].tolist()],
                dtype="string",
            )
        frame["name"] = self.render_names(rule.name, b_rows, attrs)
        start = self.ts[b_rows]
        end = self.ts[end_at]
        frame["start_ns"] = start
        frame["end_ns"] = end
        timed = (start != NO_TIME) & (end != NO_TIME)
        frame["duration_us"] = np.where(timed, (end - start) / 1000.0, np.nan)
        frame["closed"] = closed
        frame["begin_row"] = b_rows
        frame["end_row"] = pd.array(np.where(closed, e_rows, 0), dtype="Int64")
        out = pd.DataFrame(frame)
        out.loc[~closed, "end_row"] = pd.NA
        for col, values in attrs.items():
            out[col] = values.array
        if rule.end_attrs and closed.any():
            er = e_rows[closed]
            for col, arg in rule.end_attrs.items():
                vals = pd.Series(pd.NA, index=out.index, dtype=object)
                vals.iloc[np.flatnonzero(closed)] = self.arg_values(er, arg)[0].to_numpy(dtype=object)
                out[col] = typed(vals).array
        if rule.detail:
            self.detail_attrs(rule, out, end_at)
        self.span_issues(rule, out, pairs, end_events)
        return out

    def prefer(self, pairs: Pairs, alt: SpanRule, b: np.ndarray) -> Pairs:
        """Begins the alternative pairing closes take its end; the others keep the default."""
        e = self.event_rows(list(alt.end), alt.end_where)
        gb, ge = self.group_codes(alt, b, e)
        other = pair_rows(b, e, gb, ge, alt.repeat)
        o_order = np.argsort(other.begin_rows)
        o_rows, o_end = other.begin_rows[o_order], other.end_rows[o_order]
        idx = np.minimum(np.searchsorted(o_rows, pairs.begin_rows), max(len(o_rows) - 1, 0))
        found = (o_rows[idx] == pairs.begin_rows) & (o_end[idx] >= 0) if len(o_rows) else idx < 0
        end = np.where(found, o_end[idx] if len(o_rows) else -1, pairs.end_rows)
        cut = np.where(found, -1, pairs.cut_rows)
        return Pairs(pairs.begin_rows, end.astype(np.int64), cut.astype(np.int64), pairs.orphan_ends)

    def detail_attrs(self, rule: SpanRule, out: pd.DataFrame, end_at: np.ndarray) -> None:
        d = self.trace.rows(list(rule.detail))
        if not len(d):
            return
        dcodes = self.scope_codes(rule.scope, d)
        dkeys = dcodes * (self.n + 1) + d
        order = np.argsort(dkeys, kind="stable")
        dkeys, d = dkeys[order], d[order]
        b = out["begin_row"].to_numpy()
        sc = self.scope_codes(rule.scope, b)
        idx = np.searchsorted(dkeys, sc * (self.n + 1) + b, side="right")
        ok = idx < len(dkeys)
        idx = np.minimum(idx, len(dkeys) - 1)
        ok &= dkeys[idx] <= sc * (self.n + 1) + end_at
        hit = d[idx[ok]]
        for col, arg in rule.detail_attrs.items():
            vals = pd.Series(pd.NA, index=out.index, dtype=object)
            vals.iloc[np.flatnonzero(ok)] = self.arg_values(hit, arg)[0].to_numpy(dtype=object)
            out[col] = typed(vals).array

    def span_issues(self, rule: SpanRule, out: pd.DataFrame, pairs: Pairs, end_events: list[str]) -> None:
        what = f"{rule.kind} '{{}}'"
        open_ = ~out["closed"].to_numpy()
        if open_.any():
            rows = out["begin_row"].to_numpy()[open_]
            superseded = pairs.cut_rows[open_] >= 0
            ends = "/".join(end_events) or "end event"
            msgs = [
                (
                    what.format(nm)
                    + (
                        f": begun again before {ends}"
                        if sup
                        else f": no {ends} follows (trace or thread ends first)"
                    )
                )
                for nm, sup in zip(out["name"].to_numpy()[open_].tolist(), superseded.tolist(), strict=True)
            ]
            self.add_issues(
                "unclosed", rows[superseded], [m for m, s in zip(msgs, superseded, strict=True) if s]
            )
            self.open_spans.append(
                (rows[~superseded], [m for m, s in zip(msgs, superseded, strict=True) if not s])
            )
        if rule.warns_orphans and len(pairs.orphan_ends):
            begins = "/".join(rule.begin) or f"{rule.begin_prefix}*"
            self.add_issues(
                "unmatched-end", pairs.orphan_ends, f"{rule.kind} end without a preceding {begins}"
            )

    def inherit(self, spans: pd.DataFrame, rule: SpanRule) -> None:
        for col, kind in rule.inherit.items():
            mine = (spans["kind"] == rule.kind).to_numpy()
            src = spans[(spans["kind"] == kind).to_numpy()]
            if not mine.any() or not len(src) or col not in src:
                continue
            scope = rule.scope
            s_begin = src["begin_row"].to_numpy()
            skeys = self.scope_codes(scope, s_begin) * (self.n + 1) + s_begin
            order = np.argsort(skeys, kind="stable")
            skeys = skeys[order]
            s_end = src["end_row"].fillna(self.n).to_numpy(dtype=np.int64)[order]
            s_val = src[col].to_numpy(dtype=object)[order]
            b = spans.loc[mine, "begin_row"].to_numpy()
            q = self.scope_codes(scope, b) * (self.n + 1) + b
            idx = np.searchsorted(skeys, q, side="right") - 1
            ok = idx >= 0
            idx = np.maximum(idx, 0)
            ok &= (skeys[idx] // (self.n + 1) == q // (self.n + 1)) & (s_end[idx] >= b)
            vals = pd.Series(pd.NA, index=range(len(b)), dtype=object)
            vals[ok] = s_val[idx[ok]]
            if col not in spans:
                spans[col] = pd.Series(pd.NA, index=spans.index, dtype=object)
            merged = spans[col].astype(object).to_numpy(copy=True)
            merged[mine] = vals.to_numpy()
            spans[col] = typed(pd.Series(merged, index=spans.index)).array

    def share_roles(self, spans: pd.DataFrame) -> None:
        """Without thread ids, a role is ambiguous while another thread does the same work."""
        for share in self.rules.shared_roles:
            during = spans[(spans["kind"] == "phase") & (spans["name"] == share["phase"])]
            for p in dict_rows(during):
                stop = self.n if p["end_row"] is None else int(p["end_row"])
                hit = (
                    (spans["process"] == p["process"])
                    & (spans["kind"] != "phase")
                    & (spans["role"] == share["role"])
                    & (spans["begin_row"] > p["begin_row"])
                    & (spans["begin_row"] < stop)
                )
                spans.loc[hit, "role"] = share["becomes"]

    # -- instants ----------------------------------------------------------------------------
    def instant_rule(self, rule: InstantRule) -> pd.DataFrame | None:
        rows = self.event_rows(rule.events, rule.where)
        if not len(rows):
            return None
        frame = self.base_frame(rows, rule.role)
        frame["kind"] = rule.kind
        frame["name"] = self.render_names(rule.name, rows)
        frame["ts_ns"] = self.ts[rows]
        frame["row"] = rows
        out = pd.DataFrame(frame)
        for col, arg in rule.attrs.items():
            out[col] = self.typed_column(rows, arg).array
        return out

    # -- phases ------------------------------------------------------------------------------
    def phases(self) -> pd.DataFrame | None:
        procs = self.trace.processes
        if not len(procs):
            return None
        side_of = {str(r.label): (r.side if isinstance(r.side, str) else None) for r in procs.itertuples()}
        frames = []
        for p, label in enumerate(self.proc_labels):
            side = side_of.get(label)
            in_proc = self.row_process == p
            cutoff = self.phase_cutoff(in_proc)
            for rule in self.rules.phases:
                if rule.side != side:
                    continue
                row = self.phase(rule, in_proc, cutoff)
                if row is not None:
                    frames.append((*row, rule.role or "unknown"))
        if not frames:
            return None
        rows = np.array([f[0] for f in frames], dtype=np.int64)
        ends = np.array([f[1] for f in frames], dtype=np.int64)
        closed = np.array([f[2] for f in frames], dtype=bool)
        frame = self.base_frame(rows, None)
        hints = np.array([f[4] for f in frames], dtype=object)
        frame["role"] = np.where(frame["role"] == "unknown", hints, frame["role"])
        frame["kind"] = "phase"
        frame["name"] = np.array([f[3] for f in frames], dtype=object)
        frame["start_ns"] = self.ts[rows]
        frame["end_ns"] = self.ts[ends]
        timed = (self.ts[rows] != NO_TIME) & (self.ts[ends] != NO_TIME)
        frame["duration_us"] = np.where(timed, (self.ts[ends] - self.ts[rows]) / 1000.0, np.nan)
        frame["closed"] = closed
        frame["begin_row"] = rows
        out = pd.DataFrame(frame)
        out["end_row"] = pd.array(np.where(closed, ends, 0), dtype="Int64")
        out.loc[~closed, "end_row"] = pd.NA
        return out

    def phase_cutoff(self, in_proc: np.ndarray) -> int:
        """The row after which no phase of the process starts ([phase_cutoff]: where COLO
        takes over from the migration), or the end of the trace."""
        if not self.rules.phase_cutoff:
            return self.n
        rows = self.trace.rows(self.rules.phase_cutoff)
        rows = rows[in_proc[rows]] if len(rows) else rows
        if len(rows) and self.rules.phase_cutoff_where:
            rows = rows[self.where_mask(rows, self.rules.phase_cutoff_where)]
        return int(rows[0]) if len(rows) else self.n

    def phase(self, rule: PhaseRule, in_proc: np.ndarray, cutoff: int) -> tuple[int, int, bool, str] | None:
        starts = self.trace.rows(rule.start)
        starts = starts[in_proc[starts] & (starts <= cutoff)] if len(starts) else starts
        if len(starts) and rule.start_where:
            starts = starts[self.where_mask(starts, rule.start_where)]
        if not len(starts):
            return None
        start = int(starts[0] if rule.start_pick == "first" else starts[-1])
        if rule.instant:
            return start, start, True, rule.name
        after = int(starts[-1]) if rule.end_after == "last-start" else start
        thread = self.row_thread[start]
        for events, where in ((rule.end, rule.end_where), (rule.end_fallback, rule.end_fallback_where)):
            if not events:
                continue
            ends = self.trace.rows(events)
            ends = ends[(ends > after) & in_proc[ends]] if len(ends) else ends
            if rule.end_thread == "same" and len(ends):
                ends = ends[self.row_thread[ends] == thread]
            if len(ends) and where:
                ends = ends[self.where_mask(ends, where)]
            if len(ends):
                return start, int(ends[0] if rule.end_pick == "first" else ends[-1]), True, rule.name
        scope = "thread" if rule.end_thread == "same" else "process"
        code = self.row_thread[start] if scope == "thread" else self.row_process[start]
        last = int(self.last_row_before(scope, np.array([code]), np.array([self.n]))[0])
        self.open_spans.append(
            (np.array([start]), [f"phase '{rule.name}': no {'/'.join(rule.end)} follows in this process"])
        )
        return start, max(last, start), False, rule.name

    # -- consistency of the input ------------------------------------------------------------
    def order_issues(self) -> None:
        if not self.threads_known or self.n < 2:
            if self.n and not self.threads_known:
                self.notes.append(
                    "no thread ids in the trace (QEMU >= 10.1 log lines, logs without "
                    "-msg timestamp=on and the simple backend carry none): spans are attributed "
                    "to the one unknown thread, with the role their events imply; record with "
                    "-d tid -D trace.%d for one file per thread, or use ftrace/LTTng"
                )
            return
        # Within one thread of one input, time order must keep the file's line order; rows the
        # stable time sort moved ahead of an earlier line of their own thread stepped back.
        if len(self.paths) <= 1:
            key = self.row_thread
        else:
            key = self.row_thread.astype(np.int64) * 4096 + self.trace.source
        moved = self.trace.moved_rows
        if moved is not None and len(moved) <= _NEAR_MOVED_MAX:
            # Rows the time sort left in place keep their file order, so every back-step has a
            # moved row on one side: only the neighbours of those need a look.
            back, up = back_steps_near(key, self.trace.line, moved)
            back_rows, above = [back], [up]
        else:
            back_rows, above = _back_steps(key, self.trace.line, self.n)
        rows_all = np.concatenate(back_rows) if back_rows else np.zeros(0, np.int64)
        if len(rows_all):
            # in time order, row ``back`` comes from a later line than the row after it
            above_all = np.concatenate(above)
            order_all = np.argsort(rows_all, kind="stable")
            self.add_issues(
                "out-of-order",
                rows_all[order_all],
                [
                    f"timestamp earlier than line {int(a)} above it (same thread)"
                    for a in above_all[order_all].tolist()
                ],
            )

    def classify_open(self, instants: pd.DataFrame) -> pd.DataFrame:
        """Spans left open: an inconsistency ("unclosed") when their process completed the
        migration after they began; otherwise not the input's fault (returned, same columns as
        issues): the migration failed or was cancelled after they began (QEMU's error paths skip
        the ends), or the trace of the process ends first (killed, or the trace cut)."""
        nproc = max(len(self.proc_labels), 1)
        completed = np.full(nproc, -1, dtype=np.int64)  # per process: the last such row
        aborted = np.full(nproc, -1, dtype=np.int64)
        aborted_as = [""] * nproc
        if len(instants):
            code = {label: i for i, label in enumerate(self.proc_labels)}
            states = instants[(instants["kind"] == "state") & instants["name"].isin(FINAL_STATES)]
            for proc, name, row in zip(
                states["process"].tolist(), states["name"].tolist(), states["row"].tolist(), strict=True
            ):
                p = code.get(str(proc))
                if p is None:
                    continue
                if name == "completed":
                    completed[p] = max(completed[p], int(row))
                elif int(row) > aborted[p]:
                    aborted[p], aborted_as[p] = int(row), str(name)
        at_end: list[tuple[str, str, int, str]] = []
        for rows, msgs in self.open_spans:
            if not len(rows):
                continue
            proc = self.row_process[rows]
            inconsistent = completed[proc] > rows
            self.add_issues(
                "unclosed", rows[inconsistent], [m for m, i in zip(msgs, inconsistent, strict=True) if i]
            )
            kept = np.flatnonzero(~inconsistent)
            if len(kept):
                paths, lines = self.location(rows[kept])
                left = [
                    msgs[k]
                    + (
                        f" (the migration ended '{aborted_as[proc[k]]}')"
                        if aborted[proc[k]] > rows[k]
                        else ""
                    )
                    for k in kept.tolist()
                ]
                at_end.extend(zip(["open-at-end"] * len(kept), paths, lines.tolist(), left, strict=True))
        return pd.DataFrame(at_end, columns=ISSUE_COLUMNS)

    # -- all ---------------------------------------------------------------------------------
    def build(self) -> Timeline:
        span_frames: list[pd.DataFrame] = []
        for rule in self.rules.spans:
            f = self.span_rule(rule)
            if f is not None:
                span_frames.append(f)
        ph = self.phases()
        if ph is not None:
            span_frames.append(ph)
        spans = concat(span_frames, SPAN_COLUMNS)
        for rule in self.rules.spans:
            if rule.inherit:
                self.inherit(spans, rule)
        fill_idstr(spans)
        if not self.threads_known:
            self.share_roles(spans)
        if len(spans):
            spans = spans.sort_values(["start_ns", "begin_row"], kind="stable").reset_index(drop=True)
        inst_frames = [f for f in (self.instant_rule(r) for r in self.rules.instants) if f is not None]
        instants = concat(inst_frames, INSTANT_COLUMNS)
        if len(instants):
            instants = instants.sort_values(["ts_ns", "row"], kind="stable").reset_index(drop=True)
        open_at_end = self.classify_open(instants)
        self.order_issues()
        for w in self.trace.warnings:
            self.issues.append(("input", w.path, int(w.line), w.message))
        if not self.has_time and self.n:
            self.notes.append(
                "the trace has no timestamps (QEMU without -msg timestamp=on): "
                "spans keep their order but have no durations"
            )
        issues = pd.DataFrame(self.issues, columns=ISSUE_COLUMNS)
        return Timeline(
            spans=spans,
            instants=instants,
            issues=issues,
            open_at_end=open_at_end,
            notes=self.notes,
            has_time=self.has_time,
            threads_known=self.threads_known,
        )


_NEAR_MOVED_MAX = 20_000
"""Up to this many moved rows their neighbours are looked at one by one; above, every thread's
rows are walked."""


def _back_steps(key: np.ndarray, lines: np.ndarray, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Rows followed (in time order) by a row of the same key from an earlier line, and that
    line: every group of rows walked in order."""
    groups = np.flatnonzero(np.bincount(key)) if n else key[:0]
    back_rows: list[np.ndarray] = []
    above: list[np.ndarray] = []
    if len(groups) <= 64:
        for g in groups.tolist():
            rows = np.flatnonzero(key == g)
            ln = lines[rows]
            b = np.flatnonzero(ln[1:] < ln[:-1])
            back_rows.append(rows[b])
            above.append(ln[b + 1])
    else:
        order = np.argsort(key, kind="stable")
        k = key[order]
        ln = lines[order]
        b = np.flatnonzero((k[1:] == k[:-1]) & (ln[1:] < ln[:-1]))
        back_rows.append(order[b])
        above.append(ln[b + 1])
    return back_rows, above


def back_steps_near(key: np.ndarray, lines: np.ndarray, moved: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What ``_back_steps`` finds, looking only at each moved row and the rows of its key right
    before and after it."""
    pairs: set[tuple[int, int]] = set()
    for m in moved.tolist():
        code = int(key[m])
        before = nearest_row(key, code, m, -1)
        after = nearest_row(key, code, m + 1, 1)
        if before is not None:
            pairs.add((before, m))
        if after is not None:
            pairs.add((m, after))
    steps = sorted((x, int(lines[y])) for x, y in pairs if lines[x] > lines[y])
    return np.array([x for x, _ in steps], dtype=np.int64), np.array([a for _, a in steps], dtype=np.int64)
