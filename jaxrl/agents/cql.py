"""Conservative Q-Learning (Kumar et al. 2020): SAC plus a penalty that pushes Q down on sampled
actions and up on dataset actions, with a fixed weight `cql_alpha` or a Lagrange multiplier that
holds the gap at `target_action_gap`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.agents import losses
from jaxrl.agents.base import hyperparameter, positive, static
from jaxrl.agents.optim import Trainable
from jaxrl.agents.sac import SAC, SACState, as_sac


@struct.dataclass
class CQLState(SACState):
    log_multiplier: Trainable  # log of the Lagrange multiplier (unused with a fixed alpha)


class CQL(SAC):
    hidden_dims: tuple[int, ...] = static((256, 256, 256), help="hidden layer widths of actor and critics")
    actor_lr: float = positive(1e-4, help="the policy's Adam learning rate")
    backup_entropy: bool = static(False, help="subtract alpha log pi(a'|s') in the critic target")
    num_sampled_actions: int = static(10, help="actions sampled per state and source for the logsumexp")
    lagrange: bool = static(False, help="tune the penalty weight so the gap stays at target_action_gap")
    cql_alpha: float = hyperparameter(10.0, low=0.0, low_open=False, help="fixed penalty weight")
    target_action_gap: float = hyperparameter(10.0, help="Lagrange variant: the penalty gap to hold")
    multiplier_lr: float = positive(3e-4, help="Lagrange variant: learning rate of the multiplier")
    online_sac: bool = static(False, help="fine-tune online as plain SAC, without the penalty (CQL -> SAC)")
    max_target_backup: bool = static(
        False, help="back up the best of num_sampled_actions policy actions at s' (the reference's cql_max_target_backup)"
    )

    name = "cql"
    default_regime = "offline"
    # CORL's CQL (cql.py:845): states standardised, rewards raw on locomotion (its configs' reward_scale 1).
    normalizes_observations = True
    normalizes_rewards = False
    description = "Conservative Q-Learning, fixed alpha or Lagrange (offline)"

    def init(self, key) -> CQLState:
        state = super().init(key)
        return CQLState(**vars(state), log_multiplier=Trainable.create(jnp.zeros(())))

    def penalty_weight(self, state):
        if self.lagrange:
            return jnp.clip(jnp.exp(state.log_multiplier.params), 0.0, 1e6)
        return self.cql_alpha

    def critic_regularizer(self, state, batch, key):
        n, (b, a) = self.num_sampled_actions, batch.actions.shape
        k_rand, k_pi, k_next = jax.random.split(key, 3)
        repeat = lambda x: jnp.broadcast_to(x, (n, *x.shape))  # noqa: E731
        obs, next_obs = repeat(batch.observations), repeat(batch.next_observations)
        random_actions = jax.random.uniform(k_rand, (n, b, a), minval=-1.0, maxval=1.0)
        pi_actions, pi_log_prob = self.sample_action(state.actor.params, obs, k_pi)
        next_actions, next_log_prob = self.sample_action(state.actor.params, next_obs, k_next)
        # Importance weights of the proposal distributions: uniform density 0.5^a on [-1, 1]^a.
        corrections = (jnp.full((n, b), a * jnp.log(0.5)), pi_log_prob, next_log_prob)
        weight = jax.lax.stop_gradient(self.penalty_weight(state))

        def penalty(params):
            q = lambda o, act: self.critic_net.apply(params, o, act)  # noqa: E731  [K, n, B]
            sampled = [q(obs, random_actions), self.bound(q(obs, pi_actions), batch), self.bound(q(obs, next_actions), batch)]
            sampled = jnp.concatenate([qs - jax.lax.stop_gradient(c) for qs, c in zip(sampled, corrections, strict=True)], axis=1)
            gap = losses.conservative_penalty(sampled, q(batch.observations, batch.actions))  # [K]
            if self.lagrange:
                return (weight * (gap - self.target_action_gap)).sum(), {"cql_gap": gap.mean(), "cql_weight": weight}
            return (weight * gap).sum(), {"cql_gap": gap.mean(), "cql_weight": jnp.asarray(weight, jnp.float32)}

        return penalty

    def next_value(self, state, next_obs, key, alpha):
        """With `max_target_backup`: of `num_sampled_actions` actions a' ~ pi(s'), the one whose combined
        target value is highest, with its own log-probability for the entropy backup (JaxCQL's
        conservative_sac.py, which Cal-QL's reference runs with it on)."""
        if not self.max_target_backup:
            return super().next_value(state, next_obs, key, alpha)
        repeated = jnp.broadcast_to(next_obs, (self.num_sampled_actions, *next_obs.shape))
        actions, log_probs = self.sample_action(state.actor.params, repeated, key)
        qs = self.critic_net.apply(state.target_critic_params, repeated, actions)  # [K, n, B]
        q = self.target_value(qs, jax.random.fold_in(key, 1))  # [n, B]
        best = jnp.argmax(q, axis=0)[None]
        next_q = jnp.take_along_axis(q, best, axis=0)[0]
        if self.backup_entropy:
            next_q = next_q - alpha * jnp.take_along_axis(log_probs, best, axis=0)[0]
        return next_q

    def for_online(self):
        return as_sac(self) if self.online_sac else self

    def bound(self, q_policy, batch):
        """The pushed-down Q values of policy actions [K, n, B], before the importance correction (Cal-QL floors them)."""
        return q_policy

    def after_update(self, state: CQLState, regularizer_metrics):
        if not self.lagrange:
            return state
        gap = jax.lax.stop_gradient(regularizer_metrics["cql_gap"])
        # The multiplier grows while the gap exceeds its target (gradient ascent on the penalty).
        grad = jax.grad(lambda log_m: -jnp.exp(log_m) * (gap - self.target_action_gap) * self.num_critics)(
            state.log_multiplier.params
        )
        return state.replace(log_multiplier=state.log_multiplier.apply_gradients(grad, self.multiplier_lr))
