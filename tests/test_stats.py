"""stats.py against independent computations: numpy, scipy, hand formulas, the paper's figures."""

import random
import statistics

import numpy as np
import pytest

from advisor_repro import stats

DELTAS = [0.05, -0.01, 0.09, 0.12, 0.0, 0.07, 0.03, -0.04, 0.11, 0.06, 0.02, 0.08, 0.1]


@pytest.mark.parametrize("ddof", [0, 1])
def test_mean_sd_matches_numpy(ddof):
    mean, sd = stats.mean_sd(DELTAS, ddof=ddof)
    assert mean == pytest.approx(np.mean(DELTAS), abs=1e-15)
    assert sd == pytest.approx(np.std(DELTAS, ddof=ddof), abs=1e-15)


def test_mean_sd_population_is_what_the_judge_analysis_reports():
    scores = [2, 3, 2, 1, 2, 2, 3, 2, 2, 1]
    assert stats.mean_sd(scores) == pytest.approx(
        (statistics.mean(scores), statistics.pstdev(scores))
    )


def test_mean_sd_refuses_empty_and_too_few():
    with pytest.raises(ValueError):
        stats.mean_sd([])
    with pytest.raises(ValueError):
        stats.mean_sd([1.0], ddof=1)


@pytest.mark.parametrize("n", [13, 50, 51])
def test_bootstrap_numpy_equals_the_index_matrix_idiom(n):
    """An independent computation: all indices at once, then np.percentile."""
    x = np.asarray((DELTAS * 4)[:n])
    rng = np.random.default_rng(42)
    means = x[rng.integers(0, n, size=(1000, n))].mean(axis=1)
    expected = np.percentile(means, [2.5, 97.5])
    assert stats.bootstrap_ci_numpy(list(x)) == pytest.approx(tuple(expected), abs=1e-14)


def test_bootstrap_numpy_seed_and_resamples_matter():
    base = stats.bootstrap_ci_numpy(DELTAS)
    assert stats.bootstrap_ci_numpy(DELTAS, seed=43) != base
    lo, hi = stats.bootstrap_ci_numpy(DELTAS, resamples=200)
    assert lo < np.mean(DELTAS) < hi
    assert stats.bootstrap_ci_numpy([0.25] * 7) == (0.25, 0.25)


def test_bootstrap_random_matches_a_hand_loop():
    rng = random.Random(42)
    n = len(DELTAS)
    means = []
    for _ in range(1000):
        total = 0.0
        for _ in range(n):
            total += DELTAS[rng.randrange(n)]
        means.append(total / n)
    means.sort()
    lo, hi = stats.bootstrap_ci_random(DELTAS)
    assert (lo, hi) == pytest.approx((means[25], means[975]), abs=1e-12)
    assert lo < statistics.mean(DELTAS) < hi


def test_bootstrap_random_on_integer_judge_deltas():
    deltas = [-1, 0, 0, -2, 1, 0, -1, 0, 0, -3, 0, 1, 0, -1, 0, 0, -1, 0, 0, 0]
    lo, hi = stats.bootstrap_ci_random(deltas)
    # resample means of 20 integers are multiples of 1/20
    assert round(lo * 20) == pytest.approx(lo * 20) and round(hi * 20) == pytest.approx(hi * 20)
    assert lo < statistics.mean(deltas) < hi <= 0.25


@pytest.mark.parametrize("k,n", [(11, 40), (16, 40), (0, 10), (10, 10), (23, 50)])
def test_wilson_matches_scipy(k, n):
    scipy_stats = pytest.importorskip("scipy.stats")
    ci = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert stats.wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-6)


def test_wilson_gives_the_papers_intervals():
    lo, hi = stats.wilson(11, 40)  # hard errors 27.5%: Wilson 95% CI 16-43%
    assert (round(lo * 100), round(hi * 100)) == (16, 43)
    lo, hi = stats.wilson(16, 40)  # including medium-confidence errors 40%: 26-55%
    assert (round(lo * 100), round(hi * 100)) == (26, 55)


def test_wilson_refuses_impossible_counts():
    with pytest.raises(ValueError):
        stats.wilson(5, 4)
    with pytest.raises(ValueError):
        stats.wilson(0, 0)
