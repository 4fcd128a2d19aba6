"""Soft Actor-Critic with automatic entropy tuning (Haarnoja et al. 2018).

Online, it is plain SAC. The offline ensemble methods (SAC-N, EDAC, CQL) are SAC with other
defaults and a critic regulariser: they override `critic_regularizer` and nothing else of the update.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl import losses
from jaxrl.agents.base import hyperparameter, positive, static
from jaxrl.agents.critic import CriticAgent
from jaxrl.networks import TanhGaussianActor, sample_tanh_gaussian
from jaxrl.optim import Trainable


@struct.dataclass
class SACState:
    actor: Trainable
    critic: Trainable
    target_critic_params: Any
    log_alpha: Trainable
    step: jax.Array


class SAC(CriticAgent):
    alpha_lr: float = positive(3e-4)
    init_alpha: float = positive(1.0, help="initial entropy temperature")
    target_entropy_scale: float = hyperparameter(1.0, help="target entropy = -scale * action_dim")
    backup_entropy: bool = static(True, help="subtract alpha log pi(a'|s') in the critic target")

    name = "sac"
    description = "Soft Actor-Critic (online)"
    default_regime = "online"

    def critic_regularizer(self, state, batch, key):
        """Extra critic loss as `params -> (penalty, metrics)`, or None (plain SAC)."""
        return None

    @property
    def actor_net(self):
        return TanhGaussianActor(self.hidden_dims, self.action_dim)

    def init(self, key) -> SACState:
        k_actor, k_critic = jax.random.split(key)
        critic = self.init_critic(k_critic)
        return SACState(
            actor=Trainable.create(self.actor_net.init(k_actor, jnp.zeros((1, self.obs_dim)))),
            critic=critic,
            target_critic_params=critic.params,
            log_alpha=Trainable.create(jnp.log(jnp.asarray(self.init_alpha, jnp.float32))),
            step=jnp.zeros((), jnp.int32),
        )

    def sample_action(self, actor_params, obs, key):
        return sample_tanh_gaussian(key, *self.actor_net.apply(actor_params, obs))

    def update(self, state: SACState, batch, key):
        k_next, k_pi, k_reg = jax.random.split(key, 3)
        alpha = jnp.exp(state.log_alpha.params)

        next_action, next_log_prob = self.sample_action(state.actor.params, batch.next_observations, k_next)
        next_q = self.critic_net.apply(state.target_critic_params, batch.next_observations, next_action).min(axis=0)
        if self.backup_entropy:
            next_q = next_q - alpha * next_log_prob
        target = losses.td_target(batch.rewards, batch.terminals, next_q, self.gamma)
        regularizer = self.critic_regularizer(state, batch, k_reg)
        critic, q_loss, qs, reg_metrics = self.fit_critic(state.critic, batch, target, regularizer=regularizer)

        def actor_loss(params):
            action, log_prob = self.sample_action(params, batch.observations, k_pi)
            q = self.critic_net.apply(critic.params, batch.observations, action).min(axis=0)
            return (alpha * log_prob - q).mean(), log_prob

        (pi_loss, log_prob), grads = jax.value_and_grad(actor_loss, has_aux=True)(state.actor.params)
        actor = state.actor.apply_gradients(grads, self.actor_lr)

        target_entropy = -self.target_entropy_scale * self.action_dim
        entropy_gap = jax.lax.stop_gradient(log_prob + target_entropy).mean()
        alpha_loss, grads = jax.value_and_grad(lambda log_alpha: -log_alpha * entropy_gap)(state.log_alpha.params)
        log_alpha = state.log_alpha.apply_gradients(grads, self.alpha_lr)

        new_state = state.replace(  # `replace` keeps the fields of subclasses' states (CQL's multiplier)
            actor=actor,
            critic=critic,
            target_critic_params=losses.soft_update(state.target_critic_params, critic.params, self.tau),
            log_alpha=log_alpha,
            step=state.step + 1,
        )
        metrics = {
            "critic_loss": q_loss,
            "actor_loss": pi_loss,
            "alpha_loss": alpha_loss,
            "alpha": alpha,
            "q_mean": qs.mean(),
            "entropy": -log_prob.mean(),
            **reg_metrics,
        }
        return self.after_update(new_state, reg_metrics), metrics

    def after_update(self, state, regularizer_metrics):
        """Hook for state that the regulariser itself trains (CQL's Lagrange multiplier)."""
        return state

    def act(self, state: SACState, obs, key, deterministic: bool = False):
        mean, log_std = self.actor_net.apply(state.actor.params, obs)
        if deterministic:
            return jnp.tanh(mean)
        return sample_tanh_gaussian(key, mean, log_std)[0]
