"""Per-thread timeline of a trace: spans (begin/end pairs), instants and migration phases.

What pairs with what is data (``tracetool/_timeline/spans.toml``); this module applies the rules with numpy
over whole event columns: per rule, the begin and end rows are sorted by (pairing group, row)
and each begin finds its end by ordinal arithmetic, never by a Python loop over events. Spans
whose end never came (trace cut, thread killed, error path) are kept with ``closed=False`` and
end at the last event of their thread (or process). Whatever looks inconsistent (ends without a
begin, begins left open, lines of one thread out of time order) is listed in ``issues`` with
file and line.

    >>> tl = build_timeline(trace)
    >>> tl.spans[tl.spans.kind == "device"][["name", "duration_us"]]
    >>> enclosing(tl, "dst", 22774, bql_hold_starts)
"""

from __future__ import annotations

import re
import tomllib
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from tracetool._json import records as json_records
from tracetool._model.trace import Trace

SPAN_COLUMNS = [
    "process",
    "tid",
    "thread",
    "role",
    "kind",
    "name",
    "start_ns",
    "end_ns",
    "duration_us",
    "closed",
    "begin_row",
    "end_row",
]
"""Fixed columns of ``Timeline.spans``; attribute columns (idstr, section_id...) follow."""
INSTANT_COLUMNS = ["process", "tid", "thread", "role", "kind", "name", "ts_ns", "row"]
"""Fixed columns of ``Timeline.instants``; attribute columns follow."""
ISSUE_COLUMNS = ["kind", "path", "line", "message"]
DEFAULT_KINDS = ("device", "section", "phase")


# ---------------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class SpanRule:
    """One [[span]] table of spans.toml."""

    kind: str
    name: str
    begin: tuple[str, ...] = ()
    end: tuple[str, ...] = ()
    begin_prefix: str | None = None
    end_prefix: str | None = None
    scope: str = "thread"
    key: tuple[str, ...] = ()
    repeat: str = "restart"
    orphan_ends: str | None = None
    attrs: Mapping[str, str] = field(default_factory=dict)
    end_attrs: Mapping[str, str] = field(default_factory=dict)
    begin_where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    end_where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    detail: tuple[str, ...] = ()
    detail_attrs: Mapping[str, str] = field(default_factory=dict)
    inherit: Mapping[str, str] = field(default_factory=dict)
    role: str | None = None
    threadless: SpanRule | None = None

    @property
    def warns_orphans(self) -> bool:
        """Whether end events that close nothing are reported."""
        if self.orphan_ends is not None:
            return self.orphan_ends == "warn"
        return not (set(self.begin) & set(self.end)) and self.begin_prefix is None


@dataclass(frozen=True)
class InstantRule:
    """One [[instant]] table of spans.toml."""

    kind: str
    name: str
    events: tuple[str, ...]
    attrs: Mapping[str, str] = field(default_factory=dict)
    where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    role: str | None = None


@dataclass(frozen=True)
class PhaseRule:
    """One [[phase]] table of spans.toml."""

    side: str
    name: str
    start: tuple[str, ...]
    end: tuple[str, ...] = ()
    start_where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    end_where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    end_fallback: tuple[str, ...] = ()
    end_fallback_where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    start_pick: str = "first"
    end_pick: str = "first"
    end_after: str = "start"
    end_thread: str = "any"
    instant: bool = False
    role: str | None = None


@dataclass(frozen=True)
class WireRule:
    """One [[wire]] table of spans.toml: events that pair across the migration channel."""

    name: str
    sender: str  # "src" or "dst"
    send: tuple[str, ...]
    receive: tuple[str, ...]
    key: str


@dataclass(frozen=True)
class Rules:
    """All of spans.toml, compiled."""

    spans: tuple[SpanRule, ...]
    instants: tuple[InstantRule, ...]
    phases: tuple[PhaseRule, ...]
    names: Mapping[str, Mapping[str, str]]
    outcome: Mapping[str, tuple[str, ...]]
    load_thread: Mapping[str, Any]
    ram: Mapping[str, int]
    shared_roles: tuple[Mapping[str, str], ...] = ()
    wires: tuple[WireRule, ...] = ()
    phase_cutoff: tuple[str, ...] = ()
    phase_cutoff_where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _where(d: Mapping[str, Any] | None) -> dict[str, tuple[str, ...]]:
    return {k: tuple(str(x) for x in v) for k, v in (d or {}).items()}


