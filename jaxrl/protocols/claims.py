"""A paper's claim checked against our numbers, and how every report states it and aggregates seeds.

Every protocol's report (the offline/offline-to-online tables, L2M, HAMSTER) returns `Verdict`s and
writes them with `markdown`, so a reader sees one wording: the claim, **holds** / **fails** /
**inconclusive** (the interval contains no decision, or something it needs was not run or diverged),
and the numbers it was decided on. The tables decide from intervals (`jaxrl.engine.aggregates`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WORDS = {True: "holds", False: "fails", None: "inconclusive"}


@dataclass(frozen=True)
class Verdict:
    claim: str
    holds: bool | None  # None: inconclusive
    evidence: str  # the numbers the verdict rests on (or why it is undecided)

    def markdown(self) -> str:
        return f"- {self.claim}: **{WORDS[self.holds]}** ({self.evidence})"


def markdown(verdicts: list[Verdict], title: str = "Paper claims on this run:") -> str:
    """The verdicts as a markdown list, under `title` if one is given ("" when there are none)."""
    return "\n".join([title] * bool(title) + [v.markdown() for v in verdicts]) if verdicts else ""


def undecided(claim: str, missing: list[str]) -> Verdict:
    return Verdict(claim, None, "cells missing or diverged: " + ", ".join(missing))


def mean_std(values, digits: int = 2) -> str:
    """ "mean ± std" over seeds (the population std, as the papers' tables report it)."""
    values = np.asarray(values, np.float64)
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"
