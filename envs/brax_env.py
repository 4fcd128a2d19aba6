"""Adapter from brax environments to the jaxrl interface.

Physics: MuJoCo's own algorithms in JAX (brax's `mjx` backend) by default, on brax's models of the gym
tasks. Measured against MuJoCo itself (gymnasium's v4 tasks, the D4RL v2 tasks' physics and reward terms;
tests/test_mujoco_fidelity.py): halfcheetah's numbers are MuJoCo's, hopper's and walker2d's differ by the
integrator (Euler here, RK4 in gym), and a hopper with a zero action falls after 130-150 steps as MuJoCo's
does. Brax's `generalized` backend drifts 3-10x further from MuJoCo at about mjx's speed (BENCHMARKS.md);
`spring` (a spring-contact approximation, ~5x faster on a CPU) is available by explicit choice only and is NOT comparable with MuJoCo or D4RL: its hopper stands for 1,000 steps with a
zero action (a return of ~965, more than its own suite's expert).

Brax keeps its physical model in `env.sys`. To make physics a pytree argument (so a "sim" variant is
the same env with other params, and params can be vmapped), `step` applies `BraxParams` to the base
system and runs the env's own step on a shallow copy that holds the modified system.
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
from flax import struct

from envs.core import Env, EnvSpec

# Episode lengths of the brax tasks, and the physics backend used unless the caller picks another.
DEFAULT_BACKEND = "mjx"
# MuJoCo's constraint solver runs up to `ls_iterations` line-search steps per solver iteration (MuJoCo's
# default 50). Under vmap every env runs as many as the slowest needs, so 6 (as MuJoCo Playground's
# locomotion tasks use) makes the mjx hopper 3.5x faster on a CPU (9.0k against 2.6k steps/s, 512 envs,
# random actions) while staying inside the fidelity bounds of tests/test_mujoco_fidelity.py.
MJX_LS_ITERATIONS = 6
BRAX_ENVS = {"hopper": 1000, "halfcheetah": 1000, "walker2d": 1000, "ant": 1000}


@struct.dataclass
class BraxParams:
    """Multiplicative changes of the physical model; all ones is the unmodified environment."""

    gravity_scale: jax.Array = 1.0
    friction_scale: jax.Array = 1.0
    mass_scale: jax.Array = 1.0  # mass and inertia together: a change of density
    actuator_scale: jax.Array = 1.0  # the actuators' strength (brax's gear)


# Dynamics names (see envs.dynamics) -> the BraxParams field each one scales.
DYNAMICS = {"gravity": "gravity_scale", "friction": "friction_scale", "mass": "mass_scale", "actuator": "actuator_scale"}


class BraxEnv(Env):
    def __init__(
        self, env_name: str, name: str, backend: str = DEFAULT_BACKEND, ls_iterations: int = MJX_LS_ITERATIONS, **kwargs
    ):
        from brax import envs as brax_envs  # imported lazily: brax pulls in mujoco

        self._env = brax_envs.get_environment(env_name, backend=backend, **kwargs)
        if backend == "mjx":
            self._env.sys = self._env.sys.replace(opt=self._env.sys.opt.replace(ls_iterations=ls_iterations))
        self._sys = self._env.sys
        self.dynamics = dict(DYNAMICS)
        if backend == "spring" and float(self._sys.spring_mass_scale) == float(self._sys.spring_inertia_scale) == 1.0:
            # The spring pipeline uses mass ** (1 - spring_mass_scale) (and the same for inertia), so a
            # model with both at 1 (hopper, ant) moves every link as if of unit mass: density is a no-op.
            del self.dynamics["mass"]
        self.default_params = self.nominal_params = BraxParams(*(jnp.float32(1.0),) * 4)
        act = (self._env.action_size,)
        # brax's `observation_size` runs a reset op by op (27 s for an mjx hopper on 2 cores); its shape is all we need
        obs = jax.eval_shape(self._env.reset, jax.ShapeDtypeStruct((2,), jnp.uint32)).obs.shape
        self.spec = EnvSpec(
            name=name,
            obs_shape=obs,
            action_shape=act,
            action_low=(-1.0,) * act[0],
            action_high=(1.0,) * act[0],
            max_episode_steps=BRAX_ENVS.get(env_name, 1000),
            physics=backend,
        )

    def _env_with(self, params: BraxParams):
        sys = self._sys
        sys = sys.tree_replace(
            {
                # brax's own pipelines read `gravity` and `actuator.gear`, MuJoCo's (mjx) `opt.gravity` and
                # `actuator_gear`: scale both of each.
                "gravity": sys.gravity * params.gravity_scale,
                "opt.gravity": sys.opt.gravity * params.gravity_scale,
                "geom_friction": sys.geom_friction * params.friction_scale,
                # brax's own pipelines read `link.inertia`, MuJoCo's (mjx) `body_*`: scale both. The spring
                # pipeline keeps the link masses in its state from `reset`, so reset with the same params.
                "link.inertia.mass": sys.link.inertia.mass * params.mass_scale,
                "link.inertia.i": sys.link.inertia.i * params.mass_scale,
                "body_mass": sys.body_mass * params.mass_scale,
                "body_inertia": sys.body_inertia * params.mass_scale,
                # The force of an actuator is clip(gain * ctrl + bias) * gear in brax's pipelines.
                "actuator.gear": sys.actuator.gear * params.actuator_scale,
                "actuator_gear": sys.actuator_gear * params.actuator_scale,
            }
        )
        env = copy.copy(self._env)
        env.sys = sys
        return env

    def reset(self, key, params=None):
        state = self._env_with(self._params(params)).reset(key)
        return state.obs, state

    def step(self, key, state, action, params=None):
        state = self._env_with(self._params(params)).step(state, action)
        terminated = state.done.astype(bool)
        return state.obs, state, state.reward.astype(jnp.float32), terminated, jnp.zeros((), bool), {}