def _tuple(v: Any) -> tuple[str, ...]:
    if v is None:
        return ()
    return (v,) if isinstance(v, str) else tuple(v)


def parse_rules(text: str) -> Rules:
    """Compiles the text of a spans.toml file (raises ValueError on unknown settings)."""
    data: dict[str, Any] = tomllib.loads(text)
    spans = []
    for r in data.get("span", []):
        r = dict(r)
        r.pop("note", None)
        rule = SpanRule(
            kind=r.pop("kind"),
            name=r.pop("name"),
            begin=_tuple(r.pop("begin", ())),
            end=_tuple(r.pop("end", ())),
            begin_prefix=r.pop("begin_prefix", None),
            end_prefix=r.pop("end_prefix", None),
            scope=r.pop("scope", "thread"),
            key=_tuple(r.pop("key", ())),
            repeat=r.pop("repeat", "restart"),
            orphan_ends=r.pop("orphan_ends", None),
            attrs=dict(r.pop("attrs", {})),
            end_attrs=dict(r.pop("end_attrs", {})),
            begin_where=_where(r.pop("begin_where", None)),
            end_where=_where(r.pop("end_where", None)),
            detail=_tuple(r.pop("detail", ())),
            detail_attrs=dict(r.pop("detail_attrs", {})),
            inherit=dict(r.pop("inherit", {})),
            role=r.pop("role", None),
        )
        alt = r.pop("threadless", None)
        if alt is not None:
            alt = dict(alt)
            rule = replace(
                rule,
                threadless=SpanRule(
                    kind=rule.kind,
                    name=rule.name,
                    begin=rule.begin,
                    end=_tuple(alt.pop("end")),
                    scope=alt.pop("scope", rule.scope),
                    key=_tuple(alt.pop("key", ())),
                    end_where=_where(alt.pop("end_where", None)),
                ),
            )
            if alt:
                raise ValueError(
                    f"span rule {rule.kind}/{rule.name}: unknown threadless settings {sorted(alt)}"
                )
        if r:
            raise ValueError(f"span rule {rule.kind}/{rule.name}: unknown settings {sorted(r)}")
        if rule.scope not in ("thread", "process") or rule.repeat not in ("restart", "keep", "nest"):
            raise ValueError(f"span rule {rule.kind}/{rule.name}: bad scope or repeat")
        spans.append(rule)
    instants = [
        InstantRule(
            kind=r["kind"],
            name=r["name"],
            events=_tuple(r["events"]),
            attrs=dict(r.get("attrs", {})),
            where=_where(r.get("where")),
            role=r.get("role"),
        )
        for r in data.get("instant", [])
    ]
    phases = []
    for r in data.get("phase", []):
        r = dict(r)
        phases.append(
            PhaseRule(
                side=r.pop("side"),
                name=r.pop("name"),
                start=_tuple(r.pop("start")),
                end=_tuple(r.pop("end", ())),
                start_where=_where(r.pop("start_where", None)),
                end_where=_where(r.pop("end_where", None)),
                end_fallback=_tuple(r.pop("end_fallback", ())),
                end_fallback_where=_where(r.pop("end_fallback_where", None)),
                start_pick=r.pop("start_pick", "first"),
                end_pick=r.pop("end_pick", "first"),
                end_after=r.pop("end_after", "start"),
                end_thread=r.pop("end_thread", "any"),
                instant=bool(r.pop("instant", False)),
                role=r.pop("role", None),
            )
        )
        if r:
            raise ValueError(f"phase rule {phases[-1].name}: unknown settings {sorted(r)}")
    names = {k: {str(a): str(b) for a, b in v.items()} for k, v in data.get("names", {}).items()}
    return Rules(
        spans=tuple(spans),
        instants=tuple(instants),
        phases=tuple(phases),
        names=names,
        outcome={k: _tuple(v) for k, v in data.get("outcome", {}).items()},
        load_thread=dict(data.get("load_thread", {})),
        ram={k: int(v) for k, v in data.get("ram", {}).items()},
        shared_roles=tuple(dict(x) for x in data.get("shared_role", [])),
        phase_cutoff=_tuple(data.get("phase_cutoff", {}).get("events", ())),
        phase_cutoff_where=_where(data.get("phase_cutoff", {}).get("where")),
        wires=tuple(
            WireRule(
                name=w["name"],
                sender=w["from"],
                send=_tuple(w["send"]),
                receive=_tuple(w["receive"]),
                key=w.get("key", "ordinal"),
            )
            for w in data.get("wire", [])
        ),
    )


