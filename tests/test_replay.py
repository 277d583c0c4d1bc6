"""Trace replay on real sample traces, checked against the raw lines."""

from __future__ import annotations

import calendar
import json
import lzma
import re
import sys
import textwrap
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import tracetool
from tests.conftest import sample
from tracetool._replay import EventContext

E72 = ("qemu-7.2", "e-precopy-mutex")
TFY_RUN = sample("qemu-threadify", "e-precopy-mutex", "per-thread")
LINE = re.compile(
    r"^(?:(?P<tid>\d+)@(?P<sec>\d+)\.(?P<usec>\d{6}):|(?P<iso>\S+Z) )"
    r"(?P<ev>\w+) ?(?P<args>.*)$"
)


def raw(path: str) -> list[tuple[int, re.Match[str]]]:
    """(line number, match) of every event line."""
    with lzma.open(path, "rt", encoding="utf-8") as f:
        return [(n, m) for n, line in enumerate(f, 1) if (m := LINE.match(line.rstrip("\n")))]


def ns(m: re.Match[str]) -> int:
    if m.group("sec"):
        return int(m.group("sec")) * 10**9 + int(m.group("usec")) * 1000
    dt = datetime.fromisoformat(m.group("iso").replace("Z", "+00:00"))
    return (calendar.timegm(dt.utctimetuple()) * 10**6 + dt.microsecond) * 1000


@pytest.fixture(scope="module")
def t72() -> tracetool.Trace:
    return tracetool.load(sample(*E72, "dst.trace.xz"), threads=[sample(*E72, "dst-threads.json")])


class Sections:
    """Collects the typed arguments of one event."""

    def __init__(self) -> None:
        self.seen: list[tuple[int | None, int | None, int, str, int, int]] = []

    def qemu_loadvm_state_section_startfull(
        self, ctx: EventContext, section_id: int, idstr: str, instance_id: int, version_id: int
    ) -> None:
        self.seen.append((ctx.ts_ns, ctx.tid, section_id, idstr, instance_id, version_id))


def test_handlers_get_typed_arguments_in_time_order(t72: tracetool.Trace) -> None:
    h = Sections()
    assert tracetool.replay(t72, h) is None
    expected = []
    for _, m in raw(sample(*E72, "dst.trace.xz")):
        if m.group("ev") == "qemu_loadvm_state_section_startfull":
            sid, idstr, inst, ver = re.fullmatch(r"(\d+)\((.*)\) (\d+) (\d+)", m.group("args")).groups()  # type: ignore[union-attr]
            expected.append((ns(m), int(m.group("tid")), int(sid), idstr, int(inst), int(ver)))
    expected.sort(key=lambda e: e[0])  # stable: file order among equal times
    assert h.seen == expected
    assert len(expected) > 20


def test_context_says_where_each_event_is(t72: tracetool.Trace) -> None:
    seen: list[EventContext] = []

    class Collect:
        def qmp_enter_migrate_incoming(self, ctx: EventContext, **args: Any) -> None:
            seen.append(ctx)

    tracetool.replay(t72, Collect())
    lines = {
        n: m for n, m in raw(sample(*E72, "dst.trace.xz")) if m.group("ev") == "qmp_enter_migrate_incoming"
    }
    assert len(seen) == len(lines) == 1
    ctx = seen[0]
    m = lines[ctx.line]
    assert ctx.source == sample(*E72, "dst.trace.xz")
    assert (ctx.ts_ns, ctx.tid, ctx.event) == (ns(m), int(m.group("tid")), m.group("ev"))
    names = json.loads(Path(sample(*E72, "dst-threads.json")).read_text())["tid_to_name"]
    assert ctx.thread == names[m.group("tid")]
    assert (ctx.role, ctx.process, ctx.decoded) == ("main", "dst", True)


def test_each_event_carries_its_own_thread(t72: tracetool.Trace) -> None:
    first: dict[int | None, EventContext] = {}

    class FirstPerThread:
        def qemu_mutex_locked(self, ctx: EventContext, **args: Any) -> None:
            first.setdefault(ctx.tid, ctx)

    tracetool.replay(t72, FirstPerThread())
    names = json.loads(Path(sample(*E72, "dst-threads.json")).read_text())["tid_to_name"]
    assert len(first) >= 3
    for tid, ctx in first.items():
        assert ctx.thread == names[str(tid)]
    assert {c.role for c in first.values()} >= {"main", "vcpu"}


def test_unreadable_arguments_arrive_as_none(tmp_path: Path) -> None:
    lines = [m.string for _, m in raw(sample(*E72, "dst.trace.xz"))[:5000]]
    at = next(i for i, line in enumerate(lines) if "qmp_enter_migrate_incoming" in line)
    stamp = lines[at].split(":", 1)[0]
    lines.insert(at, f"{stamp}:qemu_loadvm_state_section_startfull not-a-section")
    lines.insert(at, f"{stamp}:qemu_loadvm_state_section_startfull 3(ram) 0 4")
    path = tmp_path / "dst.trace"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    h = Sections()
    seen: list[bool] = []

    class Both:
        def qemu_loadvm_state_section_startfull(self, ctx: EventContext, **args: Any) -> None:
            seen.append(ctx.decoded)
            h.qemu_loadvm_state_section_startfull(ctx, **args)

    tracetool.replay(tracetool.load(str(path)), Both())
    tid = int(stamp.split("@")[0])
    assert seen[:2] == [True, False] and all(seen[2:])
    assert [s[1:] for s in h.seen[:2]] == [(tid, 3, "ram", 0, 4), (tid, None, None, None, None)]


