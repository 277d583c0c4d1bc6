"""Postcopy preempt waits on the destination, page-request latency, and the source's side.

* Preempt-thread wait: ``postcopy_preempt_thread_entry`` until the preempt channel is ready
  (``postcopy_preempt_new_channel``, emitted by the main loop when it accepts the channel).
  When the channel was accepted before the thread started, the thread did not wait: 0.
* Packaged-load wait: the gap after ``loadvm_handle_cmd_packaged_received`` until the first
  event of the package's own load. Before the threaded load, the coroutine spun there
  (reschedule + yield) until the main loop had accepted the preempt channel.
* Page requests: ``postcopy_page_req_add`` -> ``postcopy_page_req_del`` of the same address,
  one row each in ``PreemptReport.requests`` with the channel the page arrived on (see
  :func:`page_requests`); the JSON's ``page_requests`` summarises the destination's rows.
* Pages per channel: ``ram_load_postcopy_loop`` chan=0 (main) / chan=1 (preempt).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from tracetool._analyses.merge import process_mask, process_of_side
from tracetool._model.trace import Trace
from tracetool._timeline.builder import build_timeline
from tracetool._timeline.result import Timeline
from tracetool._timeline.rules import rules

PACKAGE_CONTENT = (
    "qemu_loadvm_state_section",
    "qemu_loadvm_state_section_startfull",
    "vmstate_load",
    "loadvm_process_command",
)
COROUTINE_EVENTS = (
    "aio_co_schedule",
    "aio_co_schedule_bh_cb",
    "qemu_coroutine_yield",
    "qemu_aio_coroutine_enter",
)
SOURCE_EVENTS = (
    "postcopy_preempt_switch_channel",
    "postcopy_preempt_send_host_page",
    "postcopy_preempt_reset_channel",
    "postcopy_preempt_hit",
    "postcopy_preempt_triggered",
    "postcopy_preempt_restored",
)
PAGE_REQUEST_KIND = "page-request"
"""The timeline's span kind of a postcopy page request."""
CHANNEL_EVENTS = ("postcopy_ram_fault_thread_request", "ram_load_postcopy_loop")
"""Events that give the channel of a requested page: the fault's RAM offset, the page's load."""


@dataclass
class PreemptReport:
    """Result of :func:`analyze_preempt`; ``to_json`` gives the stable document."""

    enabled: bool
    postcopy: bool
    thread_wait_us: float | None
    packaged_wait_us: float | None
    packaged_wait_yields: int | None
    channel_ready_ns: int | None
    thread_entry_ns: int | None
    page_requests: dict[str, Any]
    pages_by_channel: dict[str, int]
    source: dict[str, Any] | None
    requests: pd.DataFrame
    """One row per postcopy page request of every process (see :func:`page_requests`)."""
    notes: list[str] = field(default_factory=list)
    timeline_issues: int = 0

    def to_json(self) -> dict[str, Any]:
        """``{"preempt": {...}}`` as ``migtrace preempt --format json`` prints it."""
        return {
            "preempt": {
                "enabled": self.enabled,
                "postcopy": self.postcopy,
                "thread_wait_us": self.thread_wait_us,
                "packaged_wait_us": self.packaged_wait_us,
                "packaged_wait_yields": self.packaged_wait_yields,
                "channel_ready_ns": self.channel_ready_ns,
                "thread_entry_ns": self.thread_entry_ns,
                "page_requests": self.page_requests,
                "pages_by_channel": self.pages_by_channel,
                "source": self.source,
                "notes": list(self.notes),
            }
        }

    @property
    def empty(self) -> bool:
        """True when the trace has neither postcopy nor a preempt channel."""
        return not (self.postcopy or self.enabled)

    @property
    def issue_count(self) -> int:
        """Timeline inconsistencies of the trace."""
        return self.timeline_issues

    @property
    def requests_note(self) -> str | None:
        """Why there are no page requests to show (the events to enable), or None."""
        if len(self.requests):
            return None
        events = ", ".join(rules().span_events(PAGE_REQUEST_KIND))
        return f"not in this trace: enable {events} (for postcopy page requests)"

    @property
    def channel_note(self) -> str | None:
        """What to enable to learn the channel of the answered requests, or None when some
        answered request has one."""
        done = self.requests[self.requests["closed"].to_numpy(dtype=bool)]
        if done["channel_from"].notna().any():
            return None
        return f"to split by channel, enable {', '.join(CHANNEL_EVENTS)}"


