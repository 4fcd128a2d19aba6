"""D4RL's MuJoCo locomotion dataset names: the env a file belongs to, and D4RL's reference returns.

A file named as D4RL names its datasets (`hopper-medium-replay-v2.hdf5`) says which task it was
recorded on, so it trains with no `--env`, and its scores are normalised as every paper's tables are:
100 * (R - ref_min) / (ref_max - ref_min) with D4RL's constants (d4rl/infos.py at Farama-Foundation/D4RL
@89141a6, lines 129-148, 219-238, 301-302: the v0 constants, which v1 and v2 reuse).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# D4RL's REF_MIN_SCORE / REF_MAX_SCORE (the random and the expert policy's mean returns) per task.
D4RL_REFERENCE_RETURNS = {
    "hopper": (-20.272305, 3234.3),
    "halfcheetah": (-280.178953, 12135.0),
    "walker2d": (1.629008, 4592.3),
    "ant": (-325.6, 3879.7),
}
D4RL_LEVELS = ("random", "medium", "expert", "medium-replay", "medium-expert", "full-replay")
# The registered env each task's datasets are evaluated in (MuJoCo physics: see envs/brax_env.py).
D4RL_ENVS = {task: f"brax/{task}" for task in D4RL_REFERENCE_RETURNS}

_NAME = re.compile(rf"^({'|'.join(D4RL_REFERENCE_RETURNS)})-({'|'.join(D4RL_LEVELS)})-v([0-9]+)$")


def d4rl_task(name: str | os.PathLike) -> tuple[str, str, int] | None:
    """(task, level, version) of a D4RL dataset name or file path ("hopper-medium-replay-v2[.hdf5]"), else None."""
    stem = Path(name).name
    for suffix in (".hdf5", ".h5", ".npz"):
        stem = stem.removesuffix(suffix)
    match = _NAME.match(stem)
    return (match[1], match[2], int(match[3])) if match else None


def known_names() -> list[str]:
    return [f"{task}-{level}-v2" for task in D4RL_REFERENCE_RETURNS for level in D4RL_LEVELS]


def d4rl_scores(name: str | os.PathLike) -> tuple[float, float]:
    """D4RL's (ref_min, ref_max) returns for a dataset name or path, e.g. "hopper-medium-replay-v2"."""
    task = d4rl_task(name)
    if task is None:
        raise ValueError(
            f"{str(name)!r} is not a D4RL locomotion dataset name (TASK-LEVEL-vN); tasks: "
            f"{', '.join(D4RL_REFERENCE_RETURNS)}; levels: {', '.join(D4RL_LEVELS)}; e.g. {', '.join(known_names()[:6])}"
        )
    return D4RL_REFERENCE_RETURNS[task[0]]


def d4rl_env(name: str | os.PathLike) -> str | None:
    """The registered env a D4RL-named dataset belongs to ("brax/hopper"), or None for any other name."""
    task = d4rl_task(name)
    return D4RL_ENVS[task[0]] if task else None
