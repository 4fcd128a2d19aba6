"""D4RL dataset names: the env a file belongs to, D4RL's reference returns, and training with no --env."""

from __future__ import annotations

import numpy as np
import pytest

from envs.core import EnvSpec
from jaxrl.agents import ConfigError, make_agent
from jaxrl.config import TrainConfig
from jaxrl.data import d4rl_env, d4rl_scores
from jaxrl.train import _load_data
from tests.test_data_io import make_arrays, write_hdf5

# D4RL's d4rl/infos.py (Farama-Foundation/D4RL@89141a6): REF_MIN_SCORE / REF_MAX_SCORE of the v0 tasks,
# which v1 and v2 reuse.
D4RL_INFOS = {
    "hopper": (-20.272305, 3234.3),
    "halfcheetah": (-280.178953, 12135.0),
    "walker2d": (1.629008, 4592.3),
    "ant": (-325.6, 3879.7),
}


@pytest.mark.parametrize("task", sorted(D4RL_INFOS))
@pytest.mark.parametrize("level", ["random", "medium", "expert", "medium-replay", "medium-expert", "full-replay"])
def test_d4rl_reference_returns_by_name_and_path(task, level):
    assert d4rl_scores(f"{task}-{level}-v2") == D4RL_INFOS[task]
    assert d4rl_scores(f"/data/d4rl/{task}-{level}-v0.hdf5") == D4RL_INFOS[task]
    assert d4rl_env(f"~/{task}-{level}-v1.npz") == f"brax/{task}"


@pytest.mark.parametrize("name", ["humanoid-medium-v2", "hopper-mediocre-v2", "hopper-medium", "medium-replay.hdf5", "hopper"])
def test_unknown_names_list_the_known_ones(name):
    with pytest.raises(
        ValueError, match=rf"{name!r} is not a D4RL locomotion dataset name.*hopper, halfcheetah, walker2d, ant.*medium-replay"
    ):
        d4rl_scores(name)
    assert d4rl_env(name) is None


def test_the_env_is_inferred_from_a_d4rl_file_name(tmp_path):
    iql = make_agent("iql")
    assert TrainConfig(agent=iql, dataset=str(tmp_path / "hopper-medium-replay-v2.hdf5")).env == "brax/hopper"
    assert TrainConfig(agent=iql, dataset="walker2d-expert-v2.hdf5", env="brax/walker2d").env == "brax/walker2d"
    assert TrainConfig(agent=iql, dataset="mine.hdf5").env == "gymnax/Pendulum-v1"  # no D4RL name: the default
    assert TrainConfig(agent=iql).env == "gymnax/Pendulum-v1"  # a suite level
    with pytest.raises(ConfigError, match=r"'hopper-medium-v2.hdf5' is named as D4RL's hopper data, but env is 'brax/walker2d'"):
        TrainConfig(agent=iql, dataset="hopper-medium-v2.hdf5", env="brax/walker2d")


def test_a_d4rl_file_is_scored_with_d4rls_reference_returns(tmp_path):
    """The loaded metadata carries D4RL's references (a file's own ref scores, if it has them, win)."""
    spec = EnvSpec("brax/hopper", (11,), (3,), (-1.0,) * 3, (1.0,) * 3, 1000)
    path = write_hdf5(tmp_path / "hopper-medium-replay-v2.hdf5", make_arrays(n=20, obs_dim=11, act_dim=3))
    cfg = TrainConfig(agent=make_agent("iql"), dataset=str(path))
    dataset, metadata = _load_data(cfg, spec)
    assert dataset.size == 20 and (metadata["ref_min_score"], metadata["ref_max_score"]) == (-20.272305, 3234.3)
    own = make_arrays(n=20, obs_dim=11, act_dim=3) | {
        "metadata/ref_min_score": np.float64(1.0),
        "metadata/ref_max_score": np.float64(2.0),
    }
    (tmp_path / "own").mkdir()
    path = write_hdf5(tmp_path / "own" / "hopper-medium-v2.hdf5", own)
    _, metadata = _load_data(TrainConfig(agent=make_agent("iql"), dataset=str(path)), spec)
    assert (metadata["ref_min_score"], metadata["ref_max_score"]) == (1.0, 2.0)


@pytest.mark.slow(
    reason="trains and evaluates on MuJoCo-physics hopper (compiling its mjx evaluation, ~30 s)",
    companion="tests/test_d4rl.py::test_a_d4rl_file_is_scored_with_d4rls_reference_returns",
)
def test_a_d4rl_named_file_trains_with_no_env(tmp_path):
    """`--dataset hopper-medium-replay-v2.hdf5` alone: the run is on brax/hopper, scored with D4RL's references."""
    from jaxrl.train import train

    rng = np.random.default_rng(0)
    arrays = make_arrays(n=600, obs_dim=11, act_dim=3)
    arrays["rewards"] = rng.uniform(0, 3, 600).astype(np.float32)
    arrays["terminals"][[199, 399]] = True  # D4RL's layout: no next_observations, episodes end at terminals/timeouts
    arrays["timeouts"][-1] = True
    del arrays["next_observations"]
    path = write_hdf5(tmp_path / "hopper-medium-replay-v2.hdf5", arrays)
    cfg = TrainConfig(agent=make_agent("iql", hidden_dims=(16, 16)), dataset=str(path), seeds=1, steps=20, chunk_steps=20,
                      eval_episodes=2, run_dir=str(tmp_path / "run"), progress=False)  # fmt: skip
    assert cfg.env == "brax/hopper"
    result = train(cfg)
    row = result.final_rows[-1]
    np.testing.assert_allclose(row["normalized_score"], 100 * (row["eval_return"] + 20.272305) / (3234.3 + 20.272305), rtol=1e-5)
    assert "brax/hopper" in (tmp_path / "run" / "config.json").read_text()


# What each reference implementation feeds its critics on D4RL locomotion (../shared/reference/ALGORITHMS.md):
# standardised states (CORL's IQL, CQL, TD3+BC, AWAC, BC; RIQL), raw rewards except IQL's x 1000 / spread.
# Raw hopper states hide the fall: height and torso angle vary ~0.08 next to velocities of 1-2.
REFERENCE_INPUTS = {"iql": (True, True), "riql": (True, True), "cql": (True, False), "calql": (True, False),
                    "td3bc": (True, False), "awac": (True, False), "bc": (True, None), "sac-n": (False, False),
                    "edac": (False, False), "rebrac": (False, False)}  # fmt: skip


@pytest.mark.parametrize("algo", sorted(REFERENCE_INPUTS))
def test_offline_agents_see_the_data_as_their_references_do(algo, random_pendulum_file):
    from jaxrl.train import build

    standardised, scaled = REFERENCE_INPUTS[algo]
    built = build(TrainConfig(agent=make_agent(algo, hidden_dims=(8, 8)), dataset=str(random_pendulum_file), seeds=1,
                              steps=10, chunk_steps=10, progress=False))  # fmt: skip
    std = np.asarray(built.normalizer.std)
    assert (not np.allclose(std, 1.0)) == standardised, f"{algo}: observation std {std}"
    if scaled is not None:
        assert (float(built.normalizer.reward_scale) != 1.0) == scaled, f"{algo}: reward scale {built.normalizer.reward_scale}"
