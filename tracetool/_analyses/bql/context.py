"""Where a hold happened: the phase, load section and device its holder was in when it took
the BQL (:mod:`tracetool._timeline.builder`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from parsers.segment import NO_TIME
from tracetool._analyses.bql.pairing import ATTRIBUTION_THREAD
from tracetool._model.trace import Trace
from tracetool.errors import UsageError

KINDS = ("phase", "section", "device")


class Context:
    """Phases of a process, and the phase / section / device a thread was in at given times."""

    source = "none"

    def phases(self, process: str) -> pd.DataFrame:
        """Columns ``name``, ``start_ns``, ``end_ns``."""
        return pd.DataFrame(
            {
                "name": pd.Series([], dtype=object),
                "start_ns": np.zeros(0, np.int64),
                "end_ns": np.zeros(0, np.int64),
            }
        )

    def at(
        self, process: str, tid: int | None, start: np.ndarray, end: np.ndarray, kinds: Sequence[str] = KINDS
    ) -> dict[str, tuple[np.ndarray, list[str]]]:
        """Per hold (taken at ``start``, released at ``end``): each of ``kinds`` (``phase``,
        ``section``, ``device``) as (codes, names); code -1 is unknown. The phase is the
        process's whatever ``tid`` is."""
        none = np.full(len(start), -1, dtype=np.int64)
        return {k: (none, []) for k in kinds}


class TimelineContext(Context):
    """Phases, sections and devices from :mod:`tracetool._timeline.builder`.

    The phase is process-wide (the innermost phase when the lock was taken); section and device
    are the holder's own. The threaded load takes the BQL just before it announces the device
    (``qemu_loadvm_state_section_startfull``), so a hold taken outside any device span gets the
    first device span of its thread that starts while it is held, and before the section it was
    taken in (if any) ends.
    """

    source = "timeline"

    def __init__(self, trace: Trace) -> None:
        from tracetool._timeline.builder import build_timeline
        from tracetool._timeline.queries import enclosing

        self._enclosing = enclosing
        self._timeline = build_timeline(trace)
        self._spans = self._timeline.spans
        self._selected: dict[tuple[str, str | None], pd.DataFrame] = {}

    def _of(self, process: str, kind: str | None = None) -> pd.DataFrame:
        found = self._selected.get((process, kind))
        if found is None:
            s = self._spans
            sel = (s["process"].astype(str) == process).to_numpy(dtype=bool) & (
                s["start_ns"].to_numpy(dtype=np.int64) != NO_TIME
            )
            if kind is not None:
                sel = sel & (s["kind"] == kind).to_numpy(dtype=bool)
            found = self._selected[(process, kind)] = s[sel]
        return found

    def phases(self, process: str) -> pd.DataFrame:
        p = self._of(process, "phase")
        return pd.DataFrame(
            {
                "name": p["name"].astype(str).to_numpy(dtype=object),
                "start_ns": p["start_ns"].to_numpy(dtype=np.int64),
                "end_ns": p["end_ns"].to_numpy(dtype=np.int64),
            }
        )

    def _enclosing_at(
        self, process: str, tid: int | None, ts: np.ndarray, kind: str
    ) -> tuple[np.ndarray, list[str]]:
        """``enclosing`` for many times, asked once per stretch between the edges of the
        spans it considers: between two consecutive edges every time has the same answer."""
        spans = self._of(process, kind)
        if tid is not None:
            spans = spans[(spans["tid"] == tid).fillna(False).to_numpy(dtype=bool)]
        if spans.empty or not len(ts):
            return np.full(len(ts), -1, dtype=np.int64), []
        edges = np.unique(
            np.r_[spans["start_ns"].to_numpy(dtype=np.int64), spans["end_ns"].to_numpy(dtype=np.int64)]
        )
        pos = np.searchsorted(edges, ts, side="left")
        on_edge = edges[np.minimum(pos, len(edges) - 1)] == ts
        first, inverse = _runs(pos * 2 + on_edge)
        found = self._enclosing(self._timeline, process, tid, ts[first], kinds=(kind,))
        values = _objects(found["name"])
        if kind == "section" and "idstr" in found:
            idstr = _objects(found["idstr"])
            values = np.array(
                [
                    v if i is None or v is None or i == v else f"{i} ({v})"
                    for v, i in zip(values, idstr, strict=True)
                ],
                dtype=object,
            )
        codes, names = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
        return np.asarray(codes, dtype=np.int64)[inverse], [str(n) for n in names]

    def at(
        self, process: str, tid: int | None, start: np.ndarray, end: np.ndarray, kinds: Sequence[str] = KINDS
    ) -> dict[str, tuple[np.ndarray, list[str]]]:
        out: dict[str, tuple[np.ndarray, list[str]]] = {}
        if "phase" in kinds:
            out["phase"] = self._enclosing_at(process, None, start, "phase")
        if "section" in kinds:
            out["section"] = self._enclosing_at(process, tid, start, "section")
        if "device" in kinds:
            out["device"] = self._device_at(process, tid, start, end)
        return out

    def _device_at(
        self, process: str, tid: int | None, start: np.ndarray, end: np.ndarray
    ) -> tuple[np.ndarray, list[str]]:
        dev_codes, dev_names = self._enclosing_at(process, tid, start, "device")
        todo = dev_codes < 0
        if todo.any():
            spans = self._of(process, "device")
            if tid is not None:
                spans = spans[(spans["tid"] == tid).fillna(False).to_numpy(dtype=bool)]
            spans = spans.sort_values("start_ns", kind="stable")
            starts = spans["start_ns"].to_numpy(dtype=np.int64)
            i = np.searchsorted(starts, start[todo], side="left")
            ok = i < len(starts)
            until = np.minimum(end[todo], self._section_end(process, tid, start[todo]))
            ok[ok] = starts[i[ok]] <= until[ok]
            span_names = [str(n) for n in spans["name"].astype(object)]
            lookup = {n: k for k, n in enumerate(dev_names)}
            span_code = np.array(
                [lookup.setdefault(n, len(lookup)) for n in span_names] + [-1], dtype=np.int64
            )
            dev_names = list(lookup)
            fill = np.where(ok, span_code[np.where(ok, i, len(span_names))], -1)
            dev_codes = dev_codes.copy()
            dev_codes[todo] = fill
        return dev_codes, dev_names

    def _section_end(self, process: str, tid: int | None, ts: np.ndarray) -> np.ndarray:
        """Per time: the end of the section the thread was in at that time (the largest int64
        when it was in none). A hold taken in one section is not another section's device load
        (a 7.2 main thread holds the BQL across RAM's last section and the first devices)."""
        span = self._enclosing(self._timeline, process, tid, ts, kinds=("section",))["span"]
        inside = span.notna().to_numpy(dtype=bool)
        out = np.full(len(ts), np.iinfo(np.int64).max, dtype=np.int64)
        ends = self._spans["end_ns"].to_numpy(dtype=np.int64, na_value=np.iinfo(np.int64).max)
        out[inside] = ends[span[inside].to_numpy(dtype=np.int64)]
        return out


