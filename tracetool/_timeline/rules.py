"""The rules of the timeline: what pairs with what, read from ``tracetool/_timeline/spans.toml``.

``[[span]]`` tables pair begin and end events into spans, ``[[instant]]`` tables name single
events, ``[[phase]]`` tables cut each process into migration phases and ``[[wire]]`` tables pair
events across the migration channel. :func:`parse_rules` compiles the text (unknown settings
are an error); :func:`rules` is the shipped set.

    >>> rules().span_events("page-request")
    ('postcopy_page_req_add', 'postcopy_page_req_del')
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Any


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

    def span_events(self, kind: str, ends: bool = True) -> tuple[str, ...]:
        """The events that begin (and, with ``ends``, end) spans of ``kind``, in rule order:
        what a trace needs for such spans to appear."""
        out: list[str] = []
        for r in self.spans:
            if r.kind == kind:
                out.extend(e for e in (*r.begin, *(r.end if ends else ())) if e not in out)
        return tuple(out)


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
