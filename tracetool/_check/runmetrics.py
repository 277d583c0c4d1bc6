"""A run's metrics as one tidy long table: one row per metric id the run can give.

Every value is evaluated by :func:`~tracetool._check.evaluate.measure_metric`, so it is exactly
what ``migtrace check`` observes for the same id. Which ids (the rule, kept bounded):

* every numeric row of the metric table (durations in µs, counts, numbers) and every flag
  (``preempt.enabled``: 1.0 or 0.0), without a selector;
* then once per value the trace has of each selector the metric takes: ``role`` (each thread
  role present), ``load`` (true and false, when the trace shows the load thread), ``phase``
  (each incoming phase of the run), ``device`` (each device state section, at most
  ``MAX_DEVICES`` in load order) and ``process`` (each process: dst, src). One selector at a
  time, never combinations; never ``thread`` or ``tid`` (names and ids differ from run to run,
  so they would not line up in a history);
* metrics named by a template once per name the trace has: ``phases.<name>.duration`` and
  ``.count`` per phase, ``events.<name>.count`` per event name that occurs;
* an id the run cannot give (not measurable, or no value) has no row;
* text metrics are not values: ``outcome`` becomes the run's label ``outcome``; presence
  metrics (``event("x")``, ``thread("x")``) repeat the counts and are left out.

Columns: ``run`` (the run id, :mod:`tracetool._check.runid`), ``source`` (what was loaded),
``start_ns`` (first event, ns on ``clock``), ``clock``, ``labels`` (JSON object text, keys
sorted), ``process`` (below), ``metric`` (the metric name: ``bql.hold.total``), ``selector``
(``load=true``, empty for none), ``id`` (``metric{selector}``, as ``migtrace check`` takes it),
``value`` (float, the metric's JSON unit), ``unit`` (``us``, ``count``, ``number``, ``flag``).

``process`` says whose value it is: the ``process`` selector's value; ``dst`` or ``src`` for
the metrics named so (``downtime.src``); none for ``downtime.end_to_end`` and for the summary
metrics without a process selector (all processes together); otherwise the process the
analysis describes (the BQL, the phases and postcopy analyses describe the destination when
its trace is there).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tracetool._check.evaluate import load_tids, measure_metric
from tracetool._check.metric_types import PLACEHOLDER, Kind, Metric
from tracetool._check.metrics import METRICS
from tracetool._check.rules import MetricReference, bind_reference
from tracetool._check.runid import RunIdentity, folder_labels, merge_labels, run_id, start_ns
from tracetool._model.load import load_run
from tracetool._model.runfolder import Run
from tracetool._model.trace import Trace
from tracetool.errors import RulesError

MAX_DEVICES = 64
"""At most this many devices get rows of their own (the first ones loaded)."""
ENUMERATED_SELECTORS = ("role", "load", "phase", "device", "process")
UNITS = {Kind.DURATION: "us", Kind.COUNT: "count", Kind.NUMBER: "number", Kind.FLAG: "flag"}
COLUMNS = (
    "run",
    "source",
    "start_ns",
    "clock",
    "labels",
    "process",
    "metric",
    "selector",
    "id",
    "value",
    "unit",
)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789-")
_WHOLE_RUN = ("downtime.end_to_end",)


@dataclass(frozen=True)
class Candidate:
    """One metric id to evaluate: its name, selector text and the bound reference."""

    metric: str
    selector: str
    ref: MetricReference

    @property
    def id(self) -> str:
        """``metric{selector}``."""
        return metric_id(self.metric, self.selector)


def metric_id(metric: str, selector: str) -> str:
    """The id ``migtrace check`` takes: ``bql.hold.total{load=true}``."""
    return f"{metric}{{{selector}}}" if selector else metric


def selector_text(key: str, value: str) -> str:
    """``key=value``, the value quoted unless it is a plain word of the rule grammar."""
    plain = value and (value[0].isalpha() or value[0] == "_") and set(value) <= _NAME_CHARS
    if plain:
        return f"{key}={value}"
    return f'{key}="' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def canonical_id(text: str) -> str:
    """A metric id as the table spells it (``bql.hold.total{load = "true"}`` ->
    ``bql.hold.total{load=true}``); RulesError for an id that cannot be used."""
    ref = bind_reference(text)
    path = ref.metric.path
    if ref.argument is not None:
        path = path.replace(PLACEHOLDER, ref.argument)
    selector = ",".join(selector_text(k, v) for k, v in ref.selectors)
    return metric_id(path, selector)


# ---------------------------------------------------------------------------------- which ids
def _selector_values(trace: Trace, docs: Mapping[str, Any]) -> dict[str, list[str]]:
    """The values of each enumerated selector this trace has."""
    threads = trace.threads
    roles = sorted({str(r) for r in threads["role"].dropna().tolist()}) if len(threads) else []
    phases_doc = docs.get("phases", {})
    phases = list(dict.fromkeys(str(p["name"]) for p in phases_doc.get("phases") or [] if p.get("name")))
    devices = list(dict.fromkeys(str(d["idstr"]) for d in phases_doc.get("devices") or [] if d.get("idstr")))
    processes = trace.processes
    labels = [str(p) for p in processes["label"].tolist()] if len(processes) else []
    return {
        "role": roles,
        "load": ["true", "false"] if load_tids(trace) else [],
        "phase": phases,
        "device": devices[:MAX_DEVICES],
        "process": labels,
    }


def _template_names(metric: Metric, trace: Trace, values: Mapping[str, list[str]]) -> list[str]:
    if metric.names == "phases":
        return values["phase"]
    if metric.names == "events":
        counts = trace.event_counts()
        return [n for n in sorted(counts) if counts[n]]
    return []


def candidates(trace: Trace, docs: Mapping[str, Any]) -> Iterator[Candidate]:
    """The metric ids to evaluate on ``trace`` (see the module docstring); ``docs`` holds the
    phases analysis's JSON (for the phase and device names)."""
    values = _selector_values(trace, docs)
    by_path: dict[str, list[Metric]] = {}
    for m in METRICS:
        by_path.setdefault(m.path, []).append(m)
    for path, rows in by_path.items():
        first = rows[0]
        if first.kind not in UNITS or first.takes_argument:
            continue
        if first.is_template:
            for name in _template_names(first, trace, values):
                yield from _bound(path.replace(PLACEHOLDER, name), "")
            continue
        yield from _bound(path, "")
        keys = dict.fromkeys(k for r in rows for k in r.select if k in ENUMERATED_SELECTORS)
        for key in keys:
            for value in values[key]:
                yield from _bound(path, selector_text(key, value))


