"""Generated dataset suites: the D4RL levels, their relations, determinism and the cache."""

import json
import time

import numpy as np
import pytest

from jaxrl.data import load_dataset
from jaxrl.protocols.suite import LEVELS, SuiteProfile, generate_suite, load_level


@pytest.fixture(scope="module")
def default_suite():
    """The suite most tests train on (generated once per machine, then read from the cache)."""
    return generate_suite("gymnax/Pendulum-v1", verbose=False)


_DEFAULT = pytest.mark.slow(
    reason="reads the default Pendulum suite, which the first such test generates (~30 s of SAC on 2 cores)",
    companion="tests/test_suite.py::test_ppo_generated_suite",
)


@_DEFAULT
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


@pytest.mark.slow(
    reason="generates the SAC smoke suite twice (21 s); the PPO suite test checks determinism in the fast tier",
    companion="tests/test_suite.py::test_ppo_generated_suite",
)
def test_deterministic_given_seed(tmp_path):
    first = generate_suite("gymnax/Pendulum-v1", "smoke", seed=3, root=tmp_path / "a", verbose=False)
    assert_same_rows(first, generate_suite("gymnax/Pendulum-v1", "smoke", seed=3, root=tmp_path / "b", verbose=False))


def assert_same_rows(first, again):
    """The medium and medium-replay levels of two generated suites hold the same observations and actions."""
    for level in ("medium", "medium-replay"):
        a, _ = load_dataset(first / f"{level}.hdf5")
        b, _ = load_dataset(again / f"{level}.hdf5")
        np.testing.assert_array_equal(np.asarray(a.observations), np.asarray(b.observations))
        np.testing.assert_array_equal(np.asarray(a.actions), np.asarray(b.actions))


def _episode_lengths(data):
    ends = np.flatnonzero(np.asarray(data.terminals, bool) | np.asarray(data.timeouts, bool))
    return np.diff(np.concatenate([[-1], ends]))


def _assert_rows_chain_within_episodes(data):
    ends = np.asarray(data.terminals, bool) | np.asarray(data.timeouts, bool)
    assert ends[-1]
    chained = np.all(np.asarray(data.observations[1:]) == np.asarray(data.next_observations[:-1]), axis=1)
    assert chained[~ends[:-1]].all()


@pytest.fixture(scope="module")
def ppo_suite(tmp_path_factory):
    return generate_suite("gymnax/Pendulum-v1", "smoke-ppo", seed=0, root=tmp_path_factory.mktemp("ppo"), verbose=False)


def test_ppo_generated_suite(ppo_suite):
    """A PPO suite: the generator is recorded, and the replay levels are the recorded envs' rollouts in
    time order, one env after another, every env's last episode closed (Pendulum: 256 steps per env
    make one 200-step episode and a 56-step remainder)."""
    out = ppo_suite
    info = json.loads((out / "suite.json").read_text())
    assert info["generator"] == "ppo" and info["profile_settings"]["record_envs"] == 2 and info["machine"]
    assert len(info["snapshot_returns"]) == 4  # 4,096 env steps, a snapshot every 1,024
    full, meta = load_dataset(out / "full-replay.hdf5")
    assert meta["generator"] == "ppo" and full.size == 2 * 4_096 // 16
    assert list(_episode_lengths(full)) == [200, 56, 200, 56]
    _assert_rows_chain_within_episodes(full)
    medium_replay, _ = load_dataset(out / "medium-replay.hdf5")
    per_env = info["medium_steps"] // 16
    assert medium_replay.size == 2 * per_env
    np.testing.assert_array_equal(np.asarray(medium_replay.observations[:per_env]), np.asarray(full.observations[:per_env]))
    expert, _ = load_dataset(out / "expert.hdf5")
    assert expert.size == 2_000 and np.abs(np.asarray(expert.actions)).max() <= 1.0
    # The generator is trained by the trainer, in out/generator: its metrics and config stay, and what it
    # kept to resume from is gone.
    assert (out / "generator" / "metrics.jsonl").is_file() and (out / "generator" / "config.json").is_file()
    assert not (out / "generator" / "checkpoints").exists() and not (out / "generator" / "snapshots").exists()


