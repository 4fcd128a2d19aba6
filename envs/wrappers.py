"""Wrappers that every training and evaluation environment gets (see `envs.make`).

Order, innermost first: RescaleAction -> TimeLimit -> EpisodeStats -> AutoReset.
"""

from __future__ import annotations

from dataclasses import replace

import jax
import jax.numpy as jnp
from flax import struct

from envs.core import Env


class Wrapper(Env):
    def __init__(self, env: Env):
        self.env = env
        self.spec = env.spec
        self.default_params = env.default_params

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
