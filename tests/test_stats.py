"""The statistics of repeated runs against independent readings: quartiles from the standard
library, the Hodges–Lehmann shift from the pairwise differences, the exact Mann–Whitney p-value
by enumerating every relabelling, and the 95 % interval against the textbook critical values."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest
from scipy import stats as sp

from tracetool._analyses.stats import change, min_p_value, spread

# Two-sided 5 % critical values of the Mann–Whitney U for equal sample sizes (the largest U
# that is rejected), as printed in the standard tables.
U_CRITICAL = {4: 0, 5: 2, 6: 5, 7: 8, 8: 13}


def samples(n: int, shift: float, seed: int) -> tuple[list[float], list[float]]:
    rnd = random.Random(seed)
    before = [rnd.gauss(100, 10) for _ in range(n)]
    after = [rnd.gauss(100 + shift, 10) for _ in range(n)]
    return before, after


def u_statistic(x: list[float], y: list[float]) -> float:
    """U of ``x``: pairs where x wins, ties counting one half."""
    return sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in x for b in y)


def exact_p(before: list[float], after: list[float]) -> float:
    """Two-sided permutation p-value of U, every relabelling enumerated."""
    pooled = before + after
    n, m = len(after), len(before)
    centre = n * m / 2
    observed = abs(u_statistic(after, before) - centre)
    hits = total = 0
    for chosen in itertools.combinations(range(len(pooled)), n):
        picked = set(chosen)
        x = [pooled[i] for i in chosen]
        y = [pooled[i] for i in range(len(pooled)) if i not in picked]
        total += 1
        hits += abs(u_statistic(x, y) - centre) >= observed - 1e-9
    return hits / total


@pytest.mark.parametrize("values", [[3.0, 1.0, 2.0], [5.0, 1.0, 9.0, 2.0, 7.0, 7.0], [42.0]])
def test_spread_is_the_median_and_quartiles(values: list[float]) -> None:
    s = spread([*values, None])
    assert s.n == len(values)
    assert s.values == (*values, None)
    assert s.median == statistics.median(values)
    if len(values) > 1:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        assert (s.q1, s.q3) == (pytest.approx(q1), pytest.approx(q3))
    assert spread([None, None]).median is None


@pytest.mark.parametrize(("n", "seed"), [(3, 1), (4, 2), (5, 3), (5, 4), (6, 5)])
def test_shift_and_p_value_equal_an_exhaustive_reading(n: int, seed: int) -> None:
    before, after = samples(n, 15, seed)
    c = change(before, after)
    assert c.shift == pytest.approx(statistics.median(a - b for a in after for b in before))
    assert c.relative == pytest.approx(c.shift / statistics.median(before))
    assert c.p_value == pytest.approx(exact_p(before, after))


def test_ties_keep_the_exact_p_value() -> None:
    """Counts that repeat across runs (ram.pages of a build that sends the same pages)."""
    before, after = [137362.0] * 3, [139410.0, 140594.0, 140562.0]
    assert change(before, after).p_value == pytest.approx(exact_p(before, after)) == pytest.approx(0.1)
    before, after = [3.0, 3.0, 4.0, 5.0, 5.0], [4.0, 5.0, 5.0, 6.0, 6.0]
    assert change(before, after).p_value == pytest.approx(exact_p(before, after))


@pytest.mark.parametrize("n", sorted(U_CRITICAL))
def test_interval_is_the_textbook_order_statistics(n: int) -> None:
    before, after = samples(n, 12, 100 + n)
    diffs = sorted(a - b for a in after for b in before)
    k = U_CRITICAL[n] + 1  # the interval runs from the k-th smallest to the k-th largest difference
    c = change(before, after)
    assert (c.ci_low, c.ci_high) == (pytest.approx(diffs[k - 1]), pytest.approx(diffs[-k]))
    assert c.ci_low <= c.shift <= c.ci_high


@pytest.mark.parametrize(("n", "seed"), [(4, 7), (7, 8), (10, 9), (15, 10)])
def test_interval_ends_are_where_scipy_stops_rejecting(n: int, seed: int) -> None:
    """Just inside each end the shifted test is not rejected at 5 %, just outside it is."""
    before, after = samples(n, 8, seed)
    c = change(before, after)
    assert c.ci_low is not None and c.ci_high is not None
    gaps = sorted({a - b for a in after for b in before})
    eps = min(y - x for x, y in itertools.pairwise(gaps)) / 4

    def p(d: float) -> float:
        return float(sp.mannwhitneyu([a - d for a in after], before, alternative="two-sided").pvalue)

    assert p(c.ci_low + eps) >= 0.05 and p(c.ci_high - eps) >= 0.05
    assert p(c.ci_low - eps) < 0.05 and p(c.ci_high + eps) < 0.05


def test_significant_needs_p_below_5_percent_and_an_interval_without_zero() -> None:
    before, after = [10.0, 11.0, 12.0, 13.0, 14.0], [20.0, 21.0, 22.0, 23.0, 24.0]
    c = change(before, after)
    assert c.p_value < 0.05 and c.ci_low > 0 and c.significant and c.note is None
    same = change([10.0, 12.0, 14.0, 16.0, 18.0], [11.0, 13.0, 15.0, 17.0, 19.0])
    assert not same.significant
    assert same.ci_low < 0 < same.ci_high
    assert same.note == "no significant change"


def test_three_runs_a_side_can_never_be_significant() -> None:
    assert min_p_value(3, 3) == pytest.approx(2 / math.comb(6, 3)) == pytest.approx(0.1)
    assert min_p_value(4, 4) < 0.05
    c = change([1.0, 2.0, 3.0], [100.0, 200.0, 300.0])  # as far apart as data can be
    assert c.p_value == pytest.approx(0.1)
    assert not c.significant
    assert (c.ci_low, c.ci_high) == (None, None)
    assert c.note is not None
    assert c.note.startswith("too few runs for a significant difference at 5 %: need at least 4 per side")


def test_a_side_without_values() -> None:
    c = change([], [1.0, 2.0])
    assert (c.shift, c.p_value, c.significant) == (None, None, False)
    assert c.note == "no value on the before side"
