"""What each side did while the guest was paused, as steps that tile the side's time.

A :class:`Work` is one thing a side did in the pause: saving or loading a device, handling a
command, a checkpointed stage such as stopping the VM. :func:`tile` turns a side's works into
contiguous :class:`Step` s: each step runs from the end of the previous one to the end of its
work, so a few microseconds of untraced work (writing the trace line, reading a section header)
go to the step that follows. A gap longer than :data:`MIN_GAP_NS` before a work's traced start
is a step of its own: "wait for data" on the destination, "untraced" or "send commands" on the
source.

Which events make which works is data (``downtime.toml``): the ``vmstate_downtime_*`` events of
QEMU >= 8.2 when both sides have them, else the section spans of the timeline
(``savevm_section_*`` / ``qemu_loadvm_state_*``) and the run-state changes.
"""

from __future__ import annotations

import tomllib
from collections.abc import Hashable
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from tracetool._model.trace import Trace
from tracetool._timeline.result import Timeline

MIN_GAP_NS = 20_000
"""A gap before a work's traced start shorter than this (20 µs: trace writes, header reads)
belongs to the work; a longer one is a step of its own."""

Key = tuple[Hashable, ...]
WAIT_FOR_DATA = "wait for data"
UNTRACED = "untraced"
SEND_COMMANDS = "send commands"


@dataclass(frozen=True)
class Work:
    """One thing a side did in the pause. ``begin_ns`` is None for a checkpoint (its step runs
    from the previous step). ``needs`` (destination): the key of the source's work whose data
    it consumed. ``section_id``: the migration section saved or loaded, when the work comes from
    the section events. Times are on the common (destination) axis."""

    side: str
    step: str
    end_ns: int
    begin_ns: int | None = None
    device: str | None = None
    instance_id: int | None = None
    kind: str | None = None
    needs: Key | None = None
    section_id: int | None = None
    sent_before_stop: bool = False  # RAM of the stream's backlog (see destination_works)


@dataclass(frozen=True)
class Step:
    """A contiguous stretch of one side's time in the pause; ``gap`` when no work explains it."""

    side: str
    step: str
    start_ns: int
    end_ns: int
    device: str | None = None
    instance_id: int | None = None
    kind: str | None = None
    needs: Key | None = None
    gap: bool = False
    section_id: int | None = None
    sent_before_stop: bool = False


@dataclass(frozen=True)
class Command:
    """A destination span that acts on something the source sent (``downtime.toml``)."""

    kind: str
    name: str
    step: str
    sent_by: str | None = None
    sent_checkpoint: str | None = None
    src_step: str | None = None


@dataclass(frozen=True)
class DowntimeRules:
    """The contents of ``downtime.toml``."""

    window: dict[str, str]
    checkpoints: dict[str, dict[str, str]]
    events: dict[str, dict[str, str]]
    src_end: dict[str, str]
    commands: tuple[Command, ...]
    sends: tuple[str, ...]


@cache
def downtime_rules() -> DowntimeRules:
    """Loads ``downtime.toml``."""
    text = resources.files("tracetool._analyses.downtime").joinpath("downtime.toml").read_text("utf-8")
    data: dict[str, Any] = tomllib.loads(text)
    return DowntimeRules(
        window=dict(data["window"]),
        checkpoints={k: dict(v) for k, v in data["checkpoints"].items()},
        events={k: dict(v) for k, v in data["events"].items()},
        src_end=dict(data["src_end"]),
        commands=tuple(Command(**c) for c in data.get("command", [])),
        sends=tuple(data["sends"]["events"]),
    )


# ---------------------------------------------------------------------------------- tiling
def tile(works: list[Work], side: str, start: int, end: int, sends: np.ndarray | None = None) -> list[Step]:
    """The side's steps from ``start`` to ``end`` (see the module docstring). ``sends``: times
    of the source's command sends, which name its gaps."""
    inside = [w for w in works if start < w.end_ns <= end]
    inside.sort(key=lambda w: (w.end_ns, w.begin_ns if w.begin_ns is not None else w.end_ns))
    steps: list[Step] = []
    cursor = start
    for w in inside:
        if w.end_ns <= cursor:
            continue
        if w.begin_ns is not None and w.begin_ns - cursor > MIN_GAP_NS:
            steps.append(_gap(side, cursor, w.begin_ns, sends))
            cursor = w.begin_ns
        steps.append(
            Step(
                side, w.step, cursor, w.end_ns, w.device, w.instance_id, w.kind, w.needs,
                section_id=w.section_id, sent_before_stop=w.sent_before_stop,
            )
        )  # fmt: skip
        cursor = w.end_ns
    if cursor < end:
        steps.append(_gap(side, cursor, end, sends))
    return steps


def _gap(side: str, start: int, end: int, sends: np.ndarray | None) -> Step:
    if side == "dst":
        name = WAIT_FOR_DATA
    else:
        has_send = sends is not None and bool(((sends > start) & (sends <= end)).any())
        name = SEND_COMMANDS if has_send else UNTRACED
    return Step(side, name, start, end, gap=True)


