"""Statistics over repeated runs: the spread of each side and the change between two sides.

Migration benchmarks have few runs and skewed, noisy timings, so everything here is
nonparametric:

* each side: every run's value, n, the median and the quartiles (numpy's linear interpolation);
* the change: the Hodges–Lehmann shift (the median of all ``after - before`` differences) with
  the 95 % interval obtained by inverting the two-sided Mann–Whitney test (the shifts ``d`` for
  which ``after - d`` against ``before`` is not rejected at 5 %: the interval between two
  pairwise differences), and the test's p-value, both from ``scipy.stats.mannwhitneyu`` (exact
  for small samples without ties, else its normal approximation);
* ``significant``: p < 0.05 and the interval excludes 0.

With n runs per side and no ties, the exact two-sided p-value cannot go below
``2 / C(2n, n)``: 0.33 for 2 runs, 0.1 for 3, 0.029 for 4. Below 4 runs per side a 5 % test
can never find a difference, whatever the data (:func:`min_p_value`); the interval is then
unbounded and :attr:`Change.note` says so instead of implying there was no change.

    >>> c = change([23.0, 135.0, 121.0], [15.0, 21.0, 18.0])
    >>> c.shift, c.p_value, c.significant, c.note
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

ALPHA = 0.05
EXACT_PERMUTATIONS = 1000


def mann_whitney_method(n_before: int, n_after: int) -> Any:
    """The ``method`` given to ``scipy.stats.mannwhitneyu`` for these sample sizes."""
    # scipy's permutation test needs two values a side; one run a side is exact either way.
    if min(n_before, n_after) >= 2 and math.comb(n_before + n_after, n_before) <= EXACT_PERMUTATIONS:
        return stats.PermutationMethod(n_resamples=EXACT_PERMUTATIONS)
    return "auto"


@dataclass(frozen=True)
class Spread:
    """One side of a metric: every run's value (None: not measurable in that run) and the
    median and quartiles of the measured ones (None when there are none)."""

    values: tuple[float | None, ...]
    n: int
    median: float | None
    q1: float | None
    q3: float | None

    @property
    def measured(self) -> list[float]:
        """The values of the runs that had one."""
        return [v for v in self.values if v is not None]

    def to_json(self) -> dict[str, Any]:
        """``{"n", "values", "median", "q1", "q3"}``."""
        return {"n": self.n, "values": list(self.values), "median": self.median, "q1": self.q1, "q3": self.q3}


def spread(values: Sequence[float | None]) -> Spread:
    """The spread of one side's values (None entries are runs without a value)."""
    kept = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    shown = tuple(None if v is None or math.isnan(float(v)) else float(v) for v in values)
    if not kept:
        return Spread(shown, 0, None, None, None)
    q1, median, q3 = (float(x) for x in np.percentile(kept, [25, 50, 75]))
    return Spread(shown, len(kept), median, q1, q3)


@dataclass(frozen=True)
class Change:
    """``after - before`` as a Hodges–Lehmann shift with its interval and the Mann–Whitney
    p-value; None where the runs cannot give it (``note`` says why)."""

    shift: float | None
    ci_low: float | None
    ci_high: float | None
    relative: float | None
    p_value: float | None
    significant: bool
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"shift", "ci_low", "ci_high", "relative", "p_value", "significant", "note"}``."""
        return {
            "shift": self.shift,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "relative": self.relative,
            "p_value": self.p_value,
            "significant": self.significant,
            "note": self.note,
        }


def min_p_value(n_before: int, n_after: int) -> float:
    """The smallest two-sided p-value the exact Mann–Whitney test can give these sample sizes:
    ``2 / C(n1 + n2, n1)`` (all of one side below all of the other, no ties)."""
    if not n_before or not n_after:
        return 1.0
    return min(1.0, 2.0 / math.comb(n_before + n_after, n_before))


def runs_needed(alpha: float = ALPHA) -> int:
    """The fewest runs per side (equal sides) with which a difference can be significant."""
    n = 1
    while min_p_value(n, n) >= alpha:
        n += 1
    return n


def too_few_note(n_before: int, n_after: int, alpha: float = ALPHA) -> str | None:
    """The note for sample sizes that can never reach ``alpha``, else None."""
    if min_p_value(n_before, n_after) < alpha:
        return None
    return (
        f"too few runs for a significant difference at {alpha * 100:g} %: "
        f"need at least {runs_needed(alpha)} per side (with {n_before} and {n_after} runs the "
        f"exact p-value cannot go below {min_p_value(n_before, n_after):.2g})"
    )


def change(before: Sequence[float], after: Sequence[float], alpha: float = ALPHA) -> Change:
    """The change from ``before`` to ``after`` (measured values only; see module docstring)."""
    b = np.asarray([float(v) for v in before], dtype=np.float64)
    a = np.asarray([float(v) for v in after], dtype=np.float64)
    if not len(b) or not len(a):
        side = "before" if not len(b) else "after"
        return Change(None, None, None, None, None, False, f"no value on the {side} side")
    diffs = (a[:, None] - b[None, :]).ravel()
    shift = float(np.median(diffs))
    base = float(np.median(b))
    relative = shift / base if base else None
    p = _p_value(a, b)
    low, high = _interval(a, b, np.unique(diffs), alpha)
    excludes_zero = low is not None and high is not None and (low > 0 or high < 0)
    significant = p < alpha and excludes_zero
    note = too_few_note(len(b), len(a), alpha)
    if note is None and not significant:
        note = "no significant change"
    return Change(shift, low, high, relative, p, significant, note)


def _p_value(a: np.ndarray, b: np.ndarray) -> float:
    method = mann_whitney_method(len(b), len(a))
    p = float(stats.mannwhitneyu(a, b, alternative="two-sided", method=method).pvalue)
    return 1.0 if math.isnan(p) else p  # every value equal on both sides: nothing to tell apart


def _interval(
    a: np.ndarray, b: np.ndarray, cuts: np.ndarray, alpha: float
) -> tuple[float | None, float | None]:
    """The shifts ``d`` for which ``a - d`` against ``b`` is not rejected, as the pairwise
    differences bounding them; None for an end that is not bounded (too few runs).

    The test's verdict changes only at the pairwise differences, so it is asked at each of
    them, once between each two neighbours and once beyond each end.
    """
    k = len(cuts)
    probes = np.empty(2 * k + 1)
    probes[0], probes[-1] = cuts[0] - 1.0, cuts[-1] + 1.0
    probes[1:-1:2] = cuts
    probes[2:-1:2] = (cuts[:-1] + cuts[1:]) / 2
    p = np.empty(len(probes))
    method = mann_whitney_method(len(b), len(a))
    # The probes at the differences tie a value of each side: asked apart from the others, so
    # that scipy's choice of method for the ones between is not swayed by those ties.
    for part in (slice(1, -1, 2), slice(0, None, 2)):
        shifted = a[None, :] - probes[part, None]
        others = np.broadcast_to(b, (len(shifted), len(b)))
        p[part] = stats.mannwhitneyu(shifted, others, axis=1, method=method).pvalue
    kept = np.flatnonzero(np.nan_to_num(p, nan=1.0) >= alpha)
    if not len(kept):
        return None, None
    first, last = int(kept[0]), int(kept[-1])
    # Probe 2i+1 is cuts[i]; probe 2i (i >= 1) lies between cuts[i-1] and cuts[i].
    low = None if first == 0 else float(cuts[(first - 1) // 2])
    high = None if last == 2 * k else float(cuts[last // 2])
    return low, high
