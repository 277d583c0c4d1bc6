"""Multifd receive channels (threads ``mig/dst/recv_N``): packets, pages and sync waits.

Event signatures changed across releases (``multifd_recv`` counted ``used`` pages, then
``normal``/``zero`` pages, then became ``multifd_recv_unfill`` without page counts); pages are
summed from whichever count the trace carries and reported as None when it carries none.

Packets are the traced packet events of a channel. Only a channel that has none (packet events
not enabled) takes QEMU's own total from ``multifd_recv_thread_end``; that total also counts
the channel's handshake packet, which no packet event reports, so the two never add up.

Sync waits: at every sync point the load thread traces ``multifd_recv_sync_main_wait`` once
per channel and blocks on one semaphore that every channel posts when it reaches the sync
packet, so the i-th wait ends when the i-th channel arrives, whichever it is: the argument is
a loop index, not the channel waited for. Only the whole sync is reported, from the first wait
to ``multifd_recv_sync_main`` (the ``multifd-sync`` span of the timeline).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tracetool._model.trace import Trace
from tracetool._timeline.builder import build_timeline

PACKET_EVENTS = ("multifd_recv", "multifd_recv_unfill")
CHANNEL_EVENTS = (
    "multifd_recv_new_channel",
    "multifd_recv_thread_start",
    "multifd_recv_thread_end",
    *PACKET_EVENTS,
    "multifd_recv_sync_main_signal",
    "multifd_recv_sync_main_wait",
)
PAGE_ARGS = ("used", "normal", "zero")
END_PAGE_ARGS = ("pages", "normal_pages", "zero_pages")
NOT_TRACED = (
    "not in this trace: enable multifd_* events (-trace 'multifd_*') and the multifd "
    "capability to see recv_N channels"
)


@dataclass
class MultifdReport:
    """The destination's multifd receive channels (see ``to_json`` for the keys)."""

    present: bool
    channels: list[dict[str, Any]] = field(default_factory=list)
    sync: dict[str, Any] | None = None
    note: str | None = None

    @property
    def empty(self) -> bool:
        """True when the trace has no multifd receive events."""
        return not self.present

    @property
    def issue_count(self) -> int:
        """Nothing of multifd is checked for consistency."""
        return 0

    def to_json(self) -> dict[str, Any]:
        """``{"present", "channels": [{"id", "tid", "thread", "packets", "pages",
        "packets_from"}], "sync": {"count", "total_us", "max_us"}, "note"}``. ``packets_from``
        says where the packet count comes from: "events" (traced packets) or "thread_end"
        (QEMU's total, which includes the handshake packet)."""
        return {"present": self.present, "channels": self.channels, "sync": self.sync, "note": self.note}


def multifd_recv(trace: Trace, process_mask: np.ndarray | None = None) -> MultifdReport:
    """Per-channel packets/pages and the sync waits of the destination's multifd threads."""
    rows = trace.rows([*CHANNEL_EVENTS, "multifd_recv_sync_main"])
    if process_mask is not None and len(rows):
        rows = rows[process_mask[rows]]
    if not len(rows):
        return MultifdReport(False, note=NOT_TRACED)
    per_channel: dict[int, dict[str, Any]] = {}

    def channel(cid_value: Any) -> dict[str, Any]:
        cid = int(str(cid_value))
        return per_channel.setdefault(
            cid, {"id": cid, "tid": None, "thread": None, "packets": 0, "pages": None, "packets_from": None}
        )

    for ev in ("multifd_recv_new_channel", "multifd_recv_thread_start", *PACKET_EVENTS):
        for cid_value, part in _by_channel(trace, ev, process_mask):
            ch = channel(cid_value)
            if ev not in PACKET_EVENTS:
                continue
            ch["packets"] += len(part)
            ch["packets_from"] = "events"
            pages = [part[a] for a in PAGE_ARGS if a in part]
            if pages:
                ch["pages"] = (ch["pages"] or 0) + int(sum(p.fillna(0).sum() for p in pages))
            _set_thread(trace, ch, part.index.to_numpy())
    for cid_value, part in _by_channel(trace, "multifd_recv_thread_end", process_mask):
        ch = channel(cid_value)
        if ch["packets_from"] is None and "packets" in part:
            ch["packets"] = int(part["packets"].fillna(0).sum())
            ch["packets_from"] = "thread_end"
        totals = [part[a] for a in END_PAGE_ARGS if a in part and part[a].notna().any()]
        if ch["pages"] is None and totals:
            ch["pages"] = int(sum(p.fillna(0).sum() for p in totals))
        if ch["tid"] is None:
            _set_thread(trace, ch, part.index.to_numpy())

    tl = build_timeline(trace)
    waits = tl.spans[(tl.spans["kind"] == "wait") & (tl.spans["name"] == "multifd-sync")]
    if process_mask is not None and len(waits):
        waits = waits[process_mask[waits["begin_row"].to_numpy()]]
    d = waits["duration_us"].dropna()
    sync = {
        "count": len(waits),
        "total_us": float(d.sum()) if len(d) else None,
        "max_us": float(d.max()) if len(d) else None,
    }
    return MultifdReport(True, [per_channel[k] for k in sorted(per_channel)], sync)


def _by_channel(trace: Trace, event: str, mask: np.ndarray | None) -> list[tuple[Any, pd.DataFrame]]:
    f = trace.fields(event)
    if not len(f) or "id" not in f:
        return []
    if mask is not None:
        f = f[mask[f.index.to_numpy()]]
    return list(f.groupby("id", dropna=True))


def _set_thread(trace: Trace, ch: dict[str, Any], rows: np.ndarray) -> None:
    if not len(rows):
        return
    t = int(pd.Series(trace.row_thread[rows]).mode().iloc[0])
    th = trace.threads
    tid, name = th["tid"].iloc[t], th["name"].iloc[t]
    ch["tid"] = None if pd.isna(tid) else int(tid)
    ch["thread"] = None if pd.isna(name) else str(name)