# ---------------------------------------------------------------------------------- reading
@dataclass
class SideEvents:
    """One process of the trace with its times on the common axis."""

    trace: Trace
    timeline: Timeline
    label: str
    mask: np.ndarray
    ts: np.ndarray
    offset_ns: int

    def rows(self, event: str) -> np.ndarray:
        """Rows of ``event`` in this process that have a time."""
        r = self.trace.rows(event)
        return r[self.mask[r] & (self.ts[r] != NO_TIME)] if len(r) else r

    def fields(self, event: str) -> pd.DataFrame:
        """Typed arguments of ``event`` in this process, with a ``ts`` column (common axis)."""
        f = self.trace.fields(event)
        if not len(f):
            return f.assign(ts=np.zeros(0, np.int64))
        rows = f.index.to_numpy()
        keep = self.mask[rows] & (self.ts[rows] != NO_TIME)
        f = f[keep]
        return f.assign(ts=self.ts[f.index.to_numpy()])

    @cached_property
    def section_devices(self) -> dict[int, tuple[str, int | None]]:
        """Section id -> (idstr, instance id), from the sections that named their device
        (START/FULL): a PART or END section carries only its id (the timeline may give it the
        idstr, never the instance)."""
        s = self.timeline.spans
        if not {"section_id", "idstr", "instance_id"} <= set(s.columns):
            return {}  # a timeline without section spans
        hit = s[(s["process"] == self.label) & s["section_id"].notna() & s["idstr"].notna()]
        hit = hit.sort_values("instance_id", kind="stable", na_position="first")  # named ones last
        return {
            int(sid): (str(idstr), _int_or_none(inst))
            for sid, idstr, inst in zip(
                hit["section_id"].tolist(), hit["idstr"].tolist(), hit["instance_id"].tolist(), strict=True
            )
        }

    def section_device(self, section_id: int | None) -> tuple[str | None, int | None]:
        """(idstr, instance id) of a section (see :attr:`section_devices`); (None, None) for
        a section that never named its device, or no section."""
        if section_id is None:
            return None, None
        return self.section_devices.get(section_id, (None, None))

    def spans(self, kind: str, names: tuple[str, ...] | None = None) -> pd.DataFrame:
        """Closed timeline spans of this process (times shifted onto the common axis)."""
        s = self.timeline.spans
        hit = s[(s["process"] == self.label) & (s["kind"] == kind) & s["closed"].astype(bool)]
        if names is not None:
            hit = hit[hit["name"].isin(names)]
        hit = hit[hit["start_ns"].notna() & hit["end_ns"].notna()]
        return hit.assign(
            start_ns=hit["start_ns"].astype("int64") + self.offset_ns,
            end_ns=hit["end_ns"].astype("int64") + self.offset_ns,
        )

    def checkpoints(self) -> list[tuple[str, int]]:
        """``vmstate_downtime_checkpoint`` names and times, in time order."""
        f = self.fields("vmstate_downtime_checkpoint")
        if not len(f) or "checkpoint" not in f:
            return []
        return [(str(c), int(t)) for c, t in zip(f["checkpoint"].tolist(), f["ts"].tolist(), strict=True)]


def device_events(side: SideEvents, event: str, start: int, end: int) -> pd.DataFrame:
    """``vmstate_downtime_save``/``_load`` rows with ``ts`` in [start, end]: ``type``,
    ``idstr``, ``instance_id``, ``downtime`` (µs, QEMU's own measure), ``ts``."""
    f = side.fields(event)
    need = {"type", "idstr", "instance_id", "downtime"}
    if not len(f) or not need <= set(f.columns):
        return pd.DataFrame(columns=["type", "idstr", "instance_id", "downtime", "ts"])
    f = f[(f["ts"] >= start) & (f["ts"] <= end) & f["downtime"].notna()]
    return f[["type", "idstr", "instance_id", "downtime", "ts"]].reset_index(drop=True)


def device_key(kind: Any, idstr: Any, instance: Any) -> Key:
    """The key that pairs a source save with the destination load of the same device."""
    return ("device", str(kind), str(idstr), None if pd.isna(instance) else int(instance))


def section_key(section_id: Any) -> Key | None:
    """The key that pairs sections by their id (QEMU < 8.2)."""
    return None if pd.isna(section_id) else ("section", int(section_id))


