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


def gae_advantages(rewards, values, next_values, terminated, done, gamma: float, lam: float):
    """Generalised advantage estimates over a rollout with time as the leading axis ([T, ...]).

    delta_t = r_t + gamma (1 - terminated_t) V(s'_t) - V(s_t); A_t = delta_t + gamma lam (1 - done_t) A_{t+1}.
    `next_values` are the values of each step's true next observation, so an episode cut by the time
    limit (done, not terminated) still bootstraps, and `done` stops the recursion at every episode end.
    """
    deltas = td_target(rewards, terminated, next_values, gamma) - values

    def backward(advantage, inputs):
        delta, done_t = inputs
        advantage = delta + gamma * lam * (1.0 - done_t) * advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(backward, jnp.zeros_like(deltas[0]), (deltas, done), reverse=True)
    return advantages


def clipped_surrogate(log_ratio, advantages, epsilon: float):
    """PPO's clipped objective to maximise, elementwise: min(rho A, clip(rho, 1 - eps, 1 + eps) A)."""
    ratio = jnp.exp(log_ratio)
    return jnp.minimum(ratio * advantages, jnp.clip(ratio, 1.0 - epsilon, 1.0 + epsilon) * advantages)


def random_subset_min(q, key, size: int):
    """REDQ's target: the minimum over `size` distinct members drawn at random from the ensemble axis of
    `q` [K, ...] (one subset for the whole batch, as the reference draws it per update)."""
    members = jax.random.choice(key, q.shape[0], (size,), replace=False)
    return q[members].min(axis=0)


def q_smoothness(q_perturbed, q, tau: float):
    """RO2O's Q-smoothness term: with diff = Q_i(s + delta_j, a) - Q_i(s, a), the asymmetric square
    (1 - tau) relu(diff)^2 + tau min(diff, 0)^2 averaged over critics, maximised over the perturbations j,
    averaged over the batch. `q_perturbed` [K, n, B], `q` [K, B]; tau < 0.5 penalises rises more than falls."""
    diff = q_perturbed - q[:, None]
    asymmetric = (1.0 - tau) * jnp.maximum(diff, 0.0) ** 2 + tau * jnp.minimum(diff, 0.0) ** 2
    return asymmetric.mean(axis=0).max(axis=0).mean()


def uncertainty_target(q, weight):
    """RO2O's OOD target: Q_i - weight * std_i Q over the ensemble axis (unbiased, as torch's std),
    detached, so regressing Q_i to it pushes each member down by weight times the ensemble's spread."""
    return jax.lax.stop_gradient(q - weight * q.std(axis=0, ddof=1))


def symmetric_gaussian_kl(mean_p, log_std_p, mean_q, log_std_q):
    """KL(p || q) + KL(q || p) of diagonal Gaussians, summed over the last axis: the sum of the two
    variance ratios and the squared mean gap over both variances, minus 1 per dimension, halved."""
    var_p, var_q = jnp.exp(2.0 * log_std_p), jnp.exp(2.0 * log_std_q)
    gap = (mean_p - mean_q) ** 2
    return 0.5 * jnp.sum(var_p / var_q + var_q / var_p + gap / var_q + gap / var_p - 2.0, axis=-1)


def linear_schedule(start, decay, end, step):
    """start - decay * step, but never past `end` (RO2O's uncertainty weight: 1.0 down to 0.1)."""
    return jnp.maximum(start - decay * step, end)


def calibrated(q_policy, reference_value):
    """Cal-QL's bound: Q values of policy actions floored at the reference value V(s) of their state
    (the data's Monte Carlo return-to-go). `q_policy` [..., B], `reference_value` [B]."""
    return jnp.maximum(q_policy, reference_value)


def discriminator_loss(real_logits, sim_logits):
    """Cross-entropy of a real-vs-simulated classifier (class 0 real, class 1 simulated), averaged over the
    batch: -log p(real | real rows) - log p(sim | simulated rows). Logits [B, 2]."""
    return -(jax.nn.log_softmax(real_logits)[:, 0].mean() + jax.nn.log_softmax(sim_logits)[:, 1].mean())


def dynamics_log_ratio(sas_logits):
    """H2O/DARC's log P_real(s'|s,a) / P_sim(s'|s,a) from the (s,a,s') classifier's own logits [..., 2]
    (class 0 real). By Bayes it is log p(real|s,a,s')/p(sim|s,a,s') - log p(real|s,a)/p(sim|s,a); both
    references read p(.|s,a,s') as softmax(D_sas + D_sa) and p(.|s,a) as softmax(D_sa), so D_sa's logits
    cancel and the ratio is D_sas's logit gap (D_sa still shapes what D_sas learns: see its training)."""
    return sas_logits[..., 0] - sas_logits[..., 1]


def importance_weights(log_ratio, low: float = 1e-5, high: float = 1.0):
    """H2O's weights of simulated TD errors: the dynamics ratio P_real/P_sim clipped to [low, high]."""
    return jnp.clip(jnp.exp(log_ratio), low, high)


def dynamics_gap(log_ratios, low: float = 1e-45, high: float = 10.0):
    """H2O's u(s,a): the mean over sampled next states (last axis) of log P_sim/P_real, an estimate of
    KL(P_sim || P_real) at (s, a), clipped to [low, high] so every weight stays positive."""
    return jnp.clip(-log_ratios.mean(axis=-1), low, high)


def gap_penalty(q_sim, u, q_real, clip: float = 1000.0):
    """H2O's dynamics-aware penalty per critic: logsumexp over the simulated batch of Q + log omega, omega =
    u / sum u (a soft maximum that leans on the rows with the largest gap), minus the mean Q of the real
    rows, clipped to [-clip, clip] as the reference. `q_sim` [K, Bs], `u` [Bs], `q_real` [K, Br] -> [K]."""
    log_omega = jnp.log(u) - jnp.log(u.sum())
    gap = jax.scipy.special.logsumexp(q_sim + log_omega, axis=-1) - q_real.mean(axis=-1)
    return jnp.clip(gap, -clip, clip)
