"""Reading and writing D4RL-layout datasets (HDF5 and NPZ), with validation; Minari directories are read
by `jaxrl.data.minari`.

Layout: top-level arrays observations [N, obs], actions [N, act], rewards [N], terminals [N],
timeouts [N] and optionally next_observations [N, obs]; metadata as scalar/string entries under
`metadata/`. Without next_observations, s' is the next row and rows that end at a timeout (or the
last row) are dropped, as `d4rl.qlearning_dataset` does.

Every problem raises `DatasetError` (from `jaxrl.data.validate`) naming the file, the key and what is wrong.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from jaxrl.data.dataset import Dataset, next_actions
from jaxrl.data.minari import load_minari
from jaxrl.data.validate import DatasetError, check_finite, check_flags, check_numeric, stored_value, to_agent_actions

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals")
FLOAT_KEYS = ("observations", "actions", "rewards", "next_observations")
FLAG_KEYS = ("terminals", "timeouts")
SUFFIXES = (".hdf5", ".h5", ".npz")


def data_dir() -> Path:
    """Where generated datasets (`jaxrl.protocols.suite`) and corrupted copies (`jaxrl.protocols.corruption`) are cached."""
    return Path(os.environ.get("JAXRL_DATA_DIR", Path.home() / ".cache" / "jaxrl" / "datasets"))


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
    value = stored_value(value)
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
        if key in arrays:
            check_numeric(path, key, arrays[key])
    for key in FLAG_KEYS:
        if key in arrays:
            check_flags(path, key, arrays[key])
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
            check_finite(path, key, arrays[key])
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
    arrays = {k: arrays[k] for k in (*REQUIRED_KEYS, "timeouts", "next_observations", "paths") if k in arrays}
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
