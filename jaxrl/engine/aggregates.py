"""Aggregates as the field reports them (Agarwal et al. 2021, "Deep RL at the edge of the statistical
precipice", and its `rliable` package): point estimates over runs (seeds) and tasks, with stratified
bootstrap confidence intervals, paired differences and the probability of improvement.

Scores are arrays [runs, tasks] (one task: [runs]). A stratified bootstrap resamples the runs of each
task independently, with replacement, and recomputes the aggregate; the interval is the percentile
interval of the resampled aggregates. Paired differences use that our runs are paired: the same seed
of two methods meets the same evaluation episodes (`jaxrl.engine.hooks.evaluation_keys`), so a
difference per seed removes the start-state noise both share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

REPS = 10_000  # bootstrap resamples: the percentile endpoints move by well under 1% of the spread between reruns
CONFIDENCE = 0.95


def as_matrix(scores) -> np.ndarray:
    scores = np.asarray(scores, np.float64)
    return scores[:, None] if scores.ndim == 1 else scores


def mean(scores) -> float:
    return float(np.mean(as_matrix(scores)))


def iqm(scores) -> float:
    """The interquartile mean of every run and task pooled: the mean of the middle 50% after dropping
    floor(n/4) scores at each end (scipy's `trim_mean(x, 0.25)`, which rliable uses)."""
    flat = np.sort(as_matrix(scores), axis=None)
    cut = len(flat) // 4
    return float(flat[cut : len(flat) - cut].mean())


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return self.format(1)

    def format(self, digits: int) -> str:
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def excludes(self, x: float = 0.0) -> bool:
        return not self.low <= x <= self.high


def bootstrap(scores, aggregate: Callable = mean, reps: int = REPS, confidence: float = CONFIDENCE, seed: int = 0) -> Estimate:
    """`aggregate(scores)` with its stratified bootstrap percentile interval (runs resampled per task)."""
    scores = as_matrix(scores)
    runs, tasks = scores.shape
    rng = np.random.default_rng(seed)
    index = rng.integers(0, runs, size=(reps, runs, tasks))
    resampled = np.take_along_axis(np.broadcast_to(scores, (reps, runs, tasks)), index, axis=1)
    values = resampled.mean(axis=(1, 2)) if aggregate is mean else np.array([aggregate(r) for r in resampled])
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return Estimate(aggregate(scores), float(low), float(high))


def paired_difference(a, b, reps: int = REPS, confidence: float = CONFIDENCE, seed: int = 0) -> Estimate:
    """Mean of a - b over paired runs (the same seed and evaluation episodes; [runs] or [runs, tasks]),
    with the stratified bootstrap interval of that mean."""
    a, b = as_matrix(a), as_matrix(b)
    if a.shape != b.shape:
        raise ValueError(f"paired scores must have the same shape, got {a.shape} and {b.shape}")
    return bootstrap(a - b, mean, reps, confidence, seed)


def probability_of_improvement(a, b) -> float:
    """P(a > b): over tasks, the mean of the Mann-Whitney statistic of a's runs against b's
    (P(X > Y) + P(X = Y) / 2 for X a run of a and Y a run of b, on the same task)."""
    a, b = as_matrix(a), as_matrix(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the two score sets must cover the same tasks, got {a.shape[1]} and {b.shape[1]}")
    greater = (a[:, None, :] > b[None, :, :]).mean(axis=(0, 1))
    ties = (a[:, None, :] == b[None, :, :]).mean(axis=(0, 1))
    return float(np.mean(greater + 0.5 * ties))


def verdict_from(estimate: Estimate, threshold: float = 0.0, below: bool = False) -> bool | None:
    """A claim "the quantity is above `threshold`" (`below`: under it; e.g. a - b above 0: a is better)
    from its interval: True when the interval lies on the claim's side of the threshold, False when on
    the other, None (inconclusive) when it contains it."""
    above = True if estimate.low > threshold else False if estimate.high < threshold else None
    return above if not below or above is None else not above


def all_hold(verdicts) -> bool | None:
    """A claim made of parts: True when every part holds, False when one fails, else None (inconclusive)."""
    verdicts = list(verdicts)
    return False if False in verdicts else True if all(v is True for v in verdicts) else None