def _runs(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First index of each distinct key, and each element's distinct-key number."""
    if len(key) > 1 and bool((key[1:] >= key[:-1]).all()):  # sorted: no sort needed
        new = np.r_[True, key[1:] != key[:-1]]
        return np.flatnonzero(new), np.cumsum(new) - 1
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def _objects(values: pd.Series) -> np.ndarray:
    """A column as an object array with None for missing values."""
    out = np.array(values.astype(object).to_numpy(dtype=object), dtype=object, copy=True)
    out[pd.isna(out)] = None
    return out


def make_context(trace: Trace, source: str) -> Context:
    if source == "none":
        return Context()
    if source in ("auto", "timeline"):
        return TimelineContext(trace)
    raise UsageError(f"unknown context source {source!r} (auto, timeline, none)")


def attach_context(ctx: Context, label: str, holds: pd.DataFrame, attribution: str | None) -> None:
    """Fills phase, section and device of each hold from the time it was taken."""
    if ctx.source == "none" or holds.empty:
        return
    start = holds["start_ns"].to_numpy(dtype=np.int64, na_value=NO_TIME)
    end = holds["end_ns"].to_numpy(dtype=np.int64, na_value=np.iinfo(np.int64).max)
    timed = start != NO_TIME
    tids = holds["tid"].to_numpy(dtype=np.int64, na_value=-1)
    if attribution == ATTRIBUTION_THREAD:
        queries = [(int(t), timed & (tids == t)) for t in np.unique(tids[timed]).tolist()]
    else:
        # Without thread ids the load's sections say what a hold did only for load-role holds.
        is_load = (holds["role"] == "load").to_numpy(dtype=bool)
        queries = [(-1, timed)]
    codes = {k: np.full(len(holds), -1, dtype=np.int64) for k in KINDS}
    names: dict[str, dict[str, int]] = {k: {} for k in codes}
    # The phase is the process's: one query for every hold; sections and devices per thread.
    for tid, mask, kinds in [(-1, timed, ("phase",)), *((t, m, KINDS[1:]) for t, m in queries)]:
        if not mask.any():
            continue
        for k, (local, local_names) in ctx.at(
            label, None if tid < 0 else tid, start[mask], end[mask], kinds
        ).items():
            remap = np.array(
                [names[k].setdefault(n, len(names[k])) for n in local_names] + [-1], dtype=np.int64
            )
            codes[k][mask] = remap[np.where(local >= 0, local, len(local_names))]
    if attribution != ATTRIBUTION_THREAD:
        codes["section"][~is_load] = -1
        codes["device"][~is_load] = -1
    for k in codes:
        holds[k] = pd.Categorical.from_codes(codes[k], categories=pd.Index(list(names[k]), dtype=object))