@cache
def rules() -> Rules:
    """The span, instant and phase rules shipped with migtrace."""
    return parse_rules(resources.files("tracetool._timeline").joinpath("spans.toml").read_text("utf-8"))


# ---------------------------------------------------------------------------------- result
@dataclass
class Timeline:
    """Spans and instants of a trace (see module docstring).

    ``spans``: process, tid (Int64, NA when the format has no thread ids), thread, role, kind,
    name, start_ns, end_ns (int64; ``NO_TIME`` in traces without timestamps), duration_us
    (float, NaN without timestamps), closed, begin_row, end_row (Int64, NA when unclosed), then
    attribute columns (idstr, instance_id, section_id, section_type, ...; NA where a rule has
    none). Rows index ``trace.events``.
    ``instants``: process, tid, thread, role, kind, name, ts_ns, row, attribute columns.
    ``issues``: kind, path, line, message: what was inconsistent in the input.
    """

    spans: pd.DataFrame
    instants: pd.DataFrame
    issues: pd.DataFrame
    notes: list[str]
    has_time: bool
    threads_known: bool

    def of_kind(self, *kinds: str) -> pd.DataFrame:
        """Spans of the given kinds, in start order."""
        s = self.spans
        return s[s["kind"].isin(kinds)]

    @property
    def empty(self) -> bool:
        """True when no rule matched anything in the trace."""
        return not len(self.spans) and not len(self.instants)

    @property
    def issue_count(self) -> int:
        """Inconsistencies of the input (unclosed spans, lines out of order, ...)."""
        return len(self.issues)

    def select(self, kinds: Sequence[str] | None = None, thread: str | None = None) -> Timeline:
        """The spans and instants of the given kinds and thread (a TID, name or role); notes
        and issues stay those of the whole trace."""
        return replace(
            self, spans=select(self.spans, kinds, thread), instants=select(self.instants, kinds, thread)
        )

    def to_json(self) -> dict[str, Any]:
        """``{"spans", "instants", "notes", "issues"}`` as ``migtrace timeline --format json``
        prints them (see :func:`records`)."""
        return {
            "spans": records(self.spans),
            "instants": records(self.instants),
            "notes": self.notes,
            "issues": records(self.issues),
        }


