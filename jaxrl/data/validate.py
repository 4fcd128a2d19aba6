"""What the dataset readers (`jaxrl.data.io`, `jaxrl.data.minari`) share: their errors and warnings,
the checks of stored arrays, and the mapping of stored actions onto the agents' [-1, 1].

Every check raises `DatasetError` naming the file (`source`), the key and what is wrong.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

ACTION_SLACK = 1e-4  # float noise allowed past a bound (a file that clipped in float64, then stored float32)


class DatasetError(ValueError):
    """A dataset file is missing, unreadable or malformed."""


class DatasetWarning(UserWarning):
    """A dataset was changed on load (e.g. its actions rescaled); the message says how."""


def check_numeric(source, key: str, array: np.ndarray) -> None:
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise DatasetError(f"{source}: key {key!r} has dtype {array.dtype}, expected a numeric (float) array")


def check_flags(source, key: str, array: np.ndarray) -> None:
    """Booleans, or numbers that are all 0 or 1."""
    if array.dtype != bool and not (np.issubdtype(array.dtype, np.number) and np.isin(array, (0, 1)).all()):
        raise DatasetError(f"{source}: key {key!r} has dtype {array.dtype} with values other than 0/1, expected booleans")


def check_finite(source, key: str, array: np.ndarray) -> None:
    """No NaN or Inf in any row (the leading axis)."""
    bad = ~np.isfinite(array).all(axis=tuple(range(1, array.ndim)))
    if bad.any():
        raise DatasetError(
            f"{source}: key {key!r} contains non-finite values (NaN or Inf) in {int(bad.sum())} rows, "
            f"first at row {int(np.argmax(bad))}"
        )


def stored_value(value):
    """A scalar, string or array read from an HDF5 or NPZ file as a plain Python value."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()  # NPZ strings arrive as np.str_
    return value


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
