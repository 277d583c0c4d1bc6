"""The BQL analysis of one process: its BQL events paired into holds and waits, the
inconsistencies, the statistics, and the frames built later on demand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tracetool._analyses.bql.context import Context
from tracetool._analyses.bql.events import BqlEvents, MutexEvents
from tracetool._analyses.bql.frames import HoldFrames
from tracetool._analyses.bql.holders import Holders
from tracetool._analyses.bql.identify import SiteTable
from tracetool._analyses.bql.intervals import Holds, Waits
from tracetool._analyses.bql.issues import out_of_order, overlaps
from tracetool._analyses.bql.pairing import (
    ATTRIBUTION_CALL_SITE,
    ATTRIBUTION_THREAD,
    index_type,
    pair_by_call_site,
    pair_per_thread,
)
from tracetool._analyses.bql.rules import bql_rules, role_of_site
from tracetool._analyses.bql.stats import hold_time_by_phase, thread_stats
from tracetool._model.trace import Trace

if TYPE_CHECKING:
    from tracetool._analyses.bql.report import BqlProcess


def no_bql_note() -> str:
    """What to do when no mutex is released from the BQL unlock function."""
    return (
        "no BQL found: no qemu_mutex_unlock from "
        + " or ".join(bql_rules().unlock_files)
        + "; name it with --bql-addr"
    )


@dataclass
class Selected:
    """The BQL events of one process, taken out of the mutex events of the whole trace."""

    bql: BqlEvents  # its ``row``: each event's place in time across threads
    with_tids: bool


def select_bql(
    res: BqlProcess,
    trace: Trace,
    ev: MutexEvents,
    sites: SiteTable,
    in_proc: np.ndarray,
    wanted: int | None,
    identified: tuple[int, str] | None,
) -> Selected | None:
    """The BQL events of the process (``in_proc`` of ``ev``), ordered by thread when the trace
    has thread ids; records the BQL and the events left out in ``res``. None: no BQL."""
    found = identified
    if wanted is not None:
        if (in_proc & ev.of_mutex(wanted)).any():
            found = (wanted, "given with --bql-addr")
        else:
            res.notes.append(f"--bql-addr {wanted:#x} does not occur in this process")
    if found is None:
        res.notes.append(no_bql_note())
        return None
    res.mutex, res.identified_by = found
    res.issues.mutex = found[0]
    mine = in_proc & ev.of_mutex(found[0])
    not_bql = sites.not_bql[np.maximum(ev.text_site, 0)]
    foreign = np.flatnonzero(mine & not_bql[ev.code])
    at, code = ev.row[foreign], ev.code[foreign]
    site, site_line = ev.text_site[code], ev.text_site_line[code]
    res.issues.add("not-bql-site", trace.source[at], trace.line[at], site, site_line)
    mine[foreign] = False
    sel = np.flatnonzero(mine).astype(index_type(len(mine)))
    del mine
    row = ev.row[sel]
    with_tid = trace.tid[row] >= 0
    if with_tid.any() and not with_tid.all():
        at = row[~with_tid]
        res.issues.add("no-thread-id", trace.source[at], trace.line[at])
        sel, row = sel[with_tid], row[with_tid]
    order = None
    if with_tid.any():
        thread = trace.row_thread[row]
        small = thread.astype(np.int16) if len(trace.threads) < 2**15 else thread
        del thread
        order = np.argsort(small, kind="stable").astype(index_type(len(small)))  # radix sort
        del small
    bql = BqlEvents.of(trace, ev, sel, row, order)
    return Selected(bql, bool(with_tid.any()))


def analyze_events(res: BqlProcess, trace: Trace, selected: Selected, sites: SiteTable, ctx: Context) -> None:
    """Pairs the BQL events of the process into holds and waits and fills in ``res``."""
    bql = selected.bql
    if selected.with_tids:
        res.attribution = ATTRIBUTION_THREAD
        pairs = pair_per_thread(bql.kind, bql.site, bql.thread, bql.row, sites.unlock_fn)
        out_of_order(res.issues, bql, trace.moved_rows)
        site_role = None
    else:
        res.attribution = ATTRIBUTION_CALL_SITE
        pairs = pair_by_call_site(bql.kind, bql.site)
        site_role = np.array([role_of_site(str(s), res.side) for s in sites.label], dtype=object)
        res.notes.append(
            "no thread ids: holds are exact (one holder at a time) and attributed "
            "to a thread role by the call site that took the BQL"
        )
        if pairs.unpaired_locks:
            res.notes.append(
                f"{pairs.unpaired_locks} lock events have no locked at the same "
                "call site (concurrent waiters cannot be told apart without thread "
                "ids): no wait time for them"
            )
    for idx, other, kind in pairs.issues:
        res.issues.add_events(kind, bql, idx, other)
    for idx, kind in pairs.edges:
        res.edge_table.add_events(kind, bql, idx)
    holders = Holders(trace, bql.thread, bql.site, site_role, res.process)
    holds = Holds.of(bql, pairs, holders)
    waits = Waits.of(bql, pairs, holders)
    del pairs
    if res.attribution == ATTRIBUTION_THREAD:
        overlaps(res.issues, bql, holds, holders.tid_of(holds.key))
    res.threads = thread_stats(holds, waits, holders)
    res.by_phase = hold_time_by_phase(ctx.phases(res.process), holds, holders)
    paths = trace.inputs["path"].astype(str).tolist()
    res.frames = HoldFrames(bql, holds, waits, sites, holders, paths, ctx, res.attribution)
    if not trace.has_time:
        res.notes.append("no timestamps in this trace: counts only, no durations")
