"""Named dynamics: an environment's physics as scales of its own values, plus joint noise.

Sim-to-real methods (H2O) train in a "sim" that is the "real" environment with shifted dynamics:
"gravity x2", "friction x0.3", noise on the joints. Each adapter maps dynamics names onto fields of
its params (`Env.dynamics`); a value is a scale of the env's own value of that field (1 = unmodified).
`joint_noise` is the one absolute value: the standard deviation of Gaussian noise added to the
agent's action in its [-1, 1] units (0 = none), applied by the `JointNoise` wrapper.

Values may be jax arrays, so a sweep can vmap over them; only concrete numbers are range-checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jax
import numpy as np
from flax import struct

JOINT_NOISE = "joint_noise"


@struct.dataclass
class DynamicsParams:
    """The params of an env under `JointNoise`: the inner env's own params and the noise's sigma."""

    physics: Any
    joint_noise: Any = 0.0

    def __getattr__(self, name: str) -> Any:
        # Physical parameters read through (`params.g`), so code that inspects them need not know
        # about the noise layer. Dunder and own-field lookups must fail normally (copy, pickle).
        if name.startswith("__") or name in ("physics", "joint_noise"):
            raise AttributeError(name)
        return getattr(self.physics, name)


def describe(names: Iterable[str]) -> str:
    """Every dynamics name with its range, for error messages."""
    return ", ".join(f"{n} (sigma >= 0)" if n == JOINT_NOISE else f"{n} (scale > 0)" for n in names)


def check(env_name: str, values: Mapping[str, Any], names: tuple[str, ...]) -> None:
    """Raise ValueError for an unknown name or a concrete value out of its range."""
    for name, value in values.items():
        if name not in names:
            raise ValueError(f"{env_name} has no dynamics {name!r}; its dynamics: {describe(names)}")
        if isinstance(value, jax.Array):
            continue  # possibly traced (a vmapped sweep): not checkable here
        absolute = name == JOINT_NOISE
        if not _in_range(value, absolute):
            want = "a finite number >= 0 (the noise's sigma)" if absolute else "a finite number > 0 (a scale)"
            raise ValueError(f"{env_name} dynamics {name} must be {want}, got {value!r}; its dynamics: {describe(names)}")


def _in_range(value: Any, absolute: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number, np.ndarray)):
        return False
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        return False
    return bool(np.all(np.isfinite(array)) and np.all(array >= 0 if absolute else array > 0))
