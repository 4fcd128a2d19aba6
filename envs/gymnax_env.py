"""Adapter from gymnax environments to the jaxrl interface.

gymnax's own `step` auto-resets and folds the time limit into `done`; we call `step_env`/`reset_env`
instead so that termination stays pure and the time limit is applied by our `TimeLimit` wrapper,
which reports it separately as truncation (a truncated transition must still be bootstrapped).
"""

from __future__ import annotations

import gymnax
import jax
import jax.numpy as jnp
import numpy as np

from envs.core import Env, EnvSpec

# Dynamics names (see envs.dynamics) -> the gymnax params field each one scales.
DYNAMICS = {
    "Pendulum-v1": {"gravity": "g", "mass": "m", "length": "l", "max_torque": "max_torque"},
    "MountainCarContinuous-v0": {"power": "power", "gravity": "gravity"},
}


class GymnaxEnv(Env):
    def __init__(self, gymnax_id: str, name: str):
        self._env, params = gymnax.make(gymnax_id)
        # The episode length is fixed by the spec (TimeLimit), so the gymnax copy never truncates.
        self.default_params = self.nominal_params = params
        self.dynamics = DYNAMICS.get(gymnax_id, {})
        space = self._env.action_space(params)
        if not hasattr(space, "low"):
            raise ValueError(f"{name}: only continuous-action gymnax environments are supported")
        action_shape = tuple(space.shape) or (1,)
        self.spec = EnvSpec(
            name=name,
            obs_shape=tuple(self._env.observation_space(params).shape),
            action_shape=action_shape,
            action_low=tuple(np.broadcast_to(np.asarray(space.low, np.float32), action_shape).tolist()),
            action_high=tuple(np.broadcast_to(np.asarray(space.high, np.float32), action_shape).tolist()),
            max_episode_steps=int(params.max_steps_in_episode),
        )

    def reset(self, key, params=None):
        obs, state = self._env.reset_env(key, self._params(params))
        # Some gymnax resets return weakly typed leaves (Pendulum's last_u) that turn strong after a
        # step; a state whose types change between calls makes every jitted consumer compile twice.
        state = jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.result_type(x)), state)
        return obs.astype(jnp.float32), state

    def step(self, key, state, action, params=None):
        action = jnp.reshape(action, self.spec.action_shape)
        obs, state, reward, terminated, _ = self._env.step_env(key, state, action, self._params(params))
        reward = jnp.asarray(reward, jnp.float32).reshape(())
        terminated = jnp.asarray(terminated, bool).reshape(())
        return obs.astype(jnp.float32), state, reward, terminated, jnp.zeros((), bool), {}
