"""Actors fitted by (weighted) regression onto dataset actions: shared by BC and IQL-family agents.

With unit weights this is behaviour cloning; with exp(beta * advantage) weights it is advantage
weighted regression (IQL). The actor is either a Gaussian (log-likelihood) or deterministic (MSE).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.agents.networks import DeterministicActor, GaussianActor, gaussian_log_prob


def make_actor(hidden_dims, action_dim: int, deterministic: bool):
    return DeterministicActor(hidden_dims, action_dim) if deterministic else GaussianActor(hidden_dims, action_dim)


def weighted_regression_loss(actor, params, obs, actions, weights, deterministic: bool):
    """mean_i w_i * (-log pi(a_i|s_i)) for a Gaussian actor, mean_i w_i * ||pi(s_i) - a_i||^2 otherwise."""
    if deterministic:
        per_sample = jnp.sum((actor.apply(params, obs) - actions) ** 2, axis=-1)
    else:
        mean, log_std = actor.apply(params, obs)
        per_sample = -gaussian_log_prob(actions, mean, log_std)
    return jnp.mean(weights * per_sample)


def regression_act(actor, params, obs, key, deterministic_actor: bool, deterministic: bool):
    if deterministic_actor:
        return actor.apply(params, obs)
    mean, log_std = actor.apply(params, obs)
    if deterministic:
        return mean
    return jnp.clip(mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape), -1.0, 1.0)
