"""Reading/writing D4RL-layout datasets, validation errors, and the on-device Dataset helpers."""

from __future__ import annotations

import h5py
import jax
import numpy as np
import pytest

import envs
from jaxrl.data import Dataset, DatasetError, DatasetWarning, Normalizer, load_dataset, sample_batch, save_dataset


def make_arrays(n: int = 6, obs_dim: int = 3, act_dim: int = 1, next_obs: bool = True, seed: int = 0) -> dict:
    """A small D4RL-layout dict of arrays with distinctive, finite values."""
    rng = np.random.default_rng(seed)
    arrays = {
        "observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
        "actions": rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
        "rewards": np.arange(n, dtype=np.float32),
        "terminals": np.zeros(n, bool),
        "timeouts": np.zeros(n, bool),
    }
    if next_obs:
        arrays["next_observations"] = rng.normal(size=(n, obs_dim)).astype(np.float32)
    return arrays


def write_hdf5(path, arrays: dict):
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
    return path


@pytest.fixture(scope="module")
def pendulum_spec():
    return envs.make("gymnax/Pendulum-v1").spec


# ---------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("suffix", [".hdf5", ".h5", ".npz"])
def test_round_trip(tmp_path, suffix):
    arrays = make_arrays()
    arrays["terminals"][2] = True
    arrays["timeouts"][4] = True
    metadata = {
        "env": "gymnax/Pendulum-v1",
        "seed": 3,
        "score": 0.25,
        "config": {"lr": 3e-4, "hidden": [256, 256], "name": "sac"},
        "levels": [1, 2.5, "x"],
    }
    path = save_dataset(tmp_path / f"sub/data{suffix}", Dataset.from_numpy(**arrays), metadata)
    assert path.is_file() and not list(path.parent.glob("*.tmp*"))

    loaded, meta = load_dataset(path)
    out = loaded.to_numpy()
    assert set(out) == set(arrays) | {"next_actions"}
    for key, value in arrays.items():
        np.testing.assert_array_equal(out[key], value, err_msg=key)
    assert out["terminals"].dtype == bool and out["timeouts"].dtype == bool
    assert meta == metadata


def test_qlearning_transitions_without_next_observations(tmp_path):
    # Two episodes: rows 0-2 end at a timeout (row 2), rows 3-5 with a terminal at row 4, then row 5.
    obs = np.arange(12, dtype=np.float32).reshape(6, 2)
    arrays = {
        "observations": obs,
        "actions": np.arange(6, dtype=np.float32)[:, None] / 10,
        "rewards": np.arange(6, dtype=np.float32),
        "terminals": np.array([0, 0, 0, 0, 1, 0], bool),
        "timeouts": np.array([0, 0, 1, 0, 0, 0], bool),
    }
    loaded, _ = load_dataset(write_hdf5(tmp_path / "d.hdf5", arrays))
    out = loaded.to_numpy()
    kept = [0, 1, 3, 4]  # row 2 (timeout) and row 5 (last) have no successor of their own
    np.testing.assert_array_equal(out["observations"], obs[kept])
    np.testing.assert_array_equal(out["next_observations"], obs[[1, 2, 4, 5]])
    np.testing.assert_array_equal(out["actions"], arrays["actions"][kept])
    np.testing.assert_array_equal(out["rewards"], [0, 1, 3, 4])
    np.testing.assert_array_equal(out["terminals"], [False, False, False, True])
    np.testing.assert_array_equal(out["timeouts"], [False] * 4)


def test_qlearning_transitions_without_timeouts_key(tmp_path):
    arrays = make_arrays(n=4, next_obs=False)
    del arrays["timeouts"]
    loaded, _ = load_dataset(write_hdf5(tmp_path / "d.h5", arrays))
    assert loaded.size == 3
    np.testing.assert_array_equal(np.asarray(loaded.next_observations), arrays["observations"][1:])


# ---------------------------------------------------------------------------------------------
# Validation: every error names the file, the key and the problem


def _corrupt(arrays: dict, key: str, value) -> dict:
    return {**arrays, key: value}