def _first_ts(trace: Trace, event: str, mask: np.ndarray) -> tuple[int | None, int | None]:
    rows = trace.rows(event)
    rows = rows[mask[rows]] if len(rows) else rows
    if not len(rows):
        return None, None
    r = int(rows[0])
    ts = int(trace.ts[r])
    return (None if ts == NO_TIME else ts), r


def _us(a: int | None, b: int | None) -> float | None:
    return None if a is None or b is None else (b - a) / 1000.0


def analyze_preempt(trace: Trace) -> PreemptReport:
    """Preempt-channel waits, page-request latency and channel use (see module docstring)."""
    notes: list[str] = []
    dst = process_of_side(trace, "dst")
    src = process_of_side(trace, "src")
    dmask = process_mask(trace, dst) if dst else np.zeros(len(trace), bool)
    tl = build_timeline(trace)

    entry_ts, _ = _first_ts(trace, "postcopy_preempt_thread_entry", dmask)
    ready_ts, _ = _first_ts(trace, "postcopy_preempt_new_channel", dmask)
    postcopy = bool(
        len(trace.rows(["postcopy_ram_listen_thread_start", "loadvm_postcopy_handle_listen"]))
        and (dmask[trace.rows(["postcopy_ram_listen_thread_start", "loadvm_postcopy_handle_listen"])].any())
    )
    th = trace.threads
    roles = th[th["process"] == dst]["role"].astype(str) if dst else pd.Series(dtype=str)
    enabled = entry_ts is not None or ready_ts is not None or bool((roles == "preempt").any())
    if dst is None:
        notes.append("no destination process in this trace")
    elif not postcopy:
        notes.append("no postcopy in this trace (no LISTEN command, no listen thread)")
    elif not enabled:
        notes.append("postcopy without preempt: no preempt thread, no preempt channel")

    thread_wait = None
    if entry_ts is not None and ready_ts is not None:
        if ready_ts <= entry_ts:
            thread_wait = 0.0
            notes.append(
                f"preempt channel ready {(entry_ts - ready_ts) / 1e6:.3f} ms before the "
                "preempt thread started: the thread did not wait"
            )
        else:
            thread_wait = _us(entry_ts, ready_ts)
    elif entry_ts is not None:
        notes.append("preempt thread started but postcopy_preempt_new_channel never came")

    packaged_wait, yields = _packaged_wait(trace, dmask, ready_ts, notes)
    requests = page_requests(trace, tl)
    pages_by_channel = _pages_by_channel(trace, dmask)
    if enabled and postcopy and pages_by_channel.get("1", 0) == 0:
        notes.append("no page arrived on the preempt channel (chan=1) in this trace")
    source = _source(trace, src) if src else None
    return PreemptReport(
        enabled=enabled,
        postcopy=postcopy,
        thread_wait_us=thread_wait,
        packaged_wait_us=packaged_wait,
        packaged_wait_yields=yields,
        channel_ready_ns=ready_ts,
        thread_entry_ns=entry_ts,
        page_requests=_request_summary(requests, dst),
        pages_by_channel=pages_by_channel,
        source=source,
        requests=requests,
        notes=notes,
        timeline_issues=len(tl.issues),
    )


def _packaged_wait(
    trace: Trace, mask: np.ndarray, ready_ts: int | None, notes: list[str]
) -> tuple[float | None, int | None]:
    rec = trace.rows("loadvm_handle_cmd_packaged_received")
    rec = rec[mask[rec]] if len(rec) else rec
    if not len(rec):
        return None, None
    r = int(rec[0])
    thread = trace.row_thread[r]
    content = trace.rows(list(PACKAGE_CONTENT))
    content = content[(content > r) & (trace.row_thread[content] == thread)] if len(content) else content
    if not len(content):
        notes.append("the package's load never started after loadvm_handle_cmd_packaged_received")
        return None, None
    first = int(content[0])
    wait = _us(int(trace.ts[r]), int(trace.ts[first]))
    co = trace.rows(list(COROUTINE_EVENTS))
    yields = None
    if len(co):
        inside = co[(co > r) & (co < first) & (trace.row_thread[co] == thread)]
        yields = len(inside)
    if ready_ts is not None and ready_ts < int(trace.ts[r]):
        notes.append("preempt channel was ready before the package arrived: nothing to wait for")
    return wait, yields


