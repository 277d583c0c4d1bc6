"""The trace events each analysis needs and the QEMU flags per generation (``events.toml``)."""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from tracetool.errors import UsageError


@dataclass(frozen=True)
class EventPattern:
    """One line of a ``-trace events=`` file, with why an analysis wants it."""

    pattern: str
    why: str
    required: bool
    qemu: tuple[str, ...] | None

    def applies_to(self, generation: str | None) -> bool:
        """Whether this QEMU generation has the event (None: any generation)."""
        return generation is None or self.qemu is None or generation in self.qemu

    def matches(self, event: str) -> bool:
        """Whether QEMU would enable ``event`` for this pattern."""
        return fnmatch.fnmatchcase(event, self.pattern)


@dataclass(frozen=True)
class Generation:
    """A QEMU generation: what its trace lines look like and the flags to record with."""

    name: str
    label: str
    line: str
    flags: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class AnalysisEvents:
    """The events of one analysis."""

    name: str
    description: str
    events: tuple[EventPattern, ...]

    def required(self) -> list[EventPattern]:
        """The patterns without which nothing of the analysis is measurable."""
        return [e for e in self.events if e.required]


@dataclass(frozen=True)
class EventData:
    """The contents of ``events.toml``."""

    generations: dict[str, Generation]
    analyses: dict[str, AnalysisEvents]


@cache
def event_data() -> EventData:
    """Loads ``tracetool/_analyses/events.toml``."""
    text = resources.files("tracetool._analyses").joinpath("events.toml").read_text("utf-8")
    data = tomllib.loads(text)
    gens = {
        name: Generation(name, g["label"], g["line"], tuple((f, w) for f, w in g["flags"]))
        for name, g in data["generation"].items()
    }
    analyses = {
        name: AnalysisEvents(
            name,
            a["description"],
            tuple(
                EventPattern(
                    e["pattern"],
                    e.get("why", ""),
                    bool(e.get("required", False)),
                    tuple(e["qemu"]) if "qemu" in e else None,
                )
                for e in a.get("event", [])
            ),
        )
        for name, a in data["analysis"].items()
    }
    return EventData(gens, analyses)


def check_generation(name: str | None) -> str | None:
    """Validates a ``--qemu`` value."""
    gens = event_data().generations
    if name is not None and name not in gens:
        raise UsageError(f"--qemu: unknown QEMU generation {name!r} (choose from: {', '.join(gens)})")
    return name


def events_file(analyses: Sequence[str], generation: str | None) -> str:
    """The text of a ``-trace events=FILE`` list for the analyses, flags as comments on top."""
    data = event_data()
    gens = [data.generations[generation]] if generation else list(data.generations.values())
    out = [
        f"# Trace events for migtrace: {', '.join(analyses)}"
        + (f" (QEMU generation {generation})" if generation else " (every QEMU generation)"),
        "# Use as: -trace events=THIS_FILE. One pattern per line; '#' lines are comments.",
        "# QEMU warns about names it does not know and carries on.",
    ]
    for g in gens:
        out.append("#")
        out.append(f"# {g.label}")
        out.append(f"#   trace lines: {g.line}")
        width = max(len(f) for f, _ in g.flags)
        out.extend(f"#   {flag.ljust(width)}  {why}" for flag, why in g.flags)
    seen: set[str] = set()
    for name in analyses:
        a = data.analyses[name]
        out.append("")
        out.append(f"# --- {name}: {a.description}")
        for e in a.events:
            if not e.applies_to(generation) or e.pattern in seen:
                continue
            seen.add(e.pattern)
            if e.why:
                out.append(
                    f"# {e.why}" + (f" [only {', '.join(e.qemu)}]" if e.qemu and not generation else "")
                )
            out.append(e.pattern)
    return "\n".join(out) + "\n"


def missing_required(analysis: str, present: Sequence[str], extra: Sequence[str] = ()) -> list[str]:
    """The required patterns (and ``extra`` event names) that match no event of the trace."""
    info = event_data().analyses.get(analysis)
    wanted = [e.pattern for e in info.required()] if info else []
    wanted += [x for x in extra if x not in wanted]
    return [p for p in wanted if not any(fnmatch.fnmatchcase(ev, p) for ev in present)]
