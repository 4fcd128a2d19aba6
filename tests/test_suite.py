"""Generated dataset suites: the D4RL levels, their relations, determinism and the cache."""

import json
import time

import numpy as np
import pytest

from jaxrl.data import load_dataset
from jaxrl.suite import LEVELS, generate_suite, load_level


@pytest.fixture(scope="module")
def default_suite():
    """The suite most tests train on (generated once per machine, then read from the cache)."""
    return generate_suite("gymnax/Pendulum-v1", verbose=False)


def test_levels_and_reference_returns(default_suite):
    info = json.loads((default_suite / "suite.json").read_text())
    data = {level: load_dataset(default_suite / f"{level}.hdf5") for level in LEVELS}
    assert set(p.stem for p in default_suite.glob("*.hdf5")) == set(LEVELS)
    mean_return = {level: meta["mean_episode_return"] for level, (_, meta) in data.items()}
    assert info["ref_min_score"] < info["medium_return"] < info["ref_max_score"]
    assert mean_return["random"] < mean_return["medium"] < mean_return["expert"]
    assert data["random"][0].size == data["medium"][0].size == data["expert"][0].size == 100_000
    assert data["medium-expert"][0].size == 200_000
    # medium-replay is the start of the generating agent's replay buffer (full-replay).
    assert data["medium-replay"][0].size == info["medium_steps"] < data["full-replay"][0].size
    for level, (_, meta) in data.items():
        assert meta["level"] == level and meta["ref_max_score"] == info["ref_max_score"]
    # Pendulum never terminates: every episode ends by a time limit, 200 steps long.
    medium = data["medium"][0]
    assert float(medium.terminals.sum()) == 0 and float(medium.timeouts.sum()) == 500


def test_deterministic_given_seed(tmp_path):
    first = generate_suite("gymnax/Pendulum-v1", "smoke", seed=3, root=tmp_path / "a", verbose=False)
    again = generate_suite("gymnax/Pendulum-v1", "smoke", seed=3, root=tmp_path / "b", verbose=False)
    for level in ("medium", "medium-replay"):
        a, _ = load_dataset(first / f"{level}.hdf5")
        b, _ = load_dataset(again / f"{level}.hdf5")
        np.testing.assert_array_equal(np.asarray(a.observations), np.asarray(b.observations))
        np.testing.assert_array_equal(np.asarray(a.actions), np.asarray(b.actions))


def test_second_call_uses_cache(default_suite):
    before = {p.name: p.stat().st_mtime_ns for p in default_suite.iterdir()}
    start = time.perf_counter()
    dataset, meta = load_level("gymnax/Pendulum-v1", "expert")
    assert time.perf_counter() - start < 5
    assert {p.name: p.stat().st_mtime_ns for p in default_suite.iterdir()} == before
    assert dataset.size == 100_000 and meta["level"] == "expert"


def test_unknown_suite_names():
    with pytest.raises(ValueError, match="no dataset suite is defined for 'gymnax/CartPole-v1'"):
        generate_suite("gymnax/CartPole-v1")
    with pytest.raises(ValueError, match="unknown suite profile 'default' for brax/ant; profiles: full, small, smoke"):
        generate_suite("brax/ant")
    with pytest.raises(ValueError, match="unknown suite profile 'huge'"):
        generate_suite("gymnax/Pendulum-v1", "huge")
    with pytest.raises(ValueError, match="unknown dataset level 'medium_replay'"):
        load_level("gymnax/Pendulum-v1", "medium_replay")


@pytest.mark.slow
def test_brax_suite_pipeline(tmp_path):
    """The brax path end to end at toy scale (the small and full profiles take CPU-hours / a GPU)."""
    out = generate_suite("brax/hopper", "smoke", seed=0, root=tmp_path, verbose=False)
    info = json.loads((out / "suite.json").read_text())
    medium, meta = load_dataset(out / "medium.hdf5")
    assert medium.size == 2_000 and medium.observations.shape[1] == 11 and meta["env"] == "brax/hopper"
    assert np.isfinite(info["ref_min_score"]) and np.isfinite(info["ref_max_score"])
    assert set(p.stem for p in out.glob("*.hdf5")) == set(LEVELS)
