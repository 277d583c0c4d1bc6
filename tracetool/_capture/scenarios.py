"""The capture scenarios, read from ``scenarios.toml`` next to this module."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

ACTIONS = ("set-parameters", "start-postcopy", "cancel", "kill-destination", "failover")
#: Source statuses after which nothing more happens (postcopy-paused: the destination is gone
#: and nothing will recover it).
SOURCE_FINAL = frozenset({"completed", "failed", "cancelled", "postcopy-paused"})
DESTINATION_FINAL = frozenset({"completed", "failed", "cancelled"})


class ScenarioError(ValueError):
    """``scenarios.toml`` says something this module does not understand."""


@dataclass(frozen=True)
class Action:
    """One thing done to the running migration, once, when its condition first holds."""

    do: str
    at_sync: int | None = None
    in_state: str | None = None
    after_s: float = 0.0
    parameters: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """``start-postcopy at dirty sync 2``, for logs and capture.json."""
        what = self.do + (f" {self.parameters}" if self.parameters else "")
        if self.at_sync is not None:
            return f"{what} at dirty sync {self.at_sync}"
        return f"{what} after {self.after_s:g} s in state {self.in_state}"


@dataclass(frozen=True)
class Scenario:
    """What one migration does: machine, capabilities, parameters, events, actions, outcome."""

    name: str
    description: str
    machine: str
    capabilities: tuple[str, ...]
    parameters: dict[str, int]
    analyses: tuple[str, ...]
    extra_events: tuple[str, ...]
    expect_source: str
    expect_destination: str | None
    actions: tuple[Action, ...] = ()
    requires_accel: str | None = None
    requires_why: str = ""
    smp: int = 1
    devices: tuple[str, ...] = ()

    def accel_problem(self, accel: str) -> str | None:
        """Why this scenario cannot run with ``accel``, or None when it can."""
        if self.requires_accel is None or accel == self.requires_accel:
            return None
        why = f": {self.requires_why}" if self.requires_why else ""
        return f"scenario {self.name} needs --accel {self.requires_accel}{why}"

    def succeeded(self, source: str, destination: str) -> bool:
        """Whether final statuses ``source`` and ``destination`` are what this scenario expects."""
        if source != self.expect_source:
            return False
        return self.expect_destination is None or destination == self.expect_destination

    def expected(self) -> str:
        """``source completed, destination completed``."""
        text = f"source {self.expect_source}"
        if self.expect_destination is not None:
            text += f", destination {self.expect_destination}"
        return text

    def to_json(self) -> dict[str, Any]:
        """The scenario as recorded in run.json and capture.json."""
        return {
            "name": self.name,
            "description": self.description,
            "machine": self.machine,
            "smp": self.smp,
            "devices": list(self.devices),
            "capabilities": list(self.capabilities),
            "parameters": self.parameters,
            "analyses": list(self.analyses),
            "extra_events": list(self.extra_events),
            "actions": [a.describe() for a in self.actions],
            "expect": {"source": self.expect_source, "destination": self.expect_destination},
            "requires_accel": self.requires_accel,
        }


def _action(scenario: str, raw: dict[str, Any]) -> Action:
    do = raw.get("do")
    if do not in ACTIONS:
        raise ScenarioError(f"scenario {scenario}: unknown action {do!r} (one of {ACTIONS})")
    if (raw.get("at_sync") is None) == (raw.get("in_state") is None):
        raise ScenarioError(f"scenario {scenario}: action {do} needs at_sync or in_state")
    if (do == "set-parameters") != bool(raw.get("parameters")):
        raise ScenarioError(f"scenario {scenario}: parameters go with set-parameters only")
    return Action(
        do,
        raw.get("at_sync"),
        raw.get("in_state"),
        float(raw.get("after_s", 0.0)),
        dict(raw.get("parameters", {})),
    )


def _smp(scenario: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 64:
        raise ScenarioError(f"scenario {scenario}: smp must be a whole number of vCPUs, 1-64")
    return value


def _devices(scenario: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ScenarioError(f"scenario {scenario}: devices must be a list of QEMU arguments")
    return tuple(value)


def _resolve(
    name: str, tables: dict[str, dict[str, Any]], defaults: dict[str, Any], seen: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The scenario's keys over those of what it extends (or over the defaults)."""
    if name in seen:
        raise ScenarioError(f"scenario {name}: 'extends' loops through {' -> '.join(seen)}")
    raw = tables.get(name)
    if raw is None:
        raise ScenarioError(f"scenario {seen[-1]} extends unknown scenario {name!r}")
    parent = raw.get("extends")
    base = _resolve(parent, tables, defaults, (*seen, name)) if parent else dict(defaults)
    return {**base, **{k: v for k, v in raw.items() if k != "extends"}}


def parse_scenarios(text: str) -> dict[str, Scenario]:
    """The scenarios of a ``scenarios.toml`` text, by name."""
    data = tomllib.loads(text)
    defaults = data.get("defaults", {})
    tables: dict[str, dict[str, Any]] = data.get("scenario", {})
    out: dict[str, Scenario] = {}
    for name in tables:
        raw = _resolve(name, tables, defaults)
        try:
            expect = raw["expect"]
            out[name] = Scenario(
                name=name,
                description=str(raw["description"]),
                machine=str(raw["machine"]),
                capabilities=tuple(raw["capabilities"]),
                parameters=dict(raw["parameters"]),
                analyses=tuple(raw["analyses"]),
                extra_events=tuple(raw.get("extra_events", ())),
                expect_source=str(expect["source"]),
                expect_destination=expect.get("destination"),
                actions=tuple(_action(name, a) for a in raw.get("action", ())),
                requires_accel=raw.get("requires_accel"),
                requires_why=str(raw.get("requires_why", "")),
                smp=_smp(name, raw.get("smp", 1)),
                devices=_devices(name, raw.get("devices", [])),
            )
        except KeyError as e:
            raise ScenarioError(f"scenario {name}: missing key {e}") from e
    return out


@cache
def scenarios() -> dict[str, Scenario]:
    """Every scenario of the packaged ``scenarios.toml``."""
    text = resources.files("tracetool._capture").joinpath("scenarios.toml").read_text("utf-8")
    return parse_scenarios(text)
