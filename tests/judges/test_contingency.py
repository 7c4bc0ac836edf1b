"""contingency.py against independent computations: scipy's chi-square and binomial, numpy's
linear algebra, hand formulas, and the paper's chi2(2) = 9.3, p = 0.0095."""

import numpy as np
import pytest
from scipy import stats as sps

from advisor_repro.judges.contingency import bowker, chi2_sf, shift_zeros, sign_test, stuart_maxwell


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 6, 9])
@pytest.mark.parametrize("x", [0.05, 1.0, 3.84, 9.313, 25.0])
def test_chi2_sf_matches_scipy(x, df):
    assert chi2_sf(x, df) == pytest.approx(sps.chi2.sf(x, df), rel=1e-10)


def test_chi2_sf_edges():
    assert chi2_sf(0.0, 2) == 1.0
    with pytest.raises(ValueError):
        chi2_sf(1.0, 0)


def _bowker_by_hand(t):
    t = np.asarray(t, float)
    pairs = [(i, j) for i in range(len(t)) for j in range(i + 1, len(t)) if t[i, j] + t[j, i]]
    stat = sum((t[i, j] - t[j, i]) ** 2 / (t[i, j] + t[j, i]) for i, j in pairs)
    return stat, len(pairs)


def _stuart_maxwell_numpy(t):
    t = np.asarray(t, float)
    k = len(t)
    d = (t.sum(1) - t.sum(0))[: k - 1]
    v = -(t + t.T)
    np.fill_diagonal(v, t.sum(1) + t.sum(0) - 2 * np.diag(t))
    return float(d @ np.linalg.solve(v[: k - 1, : k - 1], d))


@pytest.mark.parametrize(
    "table",
    [[[10, 4, 3], [9, 12, 2], [6, 1, 8]], [[5, 0, 2], [3, 7, 0], [1, 4, 9]],
     [[20, 6, 1, 0], [2, 15, 4, 1], [0, 3, 11, 5], [1, 0, 2, 9]]],
)
def test_bowker_and_stuart_maxwell_match_independent_computations(table):
    stat, df = _bowker_by_hand(table)
    b = bowker(table)
    assert b["statistic"] == pytest.approx(stat) and b["df"] == df
    assert b["p"] == pytest.approx(sps.chi2.sf(stat, df))
    sm = stuart_maxwell(table)
    assert sm["statistic"] == pytest.approx(_stuart_maxwell_numpy(table), rel=1e-12)
    assert sm["df"] == len(table) - 1


def test_stuart_maxwell_for_2x2_is_mcnemar():
    # b = 9, c = 3: McNemar (no correction) = (9 - 3)^2 / 12 = 3.0
    assert stuart_maxwell([[20, 9], [3, 11]])["statistic"] == pytest.approx(3.0)


def test_singular_table_gives_none():
    assert stuart_maxwell([[5, 0, 0], [0, 3, 0], [0, 0, 4]])["statistic"] is None


def test_shift_zeros_is_statsmodels_default():
    assert shift_zeros([[1, 0], [2, 3]]) == [[1.0, 0.5], [2.0, 3.0]]
    assert shift_zeros([[1, 2], [3, 4]]) == [[1.0, 2.0], [3.0, 4.0]]


def test_the_papers_chi2_from_the_help_winner_by_preference_table():
    """Rows: which model the helpfulness scores favour (base, ft, equal); columns: the judge's
    stated preference (base, ft, tie). This is the table of the released scores (see
    tests/test_judge_stats.py); shifted as statsmodels does, Stuart-Maxwell gives 9.3 / 0.0095."""
    table = [[16, 0, 0], [0, 4, 0], [7, 5, 18]]
    sm = stuart_maxwell(shift_zeros(table))
    assert round(sm["statistic"], 1) == 9.3 and sm["df"] == 2
    assert round(sm["p"], 4) == 0.0095
    assert stuart_maxwell(table)["statistic"] == pytest.approx(12.0)
    assert bowker(shift_zeros(table))["df"] == 3  # Bowker's own df would be 3, not 2


def test_sign_test_matches_scipy_binomtest():
    for k, n in ((9, 32), (0, 5), (16, 32), (3, 20)):
        assert sign_test(k, n) == pytest.approx(sps.binomtest(k, n).pvalue)
    assert sign_test(0, 0) == 1.0
