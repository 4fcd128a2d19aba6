"""Environment throughput: PathWorld in state and image modes (32 and 64 px) next to gymnax Pendulum, and
brax's hopper on each physics backend (mjx: MuJoCo's, the default; generalized; spring), 1 and 1,024 envs
stepped in parallel (auto-reset included), uniform random actions, one scan per chunk."""

from __future__ import annotations

import jax

import envs
from benchmarks.timing import Result, time_program

SETTINGS = [("gymnax/Pendulum-v1", {}), ("pathworld/pick-place", {"obs": "state"}),
            ("pathworld/pick-place", {"obs": "image", "image_size": 32}),
            ("pathworld/pick-place", {"obs": "image", "image_size": 64}),
            *(("brax/hopper", {"backend": backend}) for backend in ("mjx", "generalized", "spring"))]  # fmt: skip


def bench_env_steps(name: str, options: dict, num_envs: int, chunk_steps: int, repeats: int, quiet_wait: float) -> Result:
    env = envs.make(name, **options)
    low, high = env.spec.action_low[0], env.spec.action_high[0]

    @jax.jit
    def chunk(carry, index):
        def step(carry, key):
            obs, state = carry
            k_act, k_env = jax.random.split(key)
            action = jax.random.uniform(k_act, (num_envs, env.spec.action_dim), minval=low, maxval=high)
            obs, state, reward, *_ = jax.vmap(env.step)(jax.random.split(k_env, num_envs), state, action)
            return (obs, state), reward.mean()

        keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(1), index), chunk_steps)
        return jax.lax.scan(step, carry, keys)

    carry = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), num_envs))
    mode = ", ".join(f"{k} {v}" for k, v in options.items()) or "state"
    label = f"{name} ({mode}) x{num_envs}"
    timing = time_program(chunk, carry, repeats, label, quiet_wait)
    return Result.of(label, f"{chunk_steps} steps of {num_envs} envs per chunk, random actions", timing,
                     chunk_steps * num_envs, 1, "env steps/s")  # fmt: skip