def _request_summary(requests: pd.DataFrame, dst: str | None) -> dict[str, Any]:
    """The JSON's ``page_requests``: count, latency percentiles and unanswered requests of the
    destination."""
    req = requests[(requests["process"] == dst).to_numpy(dtype=bool)]
    done = req[req["closed"]]["duration_us"].dropna().to_numpy(dtype=float)
    out: dict[str, Any] = {
        "count": len(req),
        "p50_us": None,
        "p99_us": None,
        "max_us": None,
        "mean_us": None,
        "unmatched": int((~req["closed"]).sum()),
    }
    if len(done):
        out.update(
            p50_us=float(np.percentile(done, 50)),
            p99_us=float(np.percentile(done, 99)),
            max_us=float(done.max()),
            mean_us=float(done.mean()),
        )
    return out


def page_requests(trace: Trace, timeline: Timeline) -> pd.DataFrame:
    """Postcopy page requests of ``trace`` (every process) with the channel their page arrived on.

    Columns: ``process``, ``addr`` (Int64 host address), ``start_ns``, ``end_ns``,
    ``duration_us``, ``closed`` (False: not answered before the trace ends; the span then ends
    at the last event of its process), ``channel`` (Int64: 0 main, 1 preempt, NA unknown),
    ``channel_from``: ``page`` when the ``ram_load_postcopy_loop`` that received the requested
    page says (its offset is found through ``postcopy_ram_fault_thread_request``), ``thread``
    when only the answering thread's role does (preempt: 1, listen/load: 0); ``begin_row``,
    ``end_row`` (Int64, NA when unanswered) index ``trace.events``.
    """
    s = timeline.spans
    req = s[s["kind"] == PAGE_REQUEST_KIND].reset_index(drop=True)
    out = pd.DataFrame(
        {
            "process": req["process"].astype(str),
            "addr": req["addr"].astype("Int64")
            if "addr" in req
            else pd.array([pd.NA] * len(req), dtype="Int64"),
            "start_ns": req["start_ns"].astype(np.int64),
            "end_ns": req["end_ns"].astype(np.int64),
            "duration_us": req["duration_us"].astype(float),
            "closed": req["closed"].astype(bool),
        }
    )
    channel = pd.array([pd.NA] * len(req), dtype="Int64")
    source = np.full(len(req), None, dtype=object)
    if len(req):
        by_page = channel_by_page(trace, req)
        by_thread = channel_by_thread(trace, req)
        for values, name in ((by_page, "page"), (by_thread, "thread")):
            fill = pd.isna(channel) & pd.notna(values)
            channel[fill] = values[fill]
            source[fill] = name
    out["channel"] = channel
    out["channel_from"] = pd.array(source, dtype="string")
    out["begin_row"] = req["begin_row"].astype(np.int64)
    out["end_row"] = req["end_row"].astype("Int64")
    return out