ALWAYS_KEPT = ("tid", "end_row", "start_ns", "end_ns", "ts_ns", "duration_us")
"""Keys every span/instant record has; other attribute keys only where the row has a value."""


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of spans, instants or issues as JSON-ready dicts; attribute columns that are empty
    on a row are left out, times of a trace without timestamps are null."""
    return json_records(frame, keep=ALWAYS_KEPT)


_CACHE: weakref.WeakKeyDictionary[Trace, Timeline] = weakref.WeakKeyDictionary()


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


# ---------------------------------------------------------------------------------- building
class _Builder:
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
        self.t_name = th["name"].fillna("?").astype(str).to_numpy()
        self.t_role = th["role"].astype(str).to_numpy()
        self.threads_known = trace.has_tids
        self.has_time = trace.has_time
        self.paths = trace.inputs["path"].astype(str).tolist() if len(trace.inputs) else []
        self._scope_rows: dict[tuple[str, int], np.ndarray] = {}
        self.issues: list[tuple[str, str, int, str]] = []
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
        """Per query, the last row of that thread/process with a row number below ``limit``."""
        out = np.zeros(len(codes), dtype=np.int64)
        # Queries concern a few threads; one pass per thread beats sorting every row.
        for code in np.unique(codes).tolist():
            sel = codes == code
            rows = self._rows_of(scope, int(code))
            idx = np.searchsorted(rows, limit[sel]) - 1
            out[sel] = rows[np.maximum(idx, 0)] if len(rows) else 0
        return out

    def where_mask(self, rows: np.ndarray, where: Mapping[str, tuple[str, ...]]) -> np.ndarray:
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
        vals, _ = self.arg_values(rows, arg)
        return _typed(vals)

    def location(self, rows: np.ndarray) -> tuple[list[str], np.ndarray]:
        src = self.trace.source[rows].astype(np.int64)
        return [self.paths[s] for s in src.tolist()], self.trace.line[rows]

    def add_issues(self, kind: str, rows: np.ndarray, messages: Sequence[str] | str) -> None:
        if not len(rows):
            return
        paths, lines = self.location(rows)
        msgs = [messages] * len(rows) if isinstance(messages, str) else list(messages)
        self.issues.extend(zip([kind] * len(rows), paths, lines.tolist(), msgs, strict=True))

    def base_frame(self, rows: np.ndarray, role_hint: str | None) -> dict[str, Any]:
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
        rows = self.trace.rows(events)
        if where and len(rows):
            rows = rows[self.where_mask(rows, where)]
        return rows

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
                out[col] = _typed(vals).array
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
            out[col] = _typed(vals).array

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
            self.add_issues("unclosed", rows, msgs)
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
            spans[col] = _typed(pd.Series(merged, index=spans.index)).array

    def share_roles(self, spans: pd.DataFrame) -> None:
        """Without thread ids, a role is ambiguous while another thread does the same work."""
        for share in self.rules.shared_roles:
            during = spans[(spans["kind"] == "phase") & (spans["name"] == share["phase"])]
            for p in _dicts(during):
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
        self.add_issues(
            "unclosed",
            np.array([start]),
            f"phase '{rule.name}': no {'/'.join(rule.end)} follows in this process",
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
        groups = np.flatnonzero(np.bincount(key)) if self.n else key[:0]
        lines = self.trace.line
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
        spans = _concat(span_frames, SPAN_COLUMNS)
        for rule in self.rules.spans:
            if rule.inherit:
                self.inherit(spans, rule)
        _fill_idstr(spans)
        if not self.threads_known:
            self.share_roles(spans)
        if len(spans):
            spans = spans.sort_values(["start_ns", "begin_row"], kind="stable").reset_index(drop=True)
        inst_frames = [f for f in (self.instant_rule(r) for r in self.rules.instants) if f is not None]
        instants = _concat(inst_frames, INSTANT_COLUMNS)
        if len(instants):
            instants = instants.sort_values(["ts_ns", "row"], kind="stable").reset_index(drop=True)
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
            notes=self.notes,
            has_time=self.has_time,
            threads_known=self.threads_known,
        )


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    if not frames:
        empty = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        for c in ("start_ns", "end_ns", "ts_ns", "begin_row", "row"):
            if c in empty:
                empty[c] = empty[c].astype(np.int64)
        if "duration_us" in empty:
            empty["duration_us"] = empty["duration_us"].astype(float)
        if "closed" in empty:
            empty["closed"] = empty["closed"].astype(bool)
        for c in ("tid", "end_row"):
            if c in empty:
                empty[c] = empty[c].astype("Int64")
        return empty
    out = pd.concat(frames, ignore_index=True, sort=False)
    for c in out.columns:
        if c in columns:
            continue
        out[c] = _typed(out[c]).to_numpy() if out[c].dtype == object else out[c]
    attrs = [c for c in out.columns if c not in columns]
    out = out[columns + attrs]
    out["process"] = out["process"].astype(str)
    for c in ("thread", "role", "kind", "name"):
        out[c] = out[c].astype(str)
    out["tid"] = out["tid"].astype("Int64")
    if "end_row" in out:
        out["end_row"] = out["end_row"].astype("Int64")
    return out


def _typed(values: pd.Series) -> pd.Series:
    """An object column as Int64 when every value is an integer, else as strings."""
    s = pd.Series(values, copy=False).reset_index(drop=True)
    present = s.dropna()
    if not len(present):
        return pd.Series(pd.array([pd.NA] * len(s), dtype="Int64"))
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in present.head(64)):
        try:
            return pd.Series(pd.array(s.tolist(), dtype="Int64"))
        except (TypeError, ValueError, OverflowError):
            pass
    if all(isinstance(v, (bool, np.bool_)) for v in present.head(64)):
        return pd.Series(pd.array(s.tolist(), dtype="boolean"))
    return pd.Series(pd.array([None if _missing(v) else str(v) for v in s.tolist()], dtype="string"))


def _dicts(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain values (NA -> None), for loops over a handful of rows."""
    cols = list(frame.columns)
    return [
        {c: (None if _missing(v) else v) for c, v in zip(cols, row, strict=True)}
        for row in frame.itertuples(index=False, name=None)
    ]


def _missing(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))


