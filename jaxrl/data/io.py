"""Reading and writing D4RL-layout datasets (HDF5 and NPZ), with validation; Minari directories are read
by `jaxrl.data.minari`.

Layout: top-level arrays observations [N, obs], actions [N, act], rewards [N], terminals [N],
timeouts [N] and optionally next_observations [N, obs]; metadata as scalar/string entries under
`metadata/`. Without next_observations, s' is the next row and rows that end at a timeout (or the
last row) are dropped, as `d4rl.qlearning_dataset` does.

Every problem raises `DatasetError` naming the file, the key and what is wrong.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from jaxrl.data.dataset import Dataset, next_actions

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals")
FLOAT_KEYS = ("observations", "actions", "rewards", "next_observations")
FLAG_KEYS = ("terminals", "timeouts")
SUFFIXES = (".hdf5", ".h5", ".npz")


class DatasetError(ValueError):
    """A dataset file is missing, unreadable or malformed."""


class DatasetWarning(UserWarning):
    """A dataset was changed on load (e.g. its actions rescaled); the message says how."""


ACTION_SLACK = 1e-4  # float noise allowed past a bound (a file that clipped in float64, then stored float32)


def _within(actions: np.ndarray, low, high) -> bool:
    slack = ACTION_SLACK * np.maximum(1.0, np.asarray(high) - np.asarray(low))
    return bool(np.all(actions >= np.asarray(low) - slack) and np.all(actions <= np.asarray(high) + slack))


def to_agent_actions(source, actions: np.ndarray, spec, metadata: dict[str, Any]) -> np.ndarray:
    """Agents act in [-1, 1] (tanh heads; `RescaleAction` maps that onto the env's bounds), so dataset
    actions must lie there too. A file written in the environment's native range (Pendulum's [-2, 2])
    is mapped affinely onto [-1, 1], with a `DatasetWarning`, and `metadata["actions_rescaled_from"]`
    records the bounds. Actions outside both ranges raise a DatasetError naming the range found.

    A native-range file whose actions all happen to lie inside [-1, 1] cannot be told apart and is
    left as it is.
    """
    if _within(actions, -1.0, 1.0):
        return actions
    found = f"[{', '.join(f'{v:.4g}' for v in actions.min(0))}] .. [{', '.join(f'{v:.4g}' for v in actions.max(0))}]"
    if spec is None:
        raise DatasetError(
            f"{source}: key 'actions' ranges over {found} (per dimension), outside the agents' [-1, 1]; pass the "
            "environment's spec (load_dataset(path, env.spec), or --env) to rescale actions stored in its native range"
        )
    low, high = spec.native_action_bounds
    native = f"[{', '.join(f'{v:g}' for v in low)}] .. [{', '.join(f'{v:g}' for v in high)}]"
    if (np.all(low == -1.0) and np.all(high == 1.0)) or not _within(actions, low, high):
        raise DatasetError(
            f"{source}: key 'actions' ranges over {found} (per dimension), outside the agents' [-1, 1] and "
            f"outside {spec.name}'s action bounds {native}"
        )
    warnings.warn(
        f"{source}: actions range over {found}, inside {spec.name}'s native bounds {native} but outside [-1, 1]: "
        "rescaled onto [-1, 1], the range the agents act in",
        DatasetWarning,
        stacklevel=3,
    )
    metadata["actions_rescaled_from"] = [low.tolist(), high.tolist()]
    scaled = 2.0 * (actions.astype(np.float64) - low) / (high - low) - 1.0
    return np.clip(scaled, -1.0, 1.0).astype(np.float32)


def _read_raw(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays, metadata = {}, {}
    if path.suffix in (".hdf5", ".h5"):
        import h5py

        try:
            with h5py.File(path, "r") as f:
                for key, item in f.items():
                    if isinstance(item, h5py.Dataset):
                        arrays[key] = item[()]
                if "metadata" in f:
                    for key, item in f["metadata"].items():
                        if isinstance(item, h5py.Dataset):
                            metadata[key] = _from_stored(item[()])
        except OSError as e:
            raise DatasetError(f"{path}: cannot be read as HDF5 ({e})") from e
    else:
        try:
            with np.load(path, allow_pickle=False) as f:
                for key in f.files:
                    if key.startswith("metadata/"):
                        metadata[key.split("/", 1)[1]] = _from_stored(f[key][()])
                    else:
                        arrays[key] = f[key]
        except (OSError, ValueError) as e:
            raise DatasetError(f"{path}: cannot be read as NPZ ({e})") from e
    return arrays, metadata


def _from_stored(value):
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        value = value.item()  # NPZ strings arrive as np.str_, which must still reach the json check
    if isinstance(value, str) and value.startswith("json:"):
        return json.loads(value[5:])
    return value


def _to_stored(value):
    if isinstance(value, (dict, list, tuple)):
        return "json:" + json.dumps(value)
    return value


def _validate(path: Path, arrays: dict[str, np.ndarray], obs_dim: int | None, action_dim: int | None, env_name: str):
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise DatasetError(f"{path}: missing required key {missing[0]!r} (found keys: {', '.join(sorted(arrays))})")
    for key in FLOAT_KEYS:
        if key in arrays and not (np.issubdtype(arrays[key].dtype, np.floating) or np.issubdtype(arrays[key].dtype, np.integer)):
            raise DatasetError(f"{path}: key {key!r} has dtype {arrays[key].dtype}, expected a numeric (float) array")
    for key in FLAG_KEYS:
        if key not in arrays:
            continue
        a = arrays[key]
        if a.dtype != bool and not (np.issubdtype(a.dtype, np.number) and np.isin(a, (0, 1)).all()):
            raise DatasetError(f"{path}: key {key!r} has dtype {a.dtype} with values other than 0/1, expected booleans")
    n = len(arrays["observations"])
    if n == 0:
        raise DatasetError(f"{path}: key 'observations' is empty")
    for key in (*FLOAT_KEYS, *FLAG_KEYS):
        if key in arrays and len(arrays[key]) != n:
            raise DatasetError(f"{path}: key {key!r} has {len(arrays[key])} rows but 'observations' has {n}")
    for key, ndim in (("observations", 2), ("actions", 2), ("next_observations", 2), ("rewards", 1)):
        if key in arrays and arrays[key].ndim != ndim:
            raise DatasetError(f"{path}: key {key!r} has shape {arrays[key].shape}, expected {ndim} dimension(s)")
    for key in FLOAT_KEYS:
        if key in arrays:
            bad = ~np.isfinite(arrays[key].reshape(n, -1)).all(axis=1)
            if bad.any():
                raise DatasetError(
                    f"{path}: key {key!r} contains non-finite values (NaN or Inf) in {int(bad.sum())} rows, "
                    f"first at row {int(np.argmax(bad))}"
                )
    widths = {"observations": obs_dim, "next_observations": obs_dim, "actions": action_dim}
    for key, expected in widths.items():
        if expected is not None and key in arrays and arrays[key].shape[1] != expected:
            raise DatasetError(
                f"{path}: key {key!r} has width {arrays[key].shape[1]} but environment {env_name} expects {expected}"
            )


def _qlearning_transitions(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Build next_observations from the following row, dropping rows whose successor is not theirs."""
    timeouts = arrays["timeouts"].astype(bool)
    keep = ~timeouts
    keep[-1] = False
    idx = np.flatnonzero(keep)
    out = {k: v[idx] for k, v in arrays.items()}
    out["next_observations"] = arrays["observations"][idx + 1]
    out["timeouts"] = np.zeros(len(idx), bool)  # episode ends at timeouts were dropped with their rows
    return out