def records_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a frame as dicts (column -> value)."""
    return [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]


def _int_or_none(v: Any) -> int | None:
    return None if v is None or pd.isna(v) else int(v)


def source_works(
    side: SideEvents, start: int, end: int, use_device_events: bool
) -> tuple[list[Work], dict[Key, int]]:
    """The source's works in [start, end] and, per key, when its data was ready to send."""
    rules = downtime_rules()
    works: list[Work] = []
    provides: dict[Key, int] = {}
    for name, t in side.checkpoints():
        named = rules.checkpoints["src"].get(name)
        if named and start < t <= end:
            works.append(Work("src", named, t))
    checkpointed = {w.step for w in works}
    for event, step in rules.events["src"].items():
        if step in checkpointed:
            continue
        for r in side.rows(event):
            t = int(side.ts[r])
            if start < t <= end:
                works.append(Work("src", step, t))
    if use_device_events:
        saves = device_events(side, "vmstate_downtime_save", start, end)
        for kind, idstr, inst, down, t in saves.itertuples(index=False):
            key = device_key(kind, idstr, inst)
            works.append(
                Work(
                    "src",
                    "save",
                    int(t),
                    int(t) - int(down) * 1000,
                    str(idstr),
                    _int_or_none(inst),
                    str(kind),
                )
            )
            provides[key] = int(t)
    else:
        sec = side.spans("section")
        sec = sec[(sec["start_ns"] >= start) & (sec["end_ns"] <= end)]
        for s in records_of(sec):
            works.append(
                Work(
                    "src",
                    "save",
                    int(s["end_ns"]),
                    int(s["start_ns"]),
                    _text(s["idstr"]),
                    _int_or_none(s.get("instance_id")),  # absent where no section had one
                    section_id=_int_or_none(s["section_id"]),
                )
            )
            sec_key = section_key(s["section_id"])
            if sec_key is not None:
                provides[sec_key] = int(s["end_ns"])
    checkpoint_times = dict(side.checkpoints())
    for cmd in rules.commands:
        if cmd.sent_by is None:
            continue
        sent = [int(side.ts[r]) for r in side.rows(cmd.sent_by) if start <= side.ts[r] <= end]
        done = checkpoint_times.get(cmd.sent_checkpoint) if cmd.sent_checkpoint else None
        if done is not None and not start <= done <= end:
            done = None
        if sent and done is not None and done > sent[-1]:
            works.append(Work("src", cmd.src_step or "send", done, sent[-1]))
            provides[("command", cmd.name)] = done
        elif sent:
            provides[("command", cmd.name)] = sent[-1]
    return works, provides


def destination_works(side: SideEvents, start: int, end: int, use_device_events: bool) -> list[Work]:
    """The destination's works that end in (start, end]; the last one starts the VM at ``end``."""
    rules = downtime_rules()
    works: list[Work] = []
    for name, t in side.checkpoints():
        step = rules.checkpoints["dst"].get(name)
        if step:
            works.append(Work("dst", step, t))
    checkpointed = {w.step for w in works if start < w.end_ns < end}
    for event, step in rules.events["dst"].items():
        if step not in checkpointed:
            works.extend(Work("dst", step, int(side.ts[r])) for r in side.rows(event))
    if use_device_events:
        loads = device_events(side, "vmstate_downtime_load", start, end)
        for kind, idstr, inst, down, t in loads.itertuples(index=False):
            works.append(
                Work(
                    "dst",
                    "load",
                    int(t),
                    int(t) - int(down) * 1000,
                    str(idstr),
                    _int_or_none(inst),
                    str(kind),
                    device_key(kind, idstr, inst),
                )
            )
    else:
        sec = side.spans("section", ("END", "FULL"))
        for s in records_of(sec):
            sid = _int_or_none(s["section_id"])
            device, instance = side.section_device(sid)
            kind = "iterable" if s["name"] == "END" else "non-iterable"
            works.append(
                Work(
                    "dst",
                    "load",
                    int(s["end_ns"]),
                    int(s["start_ns"]),
                    _text(s["idstr"]) or device,
                    _int_or_none(s.get("instance_id")) if instance is None else instance,
                    kind,
                    section_key(s["section_id"]),
                    sid,
                )
            )
    # RAM the source sent before it stopped and the destination loaded after: the iteration it
    # was loading when the source stopped and every one after it (the stream's backlog), up to
    # the first thing the source sends only after stopping.
    part = side.spans("section", ("PART",))
    part = part[(part["end_ns"] > start) & (part["start_ns"] < _first_sent_after_stop(side, start, end))]
    for s in records_of(part):
        part_id = _int_or_none(s["section_id"])
        device, instance = side.section_device(part_id)
        works.append(
            Work(
                "dst", "load", int(s["end_ns"]), int(s["start_ns"]), device, instance, "iterable",
                section_id=part_id, sent_before_stop=True,
            )
        )  # fmt: skip
    for cmd in rules.commands:
        spans = side.spans(cmd.kind, (cmd.name,))
        for s in records_of(spans):
            needs = ("command", cmd.name) if cmd.sent_by else None
            works.append(Work("dst", cmd.step, int(s["end_ns"]), int(s["start_ns"]), needs=needs))
    works = [w for w in works if start < w.end_ns < end]
    works.append(Work("dst", "start VM", end))
    return works


def _first_sent_after_stop(side: SideEvents, start: int, end: int) -> int:
    """When the destination began to read the first thing the source sends only after it
    stopped the VM (the END sections, the commands of ``downtime.toml``), or ``end``."""
    firsts = [end]
    for kind, names in [("section", ("END",))] + [
        (c.kind, (c.name,)) for c in downtime_rules().commands if c.sent_by
    ]:
        spans = side.spans(kind, names)
        after = spans["start_ns"][spans["start_ns"] > start]
        if len(after):
            firsts.append(int(after.min()))
    return min(firsts)


def _text(v: Any) -> str | None:
    return None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v)
