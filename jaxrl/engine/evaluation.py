"""Policy evaluation: many episodes at once, as one scan over time of a vmapped environment."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


def evaluate_policy(env, policy: Callable, key: jax.Array, num_episodes: int, params=None) -> jax.Array:
    """Returns of `num_episodes` episodes run in parallel, each until its first end.

    `env` is an auto-resetting environment from `envs.make`; `policy(obs, key) -> action` acts on a
    batch of observations. The scan runs for the time limit, which every episode reaches or ends before.
    """
    return evaluate_policy_with_memory(
        env, lambda obs, key, carry: (policy(obs, key), carry), key, num_episodes, params, init_carry=lambda obs: None
    )


def evaluate_policy_with_memory(
    env,
    policy: Callable,
    key: jax.Array,
    num_episodes: int,
    params=None,
    *,
    init_carry: Callable,
    observe: Callable | None = None,
    outcome: str | None = None,
):
    """As `evaluate_policy`, for policies that remember the episode so far (e.g. Decision Transformer).

    `init_carry(first_obs) -> carry`, `policy(obs, key, carry) -> (action, carry)` and
    `observe(carry, reward) -> carry` (called after every step) thread a carry through the episode.
    Only the first episode of each parallel env counts, so the carry never needs a reset.
    With `outcome` (an info key, e.g. "success"), returns (returns, info[outcome] at each first end).
    """
    reset_key, run_key = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, num_episodes), params)
    observe = observe or (lambda carry, reward: carry)

    def step(carry, key):
        obs, state, memory, returns, outcomes, finished = carry
        act_key, env_key = jax.random.split(key)
        action, memory = policy(obs, act_key, memory)
        obs, state, reward, _, _, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(env_key, num_episodes), state, action, params
        )
        first_end = info["episode_done"] & ~finished
        returns = jnp.where(first_end, info["episode_return"], returns)
        if outcome is not None:
            outcomes = jnp.where(first_end, info[outcome].astype(jnp.float32), outcomes)
        return (obs, state, observe(memory, reward), returns, outcomes, finished | info["episode_done"]), None

    zeros = jnp.zeros(num_episodes)
    init = (obs, state, init_carry(obs), zeros, zeros, jnp.zeros(num_episodes, bool))
    keys = jax.random.split(run_key, env.spec.max_episode_steps)
    (_, _, _, returns, outcomes, _), _ = jax.lax.scan(step, init, keys)
    return returns if outcome is None else (returns, outcomes)


def normalized_score(returns, ref_min: float, ref_max: float):
    """D4RL normalised score: 100 (R - R_random) / (R_expert - R_random)."""
    return 100.0 * (np.asarray(returns) - ref_min) / (ref_max - ref_min)
