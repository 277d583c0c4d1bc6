"""Figures of a migration trace, as matplotlib ``Figure`` objects (no pyplot, no global state).

One module per figure, each drawing from analysis results:

* :mod:`reports.plots.gantt` — one lane per thread: phases, load sections, device loads and
  other spans as bars, BQL holds as a hatched strip along the bottom of the holder's lane,
  instants as ticks.
* :mod:`reports.plots.bql` — BQL hold and wait durations per thread as CDFs, p50/p99 marked.
* :mod:`reports.plots.phases` — the incoming phases as a waterfall, and the slowest device loads.
* :mod:`reports.plots.page_latency` — postcopy page-request latency over time, per channel.
* :mod:`reports.plots.compare` — phase durations and BQL hold totals per role, before and after.

:mod:`reports.plots.common` holds what they share: the time axis, one colour per phase, span
kind, instant kind and channel, the "not in this trace" errors, and :func:`save_figure`.
Times given to these functions are absolute trace nanoseconds, like ``Trace.ts`` and the
``start_ns`` columns; axes show time since the start of the trace (its first timestamped
event), or since the start of the window when zoomed in. When a trace lacks what a figure
needs, the function raises :class:`tracetool.errors.NotInTrace` naming the events to enable.

    >>> from reports.plots.gantt import gantt
    >>> from reports.plots.common import save_figure
    >>> save_figure(gantt(trace, registry.run(trace, "timeline")), "gantt.png")
"""
