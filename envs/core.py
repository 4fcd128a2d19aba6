"""The functional environment interface every environment in jaxrl implements.

An environment is a stateless object: all state lives in pytrees that are passed in and returned, so
`reset` and `step` can be jitted, vmapped over many copies, and scanned over time. Physical
parameters (gravity, friction, ...) are a pytree `params` argument, which makes a "sim" and a "real"
environment the same code with different params, and lets params themselves be vmapped.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import jax
import numpy as np

from envs.dynamics import check as check_dynamics

Transition = tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array, dict]
"""(obs, state, reward, terminated, truncated, info) returned by `Env.step`."""


@dataclass(frozen=True)
class EnvSpec:
    """Static description of an environment: shapes, action bounds and episode length."""

    name: str
    obs_shape: tuple[int, ...]
    action_shape: tuple[int, ...]
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    max_episode_steps: int
    # The wrapped environment's own action bounds, where `RescaleAction` maps [-1, 1] onto them (None:
    # the same as action_low/high). A dataset written in the native range is rescaled by them on load.
    native_action_low: tuple[float, ...] | None = None
    native_action_high: tuple[float, ...] | None = None
    # The physics simulator behind a simulated body ("mjx": MuJoCo's; "spring", "generalized": brax's
    # own), recorded with datasets: numbers from different physics are not comparable. None: no physics.
    physics: str | None = None

    @property
    def obs_dim(self) -> int:
        return int(np.prod(self.obs_shape))

    @property
    def action_dim(self) -> int:
        return int(np.prod(self.action_shape))

    @property
    def native_action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        low = self.action_low if self.native_action_low is None else self.native_action_low
        high = self.action_high if self.native_action_high is None else self.native_action_high
        return np.asarray(low, np.float64), np.asarray(high, np.float64)


class Env(abc.ABC):
    """Base class: subclasses set `spec` and `default_params` and implement reset/step.

    An adapter with named dynamics (see `envs.dynamics`) also sets `dynamics`, the map from each name
    to the field of its params it scales, and `nominal_params`, the env's own params those scales are
    relative to (they stay put when `set_default_params` shifts the defaults).
    """

    spec: EnvSpec
    default_params: Any
    dynamics: Mapping[str, str] = MappingProxyType({})
    nominal_params: Any = None

    @abc.abstractmethod
    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, Any]:
        """Start an episode: returns the first observation and the environment state."""

    @abc.abstractmethod
    def step(self, key: jax.Array, state: Any, action: jax.Array, params: Any = None) -> Transition:
        """Advance one step; `terminated` (a true end) and `truncated` (time limit) stay distinct."""

    def param_names(self) -> tuple[str, ...]:
        """The names of the physical parameters `params_with` can set."""
        return tuple(f.name for f in dataclasses.fields(self.default_params)) if self.default_params is not None else ()

    def params_with(self, **values: float) -> Any:
        """The default params with the named ones replaced, e.g. `params_with(g=12.0)` for Pendulum.

        Raises ValueError naming the unknown parameter and listing the env's parameters."""
        self._check_param_values(values)
        return self.default_params.replace(**values)

    def _check_param_values(self, values: Mapping[str, Any]) -> None:
        names = self.param_names()
        for name, value in values.items():
            if name not in names:
                known = ", ".join(f"{n}={getattr(self.default_params, n)}" for n in names) or "none"
                raise ValueError(f"{self.spec.name} has no parameter {name!r}; its parameters (defaults): {known}")
            if not isinstance(value, (int, float)) or value != value:
                raise ValueError(f"{self.spec.name} parameter {name} must be a number, got {value!r}")

    def dynamics_names(self) -> tuple[str, ...]:
        """The names `dynamics_params` takes, e.g. ("gravity", "mass", ...)."""
        return tuple(self.dynamics)

    def dynamics_params(self, **values: Any) -> Any:
        """The default params with the named dynamics set to `scale * the env's own value`.

        `dynamics_params(gravity=2.0)` doubles gravity; unnamed dynamics keep the defaults. Values may be
        jax arrays (vmap over them); concrete ones out of range raise ValueError listing the names."""
        check_dynamics(self.spec.name, values, self.dynamics_names())
        fields = {self.dynamics[n]: scale * getattr(self.nominal_params, self.dynamics[n]) for n, scale in values.items()}
        return self.default_params.replace(**fields) if fields else self.default_params

    def set_default_params(self, params: Any) -> None:
        """Make `params` what `params=None` means, e.g. the shifted dynamics of a "sim" env."""
        self.default_params = params

    def _params(self, params: Any) -> Any:
        return self.default_params if params is None else params

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.name})"
