"""Wrappers that every training and evaluation environment gets (see `envs.make`).

Order, innermost first: RescaleAction -> JointNoise -> TimeLimit -> EpisodeStats -> AutoReset.

A wrapper's params are its inner env's (`JointNoise` alone adds a layer, `DynamicsParams`), so the
params API (`params_with`, `dynamics_params`, `default_params`) is the inner env's, read through.
"""

from __future__ import annotations

from dataclasses import replace

import jax
import jax.numpy as jnp
from flax import struct

from envs.core import Env
from envs.dynamics import JOINT_NOISE, DynamicsParams, check


class Wrapper(Env):
    def __init__(self, env: Env):
        self.env = env
        self.spec = env.spec

    # Read through, never copied: every layer then means the same thing by `params=None`.
    @property
    def default_params(self):
        return self.env.default_params

    def set_default_params(self, params) -> None:
        self.env.set_default_params(params)

    def param_names(self) -> tuple[str, ...]:
        return self.env.param_names()

    def params_with(self, **values):
        return self.env.params_with(**values)

    def dynamics_names(self) -> tuple[str, ...]:
        return self.env.dynamics_names()

    def dynamics_params(self, **values):
        return self.env.dynamics_params(**values)

    def reset(self, key, params=None):
        return self.env.reset(key, params)

    def step(self, key, state, action, params=None):
        return self.env.step(key, state, action, params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env!r})"


class RescaleAction(Wrapper):
    """Agents act in [-1, 1]; this maps actions affinely onto the environment's bounds."""

    def __init__(self, env: Env):
        super().__init__(env)
        low, high = env.spec.native_action_bounds
        self._low = jnp.asarray(low, jnp.float32)
        self._high = jnp.asarray(high, jnp.float32)
        n = env.spec.action_dim
        self.spec = replace(env.spec, action_low=(-1.0,) * n, action_high=(1.0,) * n,
                            native_action_low=tuple(low.tolist()), native_action_high=tuple(high.tolist()))  # fmt: skip

    def step(self, key, state, action, params=None):
        action = jnp.clip(action, -1.0, 1.0)
        action = self._low + (action + 1.0) * 0.5 * (self._high - self._low)
        return self.env.step(key, state, action, params)


class JointNoise(Wrapper):
    """Adds N(0, sigma) noise to the agent's action before the env steps (H2O's "joint noise").

    Sits right outside RescaleAction, so the noise is in the agent's [-1, 1] units and the noisy action
    is clipped like any other. Only the physics sees it: the caller still stores the action it chose.
    The noise has its own key stream (`fold_in`), and the inner env gets the original key, so with
    sigma 0 every transition is bit for bit the one without this wrapper.
    """

    _NOISE_STREAM = 0x6A6E  # "jn": a constant, so the noise is a pure function of the step key

    def __init__(self, env: Env, joint_noise: float = 0.0):
        super().__init__(env)
        self._joint_noise = joint_noise

    @property
    def default_params(self) -> DynamicsParams:
        return DynamicsParams(self.env.default_params, self._joint_noise)

    def set_default_params(self, params: DynamicsParams) -> None:
        self._joint_noise = params.joint_noise
        self.env.set_default_params(params.physics)

    def param_names(self) -> tuple[str, ...]:
        return (*self.env.param_names(), JOINT_NOISE)

    def params_with(self, **values) -> DynamicsParams:
        self._check_param_values(values)  # unknown names: the message lists joint_noise too
        sigma = values.pop(JOINT_NOISE, self._joint_noise)
        check(self.spec.name, {JOINT_NOISE: sigma}, self.dynamics_names())
        return DynamicsParams(self.env.params_with(**values), sigma)

    def dynamics_names(self) -> tuple[str, ...]:
        return (*self.env.dynamics_names(), JOINT_NOISE)

    def dynamics_params(self, **values) -> DynamicsParams:
        check(self.spec.name, values, self.dynamics_names())
        sigma = values.pop(JOINT_NOISE, self._joint_noise)
        return DynamicsParams(self.env.dynamics_params(**values), sigma)

    def _params(self, params) -> DynamicsParams:
        params = self.default_params if params is None else params
        if not isinstance(params, DynamicsParams):
            raise TypeError(f"{self.spec.name}: params must be DynamicsParams (from env.params_with or env.dynamics_params), "
                            f"got {type(params).__name__}")  # fmt: skip
        return params

    def reset(self, key, params=None):
        return self.env.reset(key, self._params(params).physics)

    def step(self, key, state, action, params=None):
        params = self._params(params)
        action = jnp.asarray(action)
        noise = jax.random.normal(jax.random.fold_in(key, self._NOISE_STREAM), action.shape, action.dtype)
        return self.env.step(key, state, action + params.joint_noise * noise, params.physics)


@struct.dataclass
class TimeLimitState:
    inner: object
    t: jax.Array


class TimeLimit(Wrapper):
    """Ends episodes after `spec.max_episode_steps` as truncation, never as termination."""

    def reset(self, key, params=None):
        obs, inner = self.env.reset(key, params)
        return obs, TimeLimitState(inner, jnp.zeros((), jnp.int32))

    def step(self, key, state, action, params=None):
        obs, inner, reward, terminated, truncated, info = self.env.step(key, state.inner, action, params)
        t = state.t + 1
        truncated = (truncated | (t >= self.spec.max_episode_steps)) & ~terminated
        return obs, TimeLimitState(inner, t), reward, terminated, truncated, info


@struct.dataclass
class EpisodeStatsState:
    inner: object
    episode_return: jax.Array
    episode_length: jax.Array


class EpisodeStats(Wrapper):
    """Reports the return and length of an episode in `info` at the step where it ends."""

    def reset(self, key, params=None):
        obs, inner = self.env.reset(key, params)
        return obs, EpisodeStatsState(inner, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))

    def step(self, key, state, action, params=None):
        obs, inner, reward, terminated, truncated, info = self.env.step(key, state.inner, action, params)
        ret = state.episode_return + reward
        length = state.episode_length + 1
        info = {**info, "episode_return": ret, "episode_length": length, "episode_done": terminated | truncated}
        return obs, EpisodeStatsState(inner, ret, length), reward, terminated, truncated, info


class AutoReset(Wrapper):
    """Starts a new episode when one ends; the returned obs is then the new episode's first.

    `info["final_obs"]` always holds the true next observation of this transition, which is what a
    replay buffer must store: bootstrapping from a reset observation would be wrong.
    """

    def step(self, key, state, action, params=None):
        step_key, reset_key = jax.random.split(key)
        obs, state, reward, terminated, truncated, info = self.env.step(step_key, state, action, params)
        done = terminated | truncated
        reset_obs, reset_state = self.env.reset(reset_key, params)
        pick = lambda fresh, old: jnp.where(done, fresh, old)  # noqa: E731
        info = {**info, "final_obs": obs}
        return pick(reset_obs, obs), jax.tree.map(pick, reset_state, state), reward, terminated, truncated, info