def load_dataset(path: str | os.PathLike, spec=None) -> tuple[Dataset, dict[str, Any]]:
    """Load and validate a D4RL-layout file or a Minari dataset directory (see `jaxrl.data.minari`);
    `spec` (an `envs.EnvSpec`) checks widths against an env.

    Returns the dataset on device and the file's metadata dictionary.
    """
    path = Path(path)
    if path.is_dir():
        from jaxrl.data.minari import load_minari

        return load_minari(path, spec)
    if path.suffix not in SUFFIXES:
        raise DatasetError(
            f"{path}: unsupported file type {path.suffix!r}; expected one of {', '.join(SUFFIXES)} "
            "or a Minari dataset directory (holding data/main_data.hdf5)"
        )
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    arrays, metadata = _read_raw(path)
    if "rewards" in arrays and arrays["rewards"].ndim == 2 and arrays["rewards"].shape[1] == 1:
        arrays["rewards"] = arrays["rewards"][:, 0]
    obs_dim = spec.obs_dim if spec is not None else None
    action_dim = spec.action_dim if spec is not None else None
    _validate(path, arrays, obs_dim, action_dim, spec.name if spec is not None else "")
    arrays = {k: arrays[k] for k in (*REQUIRED_KEYS, "timeouts", "next_observations") if k in arrays}
    arrays.setdefault("timeouts", np.zeros(len(arrays["observations"]), bool))
    arrays["actions"] = to_agent_actions(path, arrays["actions"], spec, metadata)
    if "next_observations" not in arrays:
        arrays = _qlearning_transitions(arrays)
        if len(arrays["observations"]) == 0:
            raise DatasetError(f"{path}: no complete transitions (every row ends an episode at a timeout)")
    arrays["next_actions"] = next_actions(arrays)
    return Dataset.from_numpy(**arrays), metadata


def save_dataset(path: str | os.PathLike, dataset: Dataset, metadata: dict[str, Any] | None = None) -> Path:
    """Write `dataset` in D4RL layout; the file appears atomically (written aside, then renamed)."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise DatasetError(f"{path}: unsupported file type {path.suffix!r}; expected one of {', '.join(SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = dataset.to_numpy()
    metadata = {k: _to_stored(v) for k, v in (metadata or {}).items()}
    tmp = path.with_name(path.name + ".tmp" + path.suffix)
    if path.suffix == ".npz":
        np.savez_compressed(tmp, **arrays, **{f"metadata/{k}": np.asarray(v) for k, v in metadata.items()})
    else:
        import h5py

        with h5py.File(tmp, "w") as f:
            for key, value in arrays.items():
                f.create_dataset(key, data=value, compression="gzip")
            group = f.create_group("metadata")
            for key, value in metadata.items():
                group.create_dataset(key, data=value)
    os.replace(tmp, path)
    return path