BASE = make_arrays(n=5)
CASES = {
    "missing key": ({k: v for k, v in BASE.items() if k != "rewards"}, None, "rewards", "missing"),
    "length mismatch": (_corrupt(BASE, "actions", BASE["actions"][:4]), None, "actions", "4 rows"),
    "nan reward": (_corrupt(BASE, "rewards", np.array([0, 1, np.nan, 3, 4], np.float32)), None, "rewards", "non-finite"),
    "inf obs": (_corrupt(BASE, "observations", np.where(np.eye(5, 3) > 0, np.inf, 0.0)), None, "observations", "non-finite"),
    "obs width": (make_arrays(n=5, obs_dim=4), "spec", "observations", "width 4"),
    "action width": (make_arrays(n=5, act_dim=2), "spec", "actions", "width 2"),
    "string obs": (_corrupt(BASE, "observations", np.full((5, 3), b"abc")), None, "observations", "dtype"),
    "terminal value 2": (_corrupt(BASE, "terminals", np.array([0, 1, 2, 0, 0])), None, "terminals", "0/1"),
}


@pytest.mark.parametrize("suffix", [".hdf5", ".npz"])
@pytest.mark.parametrize("case", list(CASES))
def test_validation_errors(tmp_path, pendulum_spec, case, suffix):
    arrays, spec, key, problem = CASES[case]
    path = tmp_path / f"bad{suffix}"
    if suffix == ".npz":
        np.savez(path, **arrays)
    else:
        write_hdf5(path, arrays)
    with pytest.raises(DatasetError) as err:
        load_dataset(path, spec=pendulum_spec if spec else None)
    message = str(err.value)
    assert str(path) in message
    assert repr(key) in message
    assert problem in message
    if spec:
        assert "gymnax/Pendulum-v1" in message


def test_actions_in_the_envs_native_range_are_rescaled(tmp_path, pendulum_spec):
    """A file written in Pendulum's native torque range [-2, 2] is mapped onto the agents' [-1, 1]."""
    arrays = make_arrays(n=5)
    arrays["actions"] = np.array([[-2.0], [-1.5], [0.0], [1.0], [2.0]], np.float32)
    arrays["next_observations"][:-1] = arrays["observations"][1:]  # one episode, so next_actions are the next row's
    path = write_hdf5(tmp_path / "native.hdf5", arrays)
    with pytest.warns(DatasetWarning, match=r"native.hdf5.*\[-2\] \.\. \[2\].*rescaled onto \[-1, 1\]"):
        loaded, meta = load_dataset(path, pendulum_spec)
    np.testing.assert_allclose(np.asarray(loaded.actions)[:, 0], [-1.0, -0.75, 0.0, 0.5, 1.0])
    assert meta["actions_rescaled_from"] == [[-2.0], [2.0]]
    # next_actions (ReBRAC) follow the rescaled actions
    np.testing.assert_allclose(np.asarray(loaded.next_actions)[:, 0], [-0.75, 0.0, 0.5, 1.0, 1.0])
    # without an env the native range is unknown: a clear error, not a silent load
    with pytest.raises(DatasetError, match=r"native.hdf5: key 'actions' ranges over \[-2\] \.\. \[2\].*pass the environment"):
        load_dataset(path)


def test_actions_outside_every_range_are_rejected(tmp_path, pendulum_spec):
    arrays = make_arrays(n=5)
    arrays["actions"][3] = 2.5
    path = write_hdf5(tmp_path / "wide.hdf5", arrays)
    with pytest.raises(
        DatasetError,
        match=r"wide.hdf5: key 'actions' ranges over .*2\.5\].*outside gymnax/Pendulum-v1's action bounds \[-2\] \.\. \[2\]",
    ):
        load_dataset(path, pendulum_spec)
    # an env whose native range is [-1, 1] has nothing to rescale from
    arrays["actions"][3] = 1.5
    car = envs.make("gymnax/MountainCarContinuous-v0").spec
    with pytest.raises(DatasetError, match=r"outside the agents' \[-1, 1\] and outside gymnax/MountainCarContinuous-v0's"):
        load_dataset(write_hdf5(tmp_path / "car.hdf5", arrays | {"observations": arrays["observations"][:, :2],
                                                                 "next_observations": arrays["next_observations"][:, :2]}), car)  # fmt: skip