def test_generator_snapshots_round_trip_through_their_files(tmp_path):
    """What a resumed generation reads back: every chunk's agent state as it was, refused when one is missing."""
    from types import SimpleNamespace

    from jaxrl.engine.hooks import AgentSnapshots, ChunkEnd

    snapshots = AgentSnapshots(tmp_path / "snapshots")
    states = [{"agent": {"w": np.full((1, 3), float(i), np.float32), "step": np.array([i])}} for i in range(3)]
    for i, state in enumerate(states[:2]):
        end = ChunkEnd(i, 100 * (i + 1), "on-policy", SimpleNamespace(**state), {}, False, False, 1.0, 100)
        snapshots.after_chunk(end)
    template = {"w": np.zeros(3, np.float32), "step": np.array(0)}
    loaded = snapshots.load(2, template)
    for i, agent in enumerate(loaded):
        np.testing.assert_array_equal(agent["w"], np.full(3, float(i), np.float32))
        assert int(agent["step"]) == i
    with pytest.raises(FileNotFoundError, match=r"no snapshot of chunk\(s\) \[2\]"):
        snapshots.load(3, template)


@pytest.mark.slow(
    reason="generates a PPO smoke suite twice more, killed and resumed (15 s)",
    companion="tests/test_suite.py::test_generator_snapshots_round_trip_through_their_files",
)
def test_killed_generation_resumes_to_the_same_suite(tmp_path, monkeypatch, ppo_suite):
    """A generation killed after its second snapshot was written, before that chunk's checkpoint, resumes
    from the first chunk's checkpoint and writes the rows of one that ran through (the same program on
    the same machine: bit for bit)."""
    import jaxrl.engine.hooks

    class Killed(Exception):
        pass

    keep = jaxrl.engine.hooks.AgentSnapshots.after_chunk

    def killed_after_the_second(self, end):
        keep(self, end)
        if end.index == 1:
            raise Killed

    monkeypatch.setattr(jaxrl.engine.hooks.AgentSnapshots, "after_chunk", killed_after_the_second)
    with pytest.raises(Killed):
        generate_suite("gymnax/Pendulum-v1", "smoke-ppo", seed=0, root=tmp_path / "killed", verbose=False)
    monkeypatch.setattr(jaxrl.engine.hooks.AgentSnapshots, "after_chunk", keep)
    generator = tmp_path / "killed" / "gymnax_Pendulum-v1" / "smoke-ppo-seed0" / "generator"
    assert sorted(p.name for p in (generator / "snapshots").iterdir()) == ["0.msgpack", "1.msgpack"]
    resumed = generate_suite("gymnax/Pendulum-v1", "smoke-ppo", seed=0, root=tmp_path / "killed", verbose=False)
    through = ppo_suite
    assert_same_rows(resumed, through)
    snapshot_returns = [json.loads((d / "suite.json").read_text())["snapshot_returns"] for d in (resumed, through)]
    assert snapshot_returns[0] == snapshot_returns[1]


@_DEFAULT
def test_sac_replay_levels_close_every_env(default_suite):
    """The SAC buffer's rows interleave its 8 envs; the replay levels put each env's steps in order."""
    info = json.loads((default_suite / "suite.json").read_text())
    medium_replay, _ = load_dataset(default_suite / "medium-replay.hdf5")
    lengths = _episode_lengths(medium_replay)
    per_env = info["medium_steps"] // 8
    assert len(lengths) == 8 * -(-per_env // 200) and lengths.max() == 200
    _assert_rows_chain_within_episodes(medium_replay)


@_DEFAULT
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
    with pytest.raises(ValueError, match="suite generator must be one of"):
        SuiteProfile(agent_steps=1, snapshot_every=1, transitions=1, generator="dqn")
    with pytest.raises(ValueError, match="a PPO suite needs record_envs in"):
        SuiteProfile(agent_steps=1, snapshot_every=1, transitions=1, generator="ppo", num_envs=4, record_envs=0)
    with pytest.raises(ValueError, match="unknown dataset level 'medium_replay'"):
        load_level("gymnax/Pendulum-v1", "medium_replay")


@pytest.mark.slow(
    reason="brax: trains hopper's generating agent and collects every level (115 s)",
    companion="tests/test_suite.py::test_ppo_generated_suite",
)
def test_brax_suite_pipeline(tmp_path):
    """The brax path end to end at toy scale (the small and full profiles take CPU-hours / a GPU)."""
    out = generate_suite("brax/hopper", "smoke", seed=0, root=tmp_path, verbose=False)
    info = json.loads((out / "suite.json").read_text())
    medium, meta = load_dataset(out / "medium.hdf5")
    assert medium.size == 2_000 and medium.observations.shape[1] == 11 and meta["env"] == "brax/hopper"
    assert np.isfinite(info["ref_min_score"]) and np.isfinite(info["ref_max_score"])
    assert set(p.stem for p in out.glob("*.hdf5")) == set(LEVELS)
