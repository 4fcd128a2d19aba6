"""Reading Minari datasets from a local directory, without the `minari` package.

Layout (Minari's HDF5 data format): a dataset directory such as
`~/.minari/datasets/mujoco/hopper/medium-v0/` holding `data/main_data.hdf5` and `data/metadata.json`.
The HDF5 file has one group per episode, `episode_{id}`, with `observations` [T+1, obs] (the final
observation included), `actions` [T, act], `rewards` [T], `terminations` [T] and `truncations` [T]
(plus `infos/`, ignored). Episodes become transitions in numeric id order: s = observations[:-1],
s' = observations[1:], terminals = terminations, timeouts = truncations; an episode whose last step has
neither flag was cut by the collection and its last transition is marked as a timeout, so no
transition or next action ever crosses into the following episode.

Older Minari versions have no `metadata.json`; their metadata is read from the HDF5 file's attributes.
Every problem raises `DatasetError` naming the file, the key and what is wrong.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from jaxrl.data.dataset import Dataset, next_actions
from jaxrl.data.validate import DatasetError, check_finite, check_flags, check_numeric, stored_value, to_agent_actions

EPISODE_KEYS = ("observations", "actions", "rewards", "terminations", "truncations")
_EPISODE = re.compile(r"episode_(\d+)")


def _data_dir(path: Path) -> Path:
    return path if (path / "main_data.hdf5").is_file() and not (path / "data").is_dir() else path / "data"


def _read_metadata(file: Path) -> dict[str, Any] | None:
    if not file.is_file():
        return None
    try:
        metadata = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{file}: cannot be read ({e})") from e
    except json.JSONDecodeError as e:
        raise DatasetError(f"{file}: malformed JSON at line {e.lineno} column {e.colno} ({e.msg})") from e
    if not isinstance(metadata, dict):
        raise DatasetError(f"{file}: expected a JSON object of metadata keys, got {type(metadata).__name__}")
    return metadata


def _check_metadata(file: Path, metadata: dict[str, Any]) -> dict[str, Any]:
    """Coerce the reference scores to floats (nulls dropped) so normalised scores work; reject junk."""
    out = dict(metadata)
    for key in ("ref_min_score", "ref_max_score"):
        if key not in out:
            continue
        value = out[key]
        if value is None:
            del out[key]
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(value, bool) or not math.isfinite(number):
            raise DatasetError(f"{file}: key {key!r} is {value!r}, expected a finite number")
        out[key] = number
    for key in ("total_episodes", "total_steps"):
        value = out.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise DatasetError(f"{file}: key {key!r} is {value!r}, expected a non-negative integer")
    fmt = out.get("data_format")
    if fmt is not None and fmt != "hdf5":
        raise DatasetError(f"{file}: key 'data_format' is {fmt!r}; only Minari's 'hdf5' data format is supported")
    out["format"] = "minari"
    return out


def _read_episode(file: Path, group, widths: dict[str, int]) -> dict[str, np.ndarray]:
    import h5py

    name = group.name.lstrip("/")
    arrays = {}
    for key in EPISODE_KEYS:
        where = f"{name}/{key}"
        if key not in group:
            raise DatasetError(f"{file}: missing required key {where!r} (found keys: {', '.join(sorted(group))})")
        item = group[key]
        if isinstance(item, h5py.Group):
            kind = "observation" if key == "observations" else "action" if key == "actions" else "value"
            raise DatasetError(
                f"{file}: key {where!r} is a group (a dict/tuple {kind} space); dict {kind}s are not supported, "
                "only flat Box spaces"
            )
        arrays[key] = item[()]

    for key in ("observations", "actions", "rewards"):
        check_numeric(file, f"{name}/{key}", arrays[key])
    for key in ("terminations", "truncations"):
        check_flags(file, f"{name}/{key}", arrays[key])
    if arrays["rewards"].ndim == 2 and arrays["rewards"].shape[1] == 1:
        arrays["rewards"] = arrays["rewards"][:, 0]
    for key, ndim, shape in (
        ("observations", 2, "[T+1, obs]"),
        ("actions", 2, "[T, act]"),
        ("rewards", 1, "[T]"),
        ("terminations", 1, "[T]"),
        ("truncations", 1, "[T]"),
    ):
        if arrays[key].ndim != ndim:
            raise DatasetError(f"{file}: key {f'{name}/{key}'!r} has shape {arrays[key].shape}, expected {shape}")

    steps = len(arrays["actions"])
    if len(arrays["observations"]) != steps + 1:
        raise DatasetError(
            f"{file}: key {f'{name}/observations'!r} has {len(arrays['observations'])} rows but {f'{name}/actions'!r} "
            f"has {steps}; expected observations to be one longer (the final observation included)"
        )
    for key in ("rewards", "terminations", "truncations"):
        if len(arrays[key]) != steps:
            raise DatasetError(
                f"{file}: key {f'{name}/{key}'!r} has {len(arrays[key])} rows but {f'{name}/actions'!r} has {steps}"
            )
    for key in ("observations", "actions", "rewards"):
        check_finite(file, f"{name}/{key}", arrays[key])
    for key in ("observations", "actions"):
        width = arrays[key].shape[1]
        first = widths.setdefault(key, width)
        if width != first:
            raise DatasetError(f"{file}: key {f'{name}/{key}'!r} has width {width} but earlier episodes have width {first}")
    return arrays


def load_minari(path, spec=None) -> tuple[Dataset, dict[str, Any]]:
    """Load and validate a Minari dataset directory; `spec` (an `envs.EnvSpec`) checks widths against an env.

    Returns the transitions on device and the dataset's metadata (`metadata.json`, plus "format": "minari").
    """
    import h5py

    path = Path(path)
    data = _data_dir(path)
    file = data / "main_data.hdf5"
    meta_file = data / "metadata.json"
    metadata = _read_metadata(meta_file)
    if metadata is not None:
        metadata = _check_metadata(meta_file, metadata)
    if not file.is_file():
        raise DatasetError(f"{file}: file not found ({path} is not a Minari dataset directory with data/main_data.hdf5)")

    episodes, widths = [], {}
    try:
        with h5py.File(file, "r") as f:
            if metadata is None:  # Minari < 0.5 keeps its metadata as attributes of the file
                metadata = _check_metadata(file, {k: stored_value(v) for k, v in f.attrs.items()})
            ids = sorted((int(m.group(1)), key) for key in f if (m := _EPISODE.fullmatch(key)) and isinstance(f[key], h5py.Group))
            if not ids:
                raise DatasetError(
                    f"{file}: no episodes (no 'episode_{{id}}' groups; found keys: {', '.join(sorted(f)) or 'none'})"
                )
            for _, key in ids:
                episodes.append(_read_episode(file, f[key], widths))
    except OSError as e:
        raise DatasetError(f"{file}: cannot be read as HDF5 ({e})") from e

    steps = sum(len(e["actions"]) for e in episodes)
    source = meta_file if meta_file.is_file() else file
    for key, found in (("total_episodes", len(episodes)), ("total_steps", steps)):
        if metadata.get(key) is not None and metadata[key] != found:
            raise DatasetError(f"{source}: key {key!r} is {metadata[key]} but {file.name} holds {found}")
    if steps == 0:
        raise DatasetError(f"{file}: no transitions (every episode has only its initial observation)")
    if spec is not None:
        for key, expected in (("observations", spec.obs_dim), ("actions", spec.action_dim)):
            if widths[key] != expected:
                raise DatasetError(
                    f"{file}: key {f'{ids[0][1]}/{key}'!r} has width {widths[key]} (as in every episode) "
                    f"but environment {spec.name} expects {expected}"
                )

    parts = []
    for e in episodes:
        if not len(e["actions"]):
            continue
        terminals = e["terminations"].astype(bool)
        timeouts = e["truncations"].astype(bool)
        if not (terminals[-1] or timeouts[-1]):
            timeouts[-1] = True  # cut by the collection: a time-limit end, still bootstrapped
        parts.append(
            {
                "observations": e["observations"][:-1],
                "actions": e["actions"],
                "rewards": e["rewards"],
                "next_observations": e["observations"][1:],
                "terminals": terminals,
                "timeouts": timeouts,
            }
        )
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    arrays["actions"] = to_agent_actions(file, arrays["actions"], spec, metadata)
    arrays["next_actions"] = next_actions(arrays)
    return Dataset.from_numpy(**arrays), metadata