def _bound(metric: str, selector: str) -> Iterator[Candidate]:
    try:
        ref = bind_reference(metric_id(metric, selector))
    except RulesError:  # a name the rule grammar or the metric table does not take
        return
    yield Candidate(metric, selector, ref)


# ---------------------------------------------------------------------------------- values
def _process_of(ref: MetricReference, metric: str, doc: Mapping[str, Any]) -> str | None:
    chosen = dict(ref.selectors).get("process")
    if chosen is not None:
        return chosen
    if metric in _WHOLE_RUN:
        return None
    for side in ("src", "dst"):
        if metric.endswith(f".{side}"):
            return side
    if ref.metric.analysis == "summary":
        return None
    found = doc.get("process")
    if found is None:
        found = next((v.get("process") for v in doc.values() if isinstance(v, dict) and "process" in v), None)
    return str(found) if found is not None else None


def _number(value: Any, kind: Kind) -> float | None:
    if value is None:
        return None
    if kind is Kind.FLAG:
        return 1.0 if value else 0.0
    if isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def measure_all(trace: Trace, query_migrate: Any = None) -> tuple[list[dict[str, Any]], str | None]:
    """Every metric id the trace gives (see the module docstring) as records with
    ``process``, ``metric``, ``selector``, ``id``, ``value``, ``unit``; and the run's outcome."""
    docs: dict[str, dict[str, Any]] = {}
    # The outcome first: it is read from the phases analysis, whose JSON also names the phases
    # and devices to enumerate.
    outcome = measure_metric(trace, "outcome", query_migrate=query_migrate, docs=docs)
    out: list[dict[str, Any]] = []
    for c in candidates(trace, docs):
        m = measure_metric(trace, c.ref, query_migrate=query_migrate, docs=docs)
        kind = c.ref.metric.kind
        value = _number(m.value, kind) if m.measurable else None
        if value is None:
            continue
        doc = docs.get(c.ref.metric.analysis, {})
        out.append(
            {
                "process": _process_of(c.ref, c.metric, doc),
                "metric": c.metric,
                "selector": c.selector,
                "id": c.id,
                "value": value,
                "unit": UNITS[kind],
            }
        )
    return out, str(outcome.value) if outcome.measurable and outcome.value is not None else None