def channel_by_page(trace: Trace, req: pd.DataFrame) -> pd.arrays.IntegerArray:
    """Per page-request span, the channel of the ``ram_load_postcopy_loop`` that loaded its page."""
    none = pd.array([pd.NA] * len(req), dtype="Int64")
    fault = trace.fields("postcopy_ram_fault_thread_request")
    loops = trace.fields("ram_load_postcopy_loop")
    if (
        not len(fault)
        or not len(loops)
        or not {"hostaddr", "offset"} <= set(fault.columns)
        or not {"channel", "addr"} <= set(loops.columns)
        or "addr" not in req
    ):
        return none
    q = pd.DataFrame(
        {
            "i": np.arange(len(req)),
            "hostaddr": req["addr"].astype("Int64").to_numpy(dtype=np.int64, na_value=-1),
            "begin": req["begin_row"].to_numpy(dtype=np.int64),
            "end": req["end_row"].astype("Int64").to_numpy(dtype=np.int64, na_value=-1),
        }
    )
    f = pd.DataFrame(
        {
            "hostaddr": fault["hostaddr"].to_numpy(dtype=np.int64, na_value=-2),
            "offset": fault["offset"].to_numpy(dtype=np.int64, na_value=-2),
            "frow": fault.index.to_numpy(dtype=np.int64),
        }
    )
    # the fault that asked for the page: the last one of that host address before the request
    q = pd.merge_asof(
        q.sort_values("begin"),
        f.sort_values("frow"),
        left_on="begin",
        right_on="frow",
        by="hostaddr",
        direction="backward",
    )
    q = q[q["offset"].notna() & (q["end"] >= 0)].copy()
    q["offset"] = q["offset"].astype(np.int64)
    lp = pd.DataFrame(
        {
            "offset": loops["addr"].to_numpy(dtype=np.int64, na_value=-2),
            "channel": loops["channel"].to_numpy(dtype=np.int64, na_value=-1),
            "lrow": loops.index.to_numpy(dtype=np.int64),
        }
    )
    # the page's load: the last loop iteration on that RAM offset before the request ended
    q = pd.merge_asof(
        q.sort_values("end"),
        lp.sort_values("lrow"),
        left_on="end",
        right_on="lrow",
        by="offset",
        direction="backward",
    )
    hit = q[q["channel"].notna() & (q["channel"] >= 0)]
    none[hit["i"].to_numpy(dtype=np.int64)] = hit["channel"].to_numpy(dtype=np.int64)
    return none


def channel_by_thread(trace: Trace, req: pd.DataFrame) -> pd.arrays.IntegerArray:
    """Per page-request span, 1 when a preempt thread answered it, 0 for the listen/load thread."""
    out = pd.array([pd.NA] * len(req), dtype="Int64")
    if not trace.has_tids:
        return out
    end = req["end_row"].astype("Int64").to_numpy(dtype=np.int64, na_value=-1)
    ok = end >= 0
    roles = trace.threads["role"].astype(str).to_numpy()[trace.row_thread[end[ok]]]
    chan = np.select([roles == "preempt", np.isin(roles, ("listen", "load"))], [1, 0], -1)
    idx = np.flatnonzero(ok)[chan >= 0]
    out[idx] = chan[chan >= 0]
    return out


def _pages_by_channel(trace: Trace, mask: np.ndarray) -> dict[str, int]:
    f = trace.fields("ram_load_postcopy_loop")
    if not len(f):
        return {}
    f = f[mask[f.index.to_numpy()]]
    if "channel" not in f:
        return {"unknown": len(f)}
    counts = f["channel"].astype("Int64").value_counts(dropna=False)
    # Both channels are always listed, so a run where chan=1 carried nothing reads as 0.
    out = {"0": 0, "1": 0}
    out.update(
        {
            ("unknown" if pd.isna(k) else str(int(k))): int(v)
            for k, v in sorted(
                counts.items(), key=lambda kv: (pd.isna(kv[0]), 0 if pd.isna(kv[0]) else int(kv[0]))
            )
        }
    )
    return out


def _source(trace: Trace, src: str) -> dict[str, Any]:
    smask = process_mask(trace, src)
    out: dict[str, Any] = {}
    for ev in SOURCE_EVENTS:
        rows = trace.rows(ev)
        out[ev.removeprefix("postcopy_preempt_")] = int(smask[rows].sum()) if len(rows) else 0
    sw = trace.fields("postcopy_preempt_switch_channel")
    if len(sw) and "channel" in sw:
        sw = sw[smask[sw.index.to_numpy()]]
        per = sw["channel"].dropna().astype(int).value_counts().sort_index()
        out["switch_to"] = {str(k): int(v) for k, v in per.items()}
    en = trace.fields("postcopy_preempt_enabled")
    enabled = None
    if len(en) and "value" in en:
        en = en[smask[en.index.to_numpy()]]
        if len(en):
            enabled = bool(en["value"].iloc[-1])
    out["enabled"] = enabled
    ready, _ = _first_ts(trace, "postcopy_preempt_new_channel", smask)
    out["channel_ns"] = ready
    return out
