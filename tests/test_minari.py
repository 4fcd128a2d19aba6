"""Reading Minari dataset directories (without the `minari` package): transitions, flags, metadata, errors."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

import envs
from jaxrl.data import DatasetError, load_dataset

OBS, ACT = 3, 1  # gymnax/Pendulum-v1


def make_episode(ep_id: int, steps: int, end: str | None, obs_dim: int = OBS, act_dim: int = ACT) -> dict:
    """One episode in Minari's layout with values that identify it: observations [steps+1, obs], ..."""
    obs = 100.0 * ep_id + np.arange((steps + 1) * obs_dim, dtype=np.float32).reshape(steps + 1, obs_dim)
    return {
        "observations": obs,
        "actions": (ep_id + np.arange(steps * act_dim, dtype=np.float32).reshape(steps, act_dim) / 10) / 20,  # in [-1, 1]
        "rewards": 10.0 * ep_id + np.arange(steps, dtype=np.float32),
        "terminations": np.arange(steps) == steps - 1 if end == "terminated" else np.zeros(steps, bool),
        "truncations": np.arange(steps) == steps - 1 if end == "truncated" else np.zeros(steps, bool),
    }


# Ids 0, 2, 10: numeric order differs from the names' string order (episode_10 < episode_2).
EPISODES = {0: make_episode(0, 3, "terminated"), 2: make_episode(2, 2, "truncated"), 10: make_episode(10, 3, None)}
METADATA = {
    "dataset_id": "test/pendulum/synthetic-v0",
    "env_spec": json.dumps({"id": "Pendulum-v1", "max_episode_steps": 200}),
    "total_episodes": 3,
    "total_steps": 8,
    "data_format": "hdf5",
    "ref_min_score": -1200,
    "ref_max_score": -150.5,
}