def test_matching_spec_is_accepted(tmp_path, pendulum_spec):
    loaded, _ = load_dataset(write_hdf5(tmp_path / "ok.hdf5", make_arrays()), spec=pendulum_spec)
    assert loaded.observations.shape == (6, 3) and loaded.actions.shape == (6, 1)


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("1,2,3")
    with pytest.raises(DatasetError, match=r"unsupported file type '\.csv'") as err:
        load_dataset(path)
    assert str(path) in str(err.value)
    with pytest.raises(DatasetError, match="unsupported"):
        save_dataset(path, Dataset.from_numpy(**make_arrays()))


def test_file_not_found(tmp_path):
    path = tmp_path / "missing.hdf5"
    with pytest.raises(DatasetError, match="file not found") as err:
        load_dataset(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("suffix, fmt", [(".hdf5", "HDF5"), (".npz", "NPZ")])
def test_corrupt_file(tmp_path, suffix, fmt):
    path = tmp_path / f"corrupt{suffix}"
    path.write_bytes(b"this is not a dataset file\n" * 10)
    with pytest.raises(DatasetError, match=f"cannot be read as {fmt}") as err:
        load_dataset(path)
    assert str(path) in str(err.value)


# ---------------------------------------------------------------------------------------------
# Dataset helpers


def test_episode_returns():
    arrays = make_arrays(n=7)
    arrays["rewards"] = np.array([1, 2, 3, 4, 5, 6, 7], np.float32)
    arrays["terminals"][1] = True  # episode [1, 2]
    arrays["timeouts"][4] = True  # episode [3, 4, 5]; the rest [6, 7] is a partial episode
    returns = Dataset.from_numpy(**arrays).episode_returns()
    np.testing.assert_allclose(returns, [3.0, 12.0, 13.0])


def test_sample_batch_under_jit():
    arrays = make_arrays(n=8)
    dataset = Dataset.from_numpy(**arrays)
    batch = jax.jit(sample_batch, static_argnums=2)(dataset, jax.random.key(0), 64)
    assert batch.observations.shape == (64, 3) and batch.rewards.shape == (64,)
    rows = np.asarray(batch.rewards).astype(int)  # rewards are the row indices
    assert len(set(rows)) > 1
    for name in ("observations", "actions", "next_observations"):
        np.testing.assert_array_equal(np.asarray(getattr(batch, name)), arrays[name][rows])


def test_obs_normalizer_from_dataset():
    arrays = make_arrays(n=10)
    arrays["observations"] = arrays["observations"] * [1.0, 5.0, 0.1] + [0.0, 3.0, -2.0]
    dataset = Dataset.from_numpy(**arrays)
    norm = Normalizer.from_dataset(dataset)
    both = np.concatenate([arrays["observations"], arrays["next_observations"]]).astype(np.float64)
    np.testing.assert_allclose(norm.mean, both.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norm.std, both.std(0) + 1e-3, rtol=1e-5)
    normalized = norm.apply(dataset)
    np.testing.assert_allclose(normalized.observations, (arrays["observations"] - norm.mean) / norm.std, rtol=1e-5)


def test_next_actions_follow_the_episode():
    # rows 0-1-2 are one episode (ends in a timeout at 2), row 3 starts another and terminates.
    obs = np.array([[0.0], [1.0], [2.0], [10.0]])
    arrays = {
        "observations": obs,
        "next_observations": np.array([[1.0], [2.0], [3.0], [11.0]]),
        "actions": np.array([[0.1], [0.2], [0.3], [0.4]]),
        "terminals": np.array([False, False, False, True]),
        "timeouts": np.array([False, False, True, False]),
    }
    from jaxrl.data.dataset import next_actions

    np.testing.assert_array_equal(next_actions(arrays)[:, 0], [0.2, 0.3, 0.3, 0.4])
    arrays["observations"] = np.array([[0.0], [1.0], [5.0], [10.0]])  # row 2 does not continue row 1
    np.testing.assert_array_equal(next_actions(arrays)[:, 0], [0.2, 0.2, 0.3, 0.4])