def test_only_handled_events_are_decoded(t72: tracetool.Trace, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[str] = []
    real = type(t72).fields

    def spy(self: tracetool.Trace, event: str, rows: Any = None) -> Any:
        decoded.append(event)
        return real(self, event, rows)

    monkeypatch.setattr(type(t72), "fields", spy)
    tracetool.replay(t72, Sections())
    assert decoded == ["qemu_loadvm_state_section_startfull"]


def test_hooks_catchall_and_event_patterns(t72: tracetool.Trace) -> None:
    calls: list[str] = []

    class Counting:
        def __init__(self) -> None:
            self.counts: Counter[str] = Counter()
            self.locked = 0

        def begin(self) -> None:
            calls.append("begin")

        def qemu_mutex_locked(self, ctx: EventContext, mutex: int, file: str, line: int) -> None:
            self.locked += 1

        def catchall(self, ctx: EventContext, **args: Any) -> None:
            assert ctx.event != "qemu_mutex_locked"
            self.counts[ctx.event] += 1

        def end(self) -> tuple[Counter[str], int]:
            calls.append("end")
            return self.counts, self.locked

    counts, locked = tracetool.replay(t72, Counting(), events=["qemu_mutex_*", "qmp_*"])
    plain = Counter(m.group("ev") for _, m in raw(sample(*E72, "dst.trace.xz")))
    assert calls == ["begin", "end"]
    assert locked == plain["qemu_mutex_locked"]
    assert dict(counts) == {
        k: v for k, v in plain.items() if k.startswith(("qemu_mutex_", "qmp_")) and k != "qemu_mutex_locked"
    }


def test_source_and_destination_replay_as_one_timeline() -> None:
    trace = tracetool.load(TFY_RUN)

    class Order:
        def __init__(self) -> None:
            self.times: list[int] = []
            self.processes: set[str] = set()
            self.tids: set[int | None] = set()

        def catchall(self, ctx: EventContext, **args: Any) -> None:
            assert ctx.ts_ns is not None
            self.times.append(ctx.ts_ns)
            self.processes.add(ctx.process)
            self.tids.add(ctx.tid)

    h = Order()
    tracetool.replay(trace, h, events=["migrate*", "qmp_enter_*"])
    assert h.processes == {"dst", "src"}
    assert h.times == sorted(h.times)
    files = {int(p.name.split(".")[1]) for p in Path(TFY_RUN).glob("*.trace.xz")}
    assert h.tids <= files
    plain = sum(
        1
        for p in Path(TFY_RUN).glob("*.trace.xz")
        for _, m in raw(str(p))
        if m.group("ev").startswith(("migrate", "qmp_enter_"))
    )
    assert len(h.times) == plain


def test_documented_example_matches_a_plain_interval_computation() -> None:
    source = Path(sys.modules["tracetool._replay"].__file__ or "").read_text()
    example = textwrap.dedent(source.split("::\n\n", 1)[1].split("    # ->", 1)[0])
    example = example.replace('"sample_traces/', f'"{Path(TFY_RUN).parents[2]}/')
    scope: dict[str, Any] = {}
    exec(
        compile(
            example.replace("tracetool.replay(trace,", "result = tracetool.replay(trace,"),
            "replay-example",
            "exec",
        ),
        scope,
    )
    result = dict(scope["result"])

    # The same figure from the per-thread files, plainly: main-thread waits for the BQL,
    # load-thread holds with the device announced inside them, and their overlaps.
    names = json.loads(Path(TFY_RUN, "dst-threads.json").read_text())
    main_tid = names["main_thread_tid"]
    load_tid = next(int(t) for t, n in names["tid_to_name"].items() if n == "mig/dst/main")
    bql = scope["bql"]
    addr = f"mutex {bql:#x} "

    def mutex_lines(tid: int) -> list[tuple[str, int, str]]:
        out = []
        for _, m in raw(f"{TFY_RUN}/dst.{tid}.trace.xz"):
            if m.group("ev").startswith("qemu_mutex") and addr in m.group("args"):
                out.append((m.group("ev"), ns(m), ""))
            elif m.group("ev") == "qemu_loadvm_state_section_startfull":
                out.append(("device", ns(m), m.group("args").split("(", 1)[1].rsplit(")", 1)[0]))
        return out

    waits, start = [], None
    for ev, t, _ in mutex_lines(main_tid):
        if ev == "qemu_mutex_lock":
            start = t
        elif ev == "qemu_mutex_locked" and start is not None:
            waits.append((start, t))
            start = None
    holds: list[tuple[int, int, str | None]] = []
    start, device = None, None
    for ev, t, dev in mutex_lines(load_tid):
        if ev == "device":
            device = dev
        elif ev == "qemu_mutex_locked":
            start = t
        elif ev == "qemu_mutex_unlock" and start is not None:
            holds.append((start, t, device))
            start = None
    expected: dict[str | None, float] = defaultdict(float)
    for ws, we in waits:
        for hs, he, held_for in holds:
            if min(we, he) > max(ws, hs):
                expected[held_for] += (min(we, he) - max(ws, hs)) / 1000
    assert result == dict(expected)
    assert max(result.values()) > 1000  # a device load stalled the main loop for over 1 ms