def write_minari(root, episodes: dict = EPISODES, metadata: dict | str | None = METADATA, data_format: bool = True):
    """A Minari dataset directory: root/data/main_data.hdf5 (+ root/data/metadata.json unless metadata is None)."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    with h5py.File(data / "main_data.hdf5", "w") as f:
        for ep_id, arrays in episodes.items():
            group = f.create_group(f"episode_{ep_id}")
            group.attrs["id"] = ep_id
            group.attrs["total_steps"] = len(arrays["actions"]) if "actions" in arrays else 0
            for key, value in arrays.items():
                if isinstance(value, dict):
                    sub = group.create_group(key)
                    for k, v in value.items():
                        sub.create_dataset(k, data=v)
                else:
                    group.create_dataset(key, data=value)
            infos = group.create_group("infos")  # Minari's per-step infos are ignored
            infos.create_dataset("success", data=np.zeros(len(arrays.get("rewards", [])), bool))
    if metadata is not None:
        text = metadata if isinstance(metadata, str) else json.dumps(metadata)
        (data / "metadata.json").write_text(text)
    return root


@pytest.fixture(scope="module")
def pendulum_spec():
    return envs.make("gymnax/Pendulum-v1").spec


@pytest.fixture(scope="module")
def minari_dir(tmp_path_factory):
    return write_minari(tmp_path_factory.mktemp("minari") / "synthetic-v0")


# ---------------------------------------------------------------------------------------------
# Reading


def test_transitions_flags_and_order(minari_dir, pendulum_spec):
    dataset, _ = load_dataset(minari_dir, pendulum_spec)
    out = dataset.to_numpy()
    order = [0, 2, 10]
    np.testing.assert_array_equal(out["observations"], np.concatenate([EPISODES[i]["observations"][:-1] for i in order]))
    np.testing.assert_array_equal(out["next_observations"], np.concatenate([EPISODES[i]["observations"][1:] for i in order]))
    np.testing.assert_array_equal(out["actions"], np.concatenate([EPISODES[i]["actions"] for i in order]))
    np.testing.assert_array_equal(out["rewards"], [0, 1, 2, 20, 21, 100, 101, 102])
    # episode 0 terminated, episode 2 truncated, episode 10 cut by the collection (marked as a timeout)
    np.testing.assert_array_equal(out["terminals"], [0, 0, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(out["timeouts"], [0, 0, 0, 0, 1, 0, 0, 1])
    assert dataset.size == 8
    np.testing.assert_allclose(dataset.episode_returns(), [3, 41, 303])


def test_next_observations_and_actions_never_cross_episodes(minari_dir):
    out = load_dataset(minari_dir)[0].to_numpy()
    ends = out["terminals"] | out["timeouts"]
    # within an episode s' is the next row's s; at an end it is the episode's own final observation
    np.testing.assert_array_equal(out["next_observations"][:-1][~ends[:-1]], out["observations"][1:][~ends[:-1]])
    np.testing.assert_array_equal(out["next_observations"][ends], [EPISODES[i]["observations"][-1] for i in (0, 2, 10)])
    assert not np.isclose(out["next_observations"][:-1][ends[:-1]], out["observations"][1:][ends[:-1]]).all(axis=1).any()
    # a' is the next row's action inside an episode and the row's own at every episode end
    np.testing.assert_array_equal(out["next_actions"][:-1][~ends[:-1]], out["actions"][1:][~ends[:-1]])
    np.testing.assert_array_equal(out["next_actions"][ends], out["actions"][ends])


def test_metadata(minari_dir):
    _, meta = load_dataset(minari_dir)
    assert meta == {**METADATA, "format": "minari", "ref_min_score": -1200.0, "ref_max_score": -150.5}
    assert isinstance(meta["ref_min_score"], float)


def test_data_folder_and_metadata_from_hdf5_attributes(tmp_path):
    # Minari < 0.5: no metadata.json, metadata as attributes of main_data.hdf5; the data/ folder itself is accepted.
    root = write_minari(tmp_path / "old", metadata=None)
    with h5py.File(root / "data" / "main_data.hdf5", "a") as f:
        f.attrs["dataset_id"] = "old-v0"
        f.attrs["total_episodes"] = np.int64(3)
        f.attrs["ref_max_score"] = np.float32(5.0)
    dataset, meta = load_dataset(root / "data")
    assert dataset.size == 8
    assert meta == {"dataset_id": "old-v0", "total_episodes": 3, "ref_max_score": 5.0, "format": "minari"}


def test_null_reference_scores_are_dropped(tmp_path):
    _, meta = load_dataset(write_minari(tmp_path / "d", metadata={"ref_min_score": None, "ref_max_score": None}))
    assert meta == {"format": "minari"}


def test_unsupported_path_mentions_minari(tmp_path):
    with pytest.raises(DatasetError, match="Minari dataset directory"):
        load_dataset(tmp_path / "data.csv")


# ---------------------------------------------------------------------------------------------
# Validation: every error names the file, the key and the problem


def _with(ep_id: int, **changes) -> dict:
    episode = {k: v for k, v in {**EPISODES[ep_id], **changes}.items() if v is not None}
    return {**EPISODES, ep_id: episode}


NAN_REWARDS = np.array([0, np.nan], np.float32)
INF_OBS = np.where(np.eye(3, OBS) > 0, np.inf, 0).astype(np.float32)
# name: (episodes, metadata, use spec, file, key, problem)
CASES = {
    "missing key": (_with(2, rewards=None), METADATA, False, "main_data.hdf5", "episode_2/rewards", "missing"),
    "obs not one longer": (
        _with(0, observations=EPISODES[0]["observations"][:3]),
        METADATA,
        False,
        "main_data.hdf5",
        "episode_0/observations",
        "one longer",
    ),
    "rewards length": (
        _with(0, rewards=np.zeros(2, np.float32)),
        METADATA,
        False,
        "main_data.hdf5",
        "episode_0/rewards",
        "2 rows",
    ),
    "terminations length": (
        _with(10, terminations=np.zeros(4, bool)),
        METADATA,
        False,
        "main_data.hdf5",
        "episode_10/terminations",
        "4 rows",
    ),
    "truncation value 2": (
        _with(2, truncations=np.array([0, 2])),
        METADATA,
        False,
        "main_data.hdf5",
        "episode_2/truncations",
        "0/1",
    ),
    "nan reward": (_with(2, rewards=NAN_REWARDS), METADATA, False, "main_data.hdf5", "episode_2/rewards", "non-finite"),
    "inf obs": (_with(2, observations=INF_OBS), METADATA, False, "main_data.hdf5", "episode_2/observations", "non-finite"),
    "dict obs": (
        _with(2, observations={"a": np.zeros((3, 2)), "b": np.zeros((3, 1))}),
        METADATA,
        False,
        "main_data.hdf5",
        "episode_2/observations",
        "dict observations are not supported",
    ),
    "obs width vs episodes": (
        _with(2, observations=np.zeros((3, 4), np.float32)),
        METADATA,
        False,
        "main_data.hdf5",
        "episode_2/observations",
        "width 4 but earlier episodes have width 3",
    ),
    "obs width vs env": (
        {i: make_episode(i, 2, "truncated", obs_dim=4) for i in (0, 1)},
        {},
        True,
        "main_data.hdf5",
        "episode_0/observations",
        "width 4",
    ),
    "action width vs env": (
        {i: make_episode(i, 2, "truncated", act_dim=2) for i in (0, 1)},
        {},
        True,
        "main_data.hdf5",
        "episode_0/actions",
        "width 2",
    ),
    "no episodes": ({}, {}, False, "main_data.hdf5", None, "no episodes"),
    "malformed json": (EPISODES, '{"dataset_id": "x",', False, "metadata.json", None, "malformed JSON"),
    "json not an object": (EPISODES, "[1, 2]", False, "metadata.json", None, "expected a JSON object"),
    "ref score not a number": (
        EPISODES,
        {**METADATA, "ref_max_score": "high"},
        False,
        "metadata.json",
        "ref_max_score",
        "finite number",
    ),
    "total_episodes mismatch": (
        EPISODES,
        {**METADATA, "total_episodes": 4},
        False,
        "metadata.json",
        "total_episodes",
        "holds 3",
    ),
    "total_steps not an int": (
        EPISODES,
        {**METADATA, "total_steps": "8"},
        False,
        "metadata.json",
        "total_steps",
        "non-negative integer",
    ),
    "arrow format": (EPISODES, {**METADATA, "data_format": "arrow"}, False, "metadata.json", "data_format", "hdf5"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_validation_errors(tmp_path, pendulum_spec, case):
    episodes, metadata, use_spec, file, key, problem = CASES[case]
    root = write_minari(tmp_path / "bad-v0", episodes, metadata)
    with pytest.raises(DatasetError) as err:
        load_dataset(root, spec=pendulum_spec if use_spec else None)
    message = str(err.value)
    assert str(root / "data" / file) in message
    if key is not None:
        assert repr(key) in message
    assert problem in message
    if use_spec:
        assert "gymnax/Pendulum-v1" in message


def test_missing_main_data(tmp_path):
    root = tmp_path / "empty-v0"
    (root / "data").mkdir(parents=True)
    (root / "data" / "metadata.json").write_text(json.dumps(METADATA))
    with pytest.raises(DatasetError) as err:
        load_dataset(root)
    assert str(root / "data" / "main_data.hdf5") in str(err.value) and "not found" in str(err.value)


def test_episode_without_transitions_only(tmp_path):
    episodes = {0: make_episode(0, 0, None), 1: make_episode(1, 0, None)}
    with pytest.raises(DatasetError, match="no transitions"):
        load_dataset(write_minari(tmp_path / "d", episodes, {}))
    # an empty episode among others is skipped
    episodes = {**EPISODES, 5: make_episode(5, 0, None)}
    dataset, _ = load_dataset(write_minari(tmp_path / "e", episodes, {}))
    assert dataset.size == 8


# ---------------------------------------------------------------------------------------------
# Training from a Minari directory


def test_minari_directory_trains(tmp_path, minari_dir):
    from jaxrl.agents import BC
    from jaxrl.train import TrainConfig, train

    cfg = TrainConfig(
        agent=BC(hidden_dims=(8, 8)),
        env="gymnax/Pendulum-v1",
        dataset=str(minari_dir),
        seeds=1,
        steps=100,
        chunk_steps=100,
        batch_size=16,
        eval_episodes=1,
        run_dir=str(tmp_path / "run"),
        progress=False,
    )
    result = train(cfg)
    assert len(result.final_rows) == 1
    assert np.isfinite(result.final_rows[0]["normalized_score"])  # from metadata.json's reference scores
