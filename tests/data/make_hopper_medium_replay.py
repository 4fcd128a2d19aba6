"""Writes tests/data/hopper_mjx_medium_replay_quarter.npz, the MuJoCo-physics hopper data of the
locomotion learning tests, from the `small` suite this machine generated
(`python scripts/make_datasets.py --env brax/hopper --profile small`, ~47 min on 2 cores; too long for CI).

Every 4th episode of the suite's medium-replay level (348 of 1,390 episodes, 54,162 rows; the episodes
stay whole and in order, so the level's mix of early falls and later hops is kept), in D4RL's layout
without next_observations (the loader builds them from the following row) and in float16, so the file
is 1.5 MB. The suite's metadata (reference, zero-action and random returns, physics) travels with it.

    python tests/data/make_hopper_medium_replay.py [SUITE_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np

OUT = Path(__file__).with_name("hopper_mjx_medium_replay_quarter.npz")
EVERY = 4


def main(suite_dir: Path) -> None:
    with h5py.File(suite_dir / "medium-replay.hdf5") as f:
        arrays = {key: f[key][()] for key in ("observations", "actions", "rewards", "terminals", "timeouts")}
        metadata = {key: item[()] for key, item in f["metadata"].items()}
    ends = arrays["terminals"].astype(bool) | arrays["timeouts"].astype(bool)
    episode = np.concatenate([[0], np.cumsum(ends)[:-1]])
    rows = np.flatnonzero(episode % EVERY == 0)
    kept = {k: v[rows].astype(bool if k in ("terminals", "timeouts") else np.float16) for k, v in arrays.items()}
    returns = np.bincount(episode[rows], weights=arrays["rewards"][rows])[::EVERY]
    metadata |= {"source": f"every {EVERY}th episode of {suite_dir.name}/medium-replay.hdf5",
                 "num_transitions": len(rows), "num_episodes": len(returns), "mean_episode_return": returns.mean()}  # fmt: skip
    np.savez_compressed(OUT, **kept, **{f"metadata/{k}": np.asarray(v) for k, v in metadata.items()})
    print(f"{OUT}: {len(rows)} rows, {len(returns)} episodes (mean return {returns.mean():.1f}), {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    default = Path.home() / ".cache" / "jaxrl" / "datasets" / "brax_hopper" / "small-seed0"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
