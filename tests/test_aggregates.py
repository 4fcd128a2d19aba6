"""The aggregates every table reports (`jaxrl.engine.aggregates`), against hand-computed values.
(rliable 1.2.0, the reference implementation, installs here but does not import: its `arch` dependency
fails against the current pandas; these are its definitions.)"""

from __future__ import annotations

import numpy as np
import pytest

from jaxrl.engine import aggregates as agg


def test_iqm_drops_a_quarter_at_each_end_of_every_score_pooled():
    assert agg.iqm(np.arange(1, 9)) == 4.5  # 3, 4, 5, 6
    assert agg.iqm([[8, 1], [2, 7], [3, 6], [4, 5]]) == 4.5  # runs x tasks, pooled
    assert agg.iqm([1, 2, 3, 1000]) == 2.5  # an outlier run does not move it
    assert agg.iqm([1, 2, 3, 4, 5]) == 3.0  # floor(5 / 4) = 1 dropped at each end


def test_bootstrap_interval_of_two_runs_is_their_range():
    # resampled means of [0, 10] are 0, 5 or 10 with probabilities 1/4, 1/2, 1/4
    estimate = agg.bootstrap([0.0, 10.0])
    assert (estimate.value, estimate.low, estimate.high) == (5.0, 0.0, 10.0)
    assert str(estimate) == "5.0 [0.0, 10.0]"


def test_bootstrap_resamples_runs_within_each_task():
    # task 2 is the same in every run, so only task 1's runs move the mean: (U + 100) / 2, U in {0, 5, 10}
    estimate = agg.bootstrap([[0.0, 100.0], [10.0, 100.0]])
    assert (estimate.value, estimate.low, estimate.high) == (52.5, 50.0, 55.0)
    # a wider spread gives a wider interval; the interval holds the point estimate
    rng = np.random.default_rng(0)
    narrow, wide = agg.bootstrap(rng.normal(0, 1, 20)), agg.bootstrap(rng.normal(0, 5, 20))
    assert narrow.low <= narrow.value <= narrow.high and wide.high - wide.low > 3 * (narrow.high - narrow.low)
    iqm = agg.bootstrap([1.0, 2.0, 3.0, 4.0, 100.0], agg.iqm)
    assert iqm.value == 3.0 and iqm.high < 100


def test_paired_difference_removes_what_the_pairs_share():
    shared = np.array([10.0, 50.0, 90.0])  # e.g. each seed's start states
    a, b = shared + 2.0, shared + 1.0
    difference = agg.paired_difference(a, b)
    assert (difference.value, difference.low, difference.high) == (1.0, 1.0, 1.0)
    assert agg.verdict_from(difference) is True and agg.verdict_from(agg.paired_difference(b, a)) is False
    assert agg.bootstrap(a).high - agg.bootstrap(a).low > 50  # unpaired, the shared spread swamps the difference
    assert agg.verdict_from(agg.paired_difference([1.0, -1.0], [0.0, 0.0])) is None  # 0 inside: inconclusive
    with pytest.raises(ValueError, match="same shape"):
        agg.paired_difference([1.0, 2.0], [1.0])


def test_probability_of_improvement_counts_pairs_and_half_the_ties():
    assert agg.probability_of_improvement([1.0, 3.0], [2.0, 2.0]) == 0.5
    assert agg.probability_of_improvement([3.0, 4.0], [1.0, 2.0]) == 1.0
    assert agg.probability_of_improvement([2.0], [2.0]) == 0.5
    # per task, then averaged over tasks: task 1 always better, task 2 never
    assert agg.probability_of_improvement([[5.0, 0.0], [6.0, 1.0]], [[1.0, 5.0], [2.0, 6.0]]) == 0.5
    with pytest.raises(ValueError, match="same tasks"):
        agg.probability_of_improvement([[1.0, 2.0]], [[1.0]])