def identify(run: Run, labels: Mapping[str, str] | None = None, outcome: str | None = None) -> RunIdentity:
    """The run's id, source, start and labels (folder labels, ``outcome``, then ``labels``)."""
    trace = run.trace
    source = run.folder.path if run.folder is not None else ", ".join(run.paths)
    auto = folder_labels(run.folder)
    if outcome:
        auto["outcome"] = outcome
    return RunIdentity(run_id(trace), source, start_ns(trace), trace.clock, merge_labels(auto, labels))


def metrics_frame(identity: RunIdentity, records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The tidy table of one run from its identity and measured records."""
    n = len(records)
    frame = pd.DataFrame(
        {
            "run": pd.Series([identity.run] * n, dtype="string"),
            "source": pd.Series([identity.source] * n, dtype="string"),
            "start_ns": pd.Series([identity.start_ns] * n, dtype="Int64"),
            "clock": pd.Series([identity.clock] * n, dtype="string"),
            "labels": pd.Series([json.dumps(identity.labels, sort_keys=True)] * n, dtype="string"),
            "process": pd.Series([r["process"] for r in records], dtype="string"),
            "metric": pd.Series([r["metric"] for r in records], dtype="string"),
            "selector": pd.Series([r["selector"] for r in records], dtype="string"),
            "id": pd.Series([r["id"] for r in records], dtype="string"),
            "value": pd.Series([r["value"] for r in records], dtype="float64"),
            "unit": pd.Series([r["unit"] for r in records], dtype="string"),
        },
        columns=list(COLUMNS),
    )
    frame.attrs["run"] = {
        "run": identity.run,
        "source": identity.source,
        "start_ns": identity.start_ns,
        "clock": identity.clock,
        "labels": dict(identity.labels),
    }
    return frame


def run_metrics(
    source: str | os.PathLike[str] | Sequence[str] | Run | Trace,
    *,
    labels: Mapping[str, str] | None = None,
    query_migrate: Any = None,
    events: Sequence[str] = (),
    input_format: str | None = None,
    force: bool = False,
) -> pd.DataFrame:
    """A run's metrics as one tidy long table (columns and rules in the module docstring).

    ``source``: a run folder, trace paths (together one run), a loaded :class:`Run` or a
    :class:`Trace`. ``labels`` are added to the run's own (``build``, ``qemu``, ``outcome``)
    and win over them. ``df.attrs["run"]`` holds the run's identity.

        >>> df = tracetool.run_metrics("runs/threadify/run-1", labels={"machine": "ci-2"})
        >>> df.loc[df["id"] == "bql.hold.total{load=true}", "value"]
    """
    if isinstance(source, Trace):
        run = Run(source, query_migrate, tuple(trace_paths(source)))
    elif isinstance(source, Run):
        run = source
    else:
        paths = [os.fspath(source)] if isinstance(source, str | os.PathLike) else [str(p) for p in source]
        run = load_run(paths, events=events, input_format=input_format, force=force)
    qm = query_migrate if query_migrate is not None else run.query_migrate
    records, outcome = measure_all(run.trace, qm)
    identity = identify(run, labels, outcome)
    return metrics_frame(identity, records)


def trace_paths(trace: Trace) -> list[str]:
    """The input paths of a loaded trace."""
    return [str(p) for p in trace.inputs["path"].tolist()] if len(trace.inputs) else []
