"""Loss functions and value targets as small pure functions over arrays.

Each returns an elementwise or reduced value as documented; agents compose them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def expectile_loss(diff, expectile: float):
    """Asymmetric L2 of IQL: |tau - 1(u < 0)| u^2, elementwise, with u = target - prediction."""
    weight = jnp.where(diff < 0, 1.0 - expectile, expectile)
    return weight * diff**2


def huber_loss(diff, sigma: float):
    """RIQL's Huber: 0.5 sigma^2 x^2 if |x| < 1/sigma^2 else |x| - 0.5/sigma^2, elementwise."""
    threshold = 1.0 / sigma**2
    absdiff = jnp.abs(diff)
    return jnp.where(absdiff < threshold, 0.5 * sigma**2 * diff**2, absdiff - 0.5 * threshold)


def td_target(reward, terminal, next_value, gamma: float):
    """One-step bootstrapped target r + gamma (1 - terminal) V(s'). Truncation is not terminal."""
    return reward + gamma * (1.0 - terminal) * next_value


def advantage_weights(advantage, beta: float, max_weight: float = 100.0):
    """Exponentiated advantages of AWR/IQL, clipped from above: min(exp(beta A), max_weight)."""
    return jnp.minimum(jnp.exp(beta * advantage), max_weight)


def soft_update(target_params, online_params, tau: float):
    """Polyak averaging: target <- (1 - tau) target + tau online."""
    return jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, target_params, online_params)


def conservative_penalty(q_sampled, q_data):
    """CQL's push-down/push-up term: logsumexp over sampled actions of Q minus Q of dataset actions.

    `q_sampled` [K, n, B] holds Q values (already importance-corrected) of n sampled actions per state;
    `q_data` [K, B]. Returns the per-critic penalty averaged over the batch, shape [K].
    """
    return (jax.nn.logsumexp(q_sampled, axis=1) - q_data).mean(axis=-1)


def ensemble_gradient_similarity(action_grads):
    """EDAC's diversity term: mean over pairs i != j of cos(grad_a Q_i, grad_a Q_j), averaged over the batch.

    `action_grads` [K, B, A] are the gradients of each critic with respect to the action.
    """
    k = action_grads.shape[0]
    # sqrt(|g|^2 + eps), not |g| + eps: the norm's own gradient is 0/0 = NaN where a critic's action
    # gradient is exactly zero (all ReLUs off), which made EDAC diverge; torch's norm returns 0 there.
    unit = action_grads / jnp.sqrt(jnp.sum(action_grads**2, axis=-1, keepdims=True) + 1e-20)
    cosine = jnp.einsum("ibd,jbd->bij", unit, unit)
    off_diagonal = cosine.sum(axis=(1, 2)) - jnp.trace(cosine, axis1=1, axis2=2)
    return off_diagonal.mean() / (k * (k - 1))


def bc_penalty(policy_actions, data_actions, reduce: str = "sum"):
    """Squared distance to dataset actions per sample: summed (ReBRAC) or averaged (TD3+BC) over action dims."""
    squared = (policy_actions - data_actions) ** 2
    return squared.sum(axis=-1) if reduce == "sum" else squared.mean(axis=-1)
