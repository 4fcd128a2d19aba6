"""H2O (Niu et al., NeurIPS 2022, arXiv 2206.13464): SAC on batches of real data and simulator
transitions that trusts the simulator only as far as its dynamics agree with the real ones.

- The real-vs-simulated classifiers (`SimToReal`) give the dynamics ratio P_real/P_sim(s'|s,a);
  simulated TD errors are weighted by it, clipped to [1e-5, 1].
- A CQL-like penalty pushes Q down on simulated rows where the gap u(s,a) (an estimate of KL(P_sim ||
  P_real) from next states sampled around s') is large, and up on the real rows.
- The actor learns on every row, real and simulated.

Differences from the reference (`t6-thu/H2O`, SimpleSAC/sim2real_sac.py): the classifiers train on the
update's own real and simulated rows (the reference draws separate batches of 256 each), and the
next-state noise of u is computed from the batch's real observations where the reference uses its whole
buffer. That buffer (mixed_replay_buffer.py:42-59) stacks the real data on `next_state_std_padding` (10)
times as many zero rows, its simulator part before any transition, and takes the std once, so the noise
is about 0.3 of the real std on zero-mean dimensions; the padding reproduces that (0: the real std).
Rewards are raw, as the reference trains (reward_scale 1, bias 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.agents import losses
from jaxrl.agents.base import static
from jaxrl.agents.sim_to_real import ClassifierState, SimToReal, nonnegative


class H2O(SimToReal):
    backup_entropy: bool = static(False, help="subtract alpha log pi(a'|s') in the critic target")
    penalty_weight: float = nonnegative(0.01, help="beta: weight of the dynamics-gap penalty")
    next_state_samples: int = static(10, help="next states sampled around s' to estimate u(s,a)")
    next_state_std_ratio: float = nonnegative(
        1.0, help="std of those samples in units of the real observations' std (the reference's s_prime_std_ratio)"
    )
    next_state_std_padding: float = nonnegative(
        10.0, help="zero rows per real row in the std of those samples: the reference's empty simulator buffer (0: the real std)"
    )
    importance_weighting: bool = static(True, help="weight simulated TD errors by the dynamics ratio")
    gap_penalty: bool = static(True, help="the u-weighted penalty on simulated Q values (off with the weights: naive mix)")

    name = "h2o"
    description = "Dynamics-aware hybrid offline-and-online RL: real data plus an imperfect simulator"
    normalizes_rewards = False  # the reference trains on raw rewards (reward_scale 1.0, reward_bias 0.0)

    def td_weights(self, state: ClassifierState, batch):
        """The mean squared TD error of the real rows plus the ratio-weighted mean of the simulated ones,
        as per-row weights of the batch mean."""
        r, n = self.real_rows(batch), batch.rewards.shape[0]
        sim = jnp.ones(n - r)
        if self.importance_weighting:
            log_ratio = self.log_ratio(state.discriminators.params, batch.observations[r:], batch.actions[r:],
                                       batch.next_observations[r:])  # fmt: skip
            sim = losses.importance_weights(log_ratio)
        return jax.lax.stop_gradient(jnp.concatenate([jnp.full(r, n / r), sim * n / (n - r)]))

    def next_state_std(self, real_obs):
        """Per dimension, the std of the real observations stacked on `next_state_std_padding` times as many
        zero rows, plus the reference's 1e-3 (mixed_replay_buffer.py `normalize_states`)."""
        share = 1.0 / (1.0 + self.next_state_std_padding)
        mean, mean_square = share * real_obs.mean(axis=0), share * jnp.square(real_obs).mean(axis=0)
        return jnp.sqrt(jnp.maximum(mean_square - jnp.square(mean), 0.0)) + 1e-3

    def critic_regularizer(self, state: ClassifierState, batch, key):
        if not self.gap_penalty:
            return None
        r, m = self.real_rows(batch), self.next_state_samples
        obs, action, next_obs = batch.observations[r:], batch.actions[r:], batch.next_observations[r:]
        std = self.next_state_std(batch.observations[:r])
        sampled = next_obs + self.next_state_std_ratio * std * jax.random.normal(key, (m, *next_obs.shape))
        log_ratios = jax.vmap(lambda s: self.log_ratio(state.discriminators.params, obs, action, s))(sampled)
        # Floored at 1e-30, not the reference's 1e-45: that is a float32 subnormal, which devices may flush
        # to 0, and a batch of zeros would make omega = u / sum u undefined.
        u = jax.lax.stop_gradient(losses.dynamics_gap(log_ratios.T, low=1e-30))

        def penalty(params):
            q = self.critic_net.apply(params, batch.observations, batch.actions)  # [K, B]
            gap = losses.gap_penalty(q[:, r:], u, q[:, :r])
            return self.penalty_weight * gap.sum(), {"gap_penalty": gap.mean(), "u": u.mean()}

        return penalty
