"""Where batch work runs: local processes, a Dask LocalCluster, or an existing Dask cluster.

* ``processes`` (the default): a pool of ``workers`` local processes
  (``concurrent.futures``, started with ``spawn``, so nothing of the caller's state is shared);
* ``local``: a ``dask.distributed`` LocalCluster on 127.0.0.1 with ``workers`` single-threaded
  worker processes, each with ``memory_limit`` (Dask restarts a worker that goes beyond it; the
  run it held becomes an error row);
* ``tcp://HOST:PORT`` (any address with ``://``): the scheduler of a running Dask cluster,
  whose workers must have migtrace installed and see the run folders at the same paths.

Each run is one task; the results come back in the order the runs were given. Dask is in the
``scale`` extra: without it, ``local`` and addresses are a UsageError naming the extra.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tracetool._batch.work import BATCH_COLUMNS, RunResult, error_frame, error_text, expand_runs, measure_one
from tracetool.errors import UsageError

PROCESSES, LOCAL = "processes", "local"
DEFAULT_MEMORY_LIMIT = "4GiB"
SCALE_EXTRA = "pip install 'migtrace[scale]'"
BatchProgress = Callable[[int, int, str], None]
"""Called as each run finishes: (runs done, runs in all, the run's source)."""


@dataclass(frozen=True)
class BatchResult:
    """The batch table (every run's rows; a failed run is one row with ``error``), per run
    what happened, and how long it took."""

    table: pd.DataFrame
    results: tuple[RunResult, ...]
    scheduler: str
    workers: int
    seconds: float

    @property
    def failed(self) -> list[RunResult]:
        """The runs that could not be measured."""
        return [r for r in self.results if not r.ok]

    @property
    def measured(self) -> int:
        """How many runs were measured."""
        return sum(1 for r in self.results if r.ok)


def default_workers() -> int:
    """One worker per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def check_scheduler(scheduler: str) -> str:
    """``processes``, ``local`` or a scheduler address; UsageError otherwise."""
    if scheduler in (PROCESSES, LOCAL) or "://" in scheduler:
        return scheduler
    raise UsageError(
        f"scheduler {scheduler!r}: use processes, local or a Dask scheduler address (tcp://HOST:PORT)"
    )


def measure_runs(
    paths: Sequence[str],
    *,
    scheduler: str = PROCESSES,
    workers: int | None = None,
    labels: Mapping[str, str] | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    progress: BatchProgress | None = None,
) -> BatchResult:
    """Measures every run of ``paths`` (run folders; see :func:`expand_runs`) in parallel.

    Returns a :class:`BatchResult` whose ``table`` is every run's
    :func:`~tracetool._check.runmetrics.run_metrics` table one after another, with an
    ``error`` column (a failed run is one row with its error). ``labels`` go to every run.

        >>> result = measure_runs(["runs/threadify"], scheduler="local", workers=2)
        >>> result.table.groupby("id")["value"].median()
    """
    check_scheduler(scheduler)
    runs = expand_runs(paths)
    if not runs:
        raise UsageError("no runs to measure")
    n = workers if workers is not None else default_workers()
    if n < 1:
        raise UsageError(f"--workers {n}: at least 1")
    start = time.perf_counter()
    given = dict(labels or {})
    if scheduler == PROCESSES:
        results = _on_processes(runs, n, given, progress)
    else:
        results = _on_dask(runs, scheduler, n, given, memory_limit, progress)
    frames = [r.frame for r in results]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(BATCH_COLUMNS))
    return BatchResult(table, tuple(results), scheduler, n, time.perf_counter() - start)


def _collect(
    runs: list[tuple[str, ...]],
    futures: Mapping[Any, int],
    completed: Iterator[Any],
    result_of: Callable[[Any], RunResult],
    progress: BatchProgress | None,
) -> list[RunResult]:
    results: list[RunResult | None] = [None] * len(runs)
    for done, fut in enumerate(completed, 1):
        i = futures[fut]
        source = ", ".join(runs[i])
        try:
            results[i] = result_of(fut)
        except Exception as exc:  # the worker died (out of memory, killed): the run failed
            results[i] = RunResult(source, error_frame(source, error_text(exc)), error_text(exc))
        if progress is not None:
            progress(done, len(runs), source)
    return [r for r in results if r is not None]


def _on_processes(
    runs: list[tuple[str, ...]], workers: int, labels: dict[str, str], progress: BatchProgress | None
) -> list[RunResult]:
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(measure_one, run, labels): i for i, run in enumerate(runs)}
        return _collect(runs, futures, cf.as_completed(futures), lambda f: f.result(), progress)


def _import_dask() -> Any:
    try:
        import distributed
    except ImportError:
        raise UsageError(f"the Dask schedulers need the scale extra: {SCALE_EXTRA}") from None
    return distributed


@contextmanager
def dask_client(scheduler: str, workers: int, memory_limit: str) -> Iterator[Any]:
    """A Dask client: on a new LocalCluster (``local``) or connected to ``scheduler``."""
    distributed = _import_dask()
    if scheduler == LOCAL:
        import logging

        from dask.utils import parse_bytes

        try:
            parse_bytes(memory_limit)
        except (ValueError, TypeError):
            raise UsageError(f"--memory-limit {memory_limit!r}: a size such as 4GiB or 500MB") from None

        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=memory_limit,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        try:
            with distributed.Client(cluster) as client:
                yield client
        finally:
            with suppress(Exception):
                cluster.close()
        return
    try:
        client = distributed.Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    with client:
        yield client


def _on_dask(
    runs: list[tuple[str, ...]],
    scheduler: str,
    workers: int,
    labels: dict[str, str],
    memory_limit: str,
    progress: BatchProgress | None,
) -> list[RunResult]:
    distributed = _import_dask()
    with dask_client(scheduler, workers, memory_limit) as client:
        # pure=False: the same folder given twice is measured twice, as with local processes.
        futures = {client.submit(measure_one, run, labels, pure=False): i for i, run in enumerate(runs)}
        return _collect(runs, futures, distributed.as_completed(futures), lambda f: f.result(), progress)