def _fill_idstr(spans: pd.DataFrame) -> None:
    """PART/END sections name only their section id: take the idstr their START gave it."""
    if not len(spans) or "idstr" not in spans or "section_id" not in spans:
        return
    known = spans[spans["idstr"].notna() & spans["section_id"].notna()]
    if not len(known):
        return
    table = known.drop_duplicates(["process", "section_id"]).set_index(["process", "section_id"])["idstr"]
    need = spans["idstr"].isna() & spans["section_id"].notna()
    if need.any():
        keys = pd.MultiIndex.from_arrays([spans.loc[need, "process"], spans.loc[need, "section_id"]])
        spans.loc[need, "idstr"] = table.reindex(keys).to_numpy()


# ---------------------------------------------------------------------------------- pairing
@dataclass
class Pairs:
    """Result of pairing: one entry per span, plus end rows that closed nothing."""

    begin_rows: np.ndarray  # int64
    end_rows: np.ndarray  # int64, -1 when unclosed
    cut_rows: np.ndarray  # int64: the begin that cut an unclosed span short, -1 when none
    orphan_ends: np.ndarray  # int64


def pair_rows(
    begins: np.ndarray,
    ends: np.ndarray,
    begin_groups: np.ndarray,
    end_groups: np.ndarray,
    repeat: str = "restart",
) -> Pairs:
    """Pairs each begin row with the first end row after it in the same group.

    ``repeat``: "restart" (a begin seen again before the end leaves the earlier one unclosed),
    "keep" (repeated begins belong to the open span) or "nest" (each end closes the newest
    open begin). A row may be both a begin and an end (chained spans): it closes the previous
    span and opens the next. Everything is done with sorts and cumulative sums.
    """
    begins = np.asarray(begins, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    nb = len(begins)
    pos = np.concatenate([begins, ends])
    grp = np.concatenate([np.asarray(begin_groups, np.int64), np.asarray(end_groups, np.int64)])
    is_b = np.concatenate([np.ones(nb, bool), np.zeros(len(ends), bool)])
    # ends sort before begins on the same row: the row closes first, then opens
    order = np.lexsort((is_b, pos, grp))
    pos, grp, is_b = pos[order], grp[order], is_b[order]
    is_e = ~is_b
    if repeat == "nest" and len(pos):
        step = np.where(is_b, 1, -1)
        csum = np.cumsum(step)
        first = np.r_[True, grp[1:] != grp[:-1]]
        base = (csum - step)[first]
        depth = csum - np.repeat(base, np.diff(np.r_[np.flatnonzero(first), len(grp)]))
        level = np.where(is_b, depth, depth + 1)
        _, grp = np.unique(np.stack([grp, level]), axis=1, return_inverse=True)
        grp = grp.reshape(-1).astype(np.int64)
        order2 = np.lexsort((is_b, pos, grp))
        pos, grp, is_b = pos[order2], grp[order2], is_b[order2]
        is_e = ~is_b
    end_idx = np.flatnonzero(is_e)
    beg_idx = np.flatnonzero(is_b)
    k = np.cumsum(is_e)[beg_idx]  # ordinal of the first end after each begin
    has_end = k < len(end_idx)
    last_end = max(len(end_idx) - 1, 0)
    cand = end_idx[np.minimum(k, last_end)] if len(end_idx) else np.zeros(len(beg_idx), np.int64)
    has_end &= grp[cand] == grp[beg_idx] if len(end_idx) else np.zeros(len(beg_idx), bool)
    nxt = np.r_[beg_idx[1:], -1]
    nxt_same = (nxt >= 0) & (grp[np.maximum(nxt, 0)] == grp[beg_idx])
    if repeat == "keep":
        prev_same = np.r_[False, (grp[beg_idx[1:]] == grp[beg_idx[:-1]]) & (k[1:] == k[:-1])]
        keep = ~prev_same
        closed = has_end
        cut = np.full(len(beg_idx), -1, dtype=np.int64)
        beg_idx, cand, closed, cut = beg_idx[keep], cand[keep], closed[keep], cut[keep]
    else:
        superseded = nxt_same & (~has_end | (np.maximum(nxt, 0) < cand))
        closed = has_end & ~superseded
        cut = np.where(superseded, pos[np.maximum(nxt, 0)], -1)
    used = np.zeros(len(pos), dtype=bool)
    used[cand[closed]] = True
    orphan = pos[is_e & ~used]
    return Pairs(
        begin_rows=pos[beg_idx],
        end_rows=np.where(closed, pos[cand], -1).astype(np.int64),
        cut_rows=cut.astype(np.int64),
        orphan_ends=np.unique(orphan),
    )


# ---------------------------------------------------------------------------------- queries
def enclosing(
    timeline: Timeline, process: str, tid: int | None, ts_ns: np.ndarray, kinds: Sequence[str] = DEFAULT_KINDS
) -> pd.DataFrame:
    """For each time, the innermost span of ``kinds`` on that thread (that process if tid is None).

    Innermost = the latest-starting span that contains the time (start <= t <= end); ties go
    to the shorter span, then to the kind listed first. Returns columns ``kind``, ``name``,
    ``idstr`` (NA when none) and ``span`` (index into ``timeline.spans``, NA when no span
    encloses the time), one row per input time, in input order.
    """
    t = np.asarray(ts_ns, dtype=np.int64)
    m = len(t)
    s = timeline.spans
    sel = (s["process"] == process).to_numpy() & s["kind"].isin(list(kinds)).to_numpy()
    if tid is not None:
        sel &= (s["tid"] == tid).fillna(False).to_numpy(dtype=bool)
    cand = s[sel]
    best = np.full(m, -1, dtype=np.int64)
    best_start = np.full(m, np.iinfo(np.int64).min, dtype=np.int64)
    best_len = np.full(m, np.iinfo(np.int64).max, dtype=np.int64)
    best_rank = np.full(m, len(kinds), dtype=np.int64)
    rank_of = {k: i for i, k in enumerate(kinds)}
    for kind, group in cand.groupby("kind", sort=False):
        for layer in _layers(group):
            starts = layer["start_ns"].to_numpy(dtype=np.int64)
            stops = layer["end_ns"].to_numpy(dtype=np.int64)
            idx = np.searchsorted(starts, t, side="right") - 1
            ok = idx >= 0
            idx = np.maximum(idx, 0)
            ok &= stops[idx] >= t if len(stops) else ok
            st, ln = starts[idx], stops[idx] - starts[idx]
            rank = rank_of[str(kind)]
            better = ok & (
                (st > best_start)
                | ((st == best_start) & ((ln < best_len) | ((ln == best_len) & (rank < best_rank))))
            )
            best = np.where(better, layer.index.to_numpy()[idx], best)
            best_start = np.where(better, st, best_start)
            best_len = np.where(better, ln, best_len)
            best_rank = np.where(better, rank, best_rank)
    found = best >= 0
    pick = s.reindex(best[found])
    out = pd.DataFrame(
        {
            "kind": pd.array([None] * m, dtype="string"),
            "name": pd.array([None] * m, dtype="string"),
            "idstr": pd.array([None] * m, dtype="string"),
            "span": pd.array([None] * m, dtype="Int64"),
        }
    )
    if found.any():
        out.loc[found, "kind"] = pick["kind"].to_numpy()
        out.loc[found, "name"] = pick["name"].to_numpy()
        if "idstr" in pick:
            out.loc[found, "idstr"] = pick["idstr"].astype("string").to_numpy()
        out.loc[found, "span"] = best[found]
    return out


def _layers(group: pd.DataFrame) -> list[pd.DataFrame]:
    """Splits spans into layers of non-overlapping spans, each sorted by start."""
    g = group.sort_values(["start_ns", "end_ns"], kind="stable")
    starts = g["start_ns"].to_numpy(dtype=np.int64)
    stops = g["end_ns"].to_numpy(dtype=np.int64)
    if len(g) < 2 or bool((starts[1:] > stops[:-1]).all()):
        return [g]
    layer_end: list[int] = []
    assign = np.empty(len(g), dtype=np.int64)
    for i, (a, z) in enumerate(zip(starts.tolist(), stops.tolist(), strict=True)):
        for j, last in enumerate(layer_end):
            if a > last:
                layer_end[j] = z
                assign[i] = j
                break
        else:
            layer_end.append(z)
            assign[i] = len(layer_end) - 1
    return [g[assign == j] for j in range(len(layer_end))]


def select(
    frame: pd.DataFrame, kinds: Sequence[str] | None = None, thread: str | None = None
) -> pd.DataFrame:
    """Rows of ``spans``/``instants`` of the given kinds and thread (a TID, name or role)."""
    out = frame
    if kinds:
        out = out[out["kind"].isin(list(kinds))]
    if thread:
        hit = (out["thread"] == thread) | (out["role"] == thread)
        if thread.isdigit():
            hit |= (out["tid"] == int(thread)).fillna(False)
        out = out[hit.to_numpy(dtype=bool)]
    return out
