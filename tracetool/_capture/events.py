"""The ``-trace events=FILE`` list of a scenario: its analyses' events plus its extra patterns."""

from __future__ import annotations

from tracetool._analyses import registry
from tracetool._analyses.events import events_file
from tracetool._capture.scenarios import Scenario


def analysis_events_file(analyses: tuple[str, ...], generation: str | None) -> str:
    """The events file migtrace's analyses need (the text of ``migtrace events --for ...``).

    The only place the capture reads the per-analysis event data (the analysis registry's).
    """
    return events_file([registry.get(a).name for a in analyses], generation)


def generation_of(version: tuple[int, int, int] | None) -> str | None:
    """The event-data generation of a QEMU version: ``7.2`` up to 10.0, else None (every one).

    From 10.1 on a version number cannot tell a plain build from the threadify series, so
    those get the events of every generation (QEMU warns about the few it lacks).
    """
    if version is not None and version[:2] < (10, 1):
        return "7.2"
    return None


def scenario_events(scenario: Scenario, version: tuple[int, int, int] | None) -> str:
    """The whole events file of one run."""
    text = analysis_events_file(scenario.analyses, generation_of(version))
    if scenario.extra_events:
        lines = ["", f"# --- scenario {scenario.name}: more events", *scenario.extra_events]
        text += "\n".join(lines) + "\n"
    return text
