"""Soft Actor-Critic with automatic entropy tuning (Haarnoja et al. 2018).

Online, it is plain SAC. The offline ensemble methods (SAC-N, EDAC, CQL, RO2O) are SAC with other
defaults and regularisers: they override `critic_regularizer` / `actor_regularizer` and nothing else of
the update. WSRL's online SAC is this one with a REDQ target subset and several critic steps per update.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.agents import losses
from jaxrl.agents.base import ConfigError, hyperparameter, positive, static
from jaxrl.agents.critic import CriticAgent
from jaxrl.agents.networks import TanhGaussianActor, sample_tanh_gaussian
from jaxrl.agents.optim import Trainable


@struct.dataclass
class SACState:
    actor: Trainable
    critic: Trainable
    target_critic_params: Any
    log_alpha: Trainable
    step: jax.Array


class SAC(CriticAgent):
    alpha_lr: float = positive(3e-4, help="the entropy temperature's Adam learning rate")
    init_alpha: float = positive(1.0, help="initial entropy temperature")
    target_entropy_scale: float = hyperparameter(1.0, help="target entropy = -scale * action_dim")
    backup_entropy: bool = static(True, help="subtract alpha log pi(a'|s') in the critic target")
    target_subset: int | None = static(
        None, help="REDQ: the target is the minimum over this many critics drawn at random (None: all)"
    )
    critic_updates: int = static(
        1, help="critic steps per update (UTD), each on its own batch, before one actor step on all of them"
    )

    name = "sac"
    description = "Soft Actor-Critic (online)"
    default_regime = "online"

    def rows_per_update(self, batch_size: int) -> int:
        return batch_size * self.critic_updates

    def validate(self) -> "SAC":
        if self.target_subset is not None and not 0 < self.target_subset <= self.num_critics:
            raise ConfigError(
                f"{self.name}.target_subset must be in [1, num_critics={self.num_critics}], got {self.target_subset}"
            )
        return super().validate()

    def critic_regularizer(self, state, batch, key):
        """Extra critic loss as `params -> (penalty, metrics)`, or None (plain SAC)."""
        return None

    def td_weights(self, state, batch):
        """Per-row weights [B] of the squared TD errors (H2O's importance weights), or None: all 1."""
        return None

    def actor_regularizer(self, state, batch, key):
        """Extra actor loss as `actor params -> (penalty, metrics)`, or None (plain SAC)."""
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
        """`critic_updates` critic steps, each on its own minibatch of batch_size rows of `batch` (which has
        `rows_per_update` rows: WSRL's 1024 -> 4 x 256), then one actor and temperature step on all of it."""
        k_next, k_pi, k_reg = jax.random.split(key, 3)
        if self.critic_updates == 1:
            state, critic_metrics = self.critic_step(state, batch, k_next, k_reg)
        else:
            n = self.critic_updates
            minibatches = jax.tree.map(lambda x: x.reshape(n, -1, *x.shape[1:]), batch)
            keys = (jax.random.split(k_next, n), jax.random.split(k_reg, n))
            state, critic_metrics = jax.lax.scan(lambda s, xs: self.critic_step(s, xs[0], *xs[1]), state, (minibatches, keys))
            critic_metrics = jax.tree.map(jnp.mean, critic_metrics)
        state, actor_metrics = self.actor_step(state, batch, k_pi)
        return state.replace(step=state.step + 1), {**critic_metrics, **actor_metrics}

    def target_value(self, q, key):
        """The [K, B] target critics' values at (s', a') combined into one: their minimum, or with
        `target_subset` the minimum over that many members drawn at random (REDQ)."""
        if self.target_subset:
            return losses.random_subset_min(q, key, self.target_subset)
        return q.min(axis=0)

    def next_value(self, state, next_obs, key, alpha):
        """The value of s' the TD target backs up: the target critics at a' ~ pi(s'), combined by
        `target_value`, minus alpha log pi(a'|s') with `backup_entropy`."""
        next_action, next_log_prob = self.sample_action(state.actor.params, next_obs, key)
        next_qs = self.critic_net.apply(state.target_critic_params, next_obs, next_action)
        next_q = self.target_value(next_qs, jax.random.fold_in(key, 1))  # fold_in: plain SAC keeps its key stream
        return next_q - alpha * next_log_prob if self.backup_entropy else next_q

    def critic_step(self, state, batch, k_next, k_reg):
        """One step of the critics (and of what their regulariser trains) and of their targets."""
        alpha = jnp.exp(state.log_alpha.params)
        next_q = self.next_value(state, batch.next_observations, k_next, alpha)
        target = losses.td_target(batch.rewards, batch.terminals, next_q, self.gamma)
        regularizer = self.critic_regularizer(state, batch, k_reg)
        weights = self.td_weights(state, batch)
        loss = jnp.square if weights is None else (lambda error: weights * jnp.square(error))
        critic, q_loss, qs, reg_metrics = self.fit_critic(state.critic, batch, target, loss, regularizer)
        state = state.replace(  # `replace` keeps the fields of subclasses' states (CQL's multiplier)
            critic=critic, target_critic_params=losses.soft_update(state.target_critic_params, critic.params, self.tau)
        )
        return self.after_update(state, reg_metrics), {"critic_loss": q_loss, "q_mean": qs.mean(), **reg_metrics}

    def actor_step(self, state, batch, k_pi):
        """One step of the actor against the minimum of all critics, then of the temperature."""
        alpha = jnp.exp(state.log_alpha.params)
        regularizer = self.actor_regularizer(state, batch, jax.random.fold_in(k_pi, 1))

        def actor_loss(params):
            action, log_prob = self.sample_action(params, batch.observations, k_pi)
            q = self.critic_net.apply(state.critic.params, batch.observations, action).min(axis=0)
            penalty, metrics = regularizer(params) if regularizer is not None else (0.0, {})
            return (alpha * log_prob - q).mean() + penalty, (log_prob, metrics)

        (pi_loss, (log_prob, reg_metrics)), grads = jax.value_and_grad(actor_loss, has_aux=True)(state.actor.params)
        actor = state.actor.apply_gradients(grads, self.actor_lr)

        target_entropy = -self.target_entropy_scale * self.action_dim
        entropy_gap = jax.lax.stop_gradient(log_prob + target_entropy).mean()
        alpha_loss, grads = jax.value_and_grad(lambda log_alpha: -log_alpha * entropy_gap)(state.log_alpha.params)
        log_alpha = state.log_alpha.apply_gradients(grads, self.alpha_lr)
        metrics = {"actor_loss": pi_loss, "alpha_loss": alpha_loss, "alpha": alpha, "entropy": -log_prob.mean(), **reg_metrics}
        return state.replace(actor=actor, log_alpha=log_alpha), metrics

    def after_update(self, state, regularizer_metrics):
        """Hook for state that the regulariser itself trains (CQL's Lagrange multiplier)."""
        return state

    def act(self, state: SACState, obs, key, deterministic: bool = False):
        mean, log_std = self.actor_net.apply(state.actor.params, obs)
        if deterministic:
            return jnp.tanh(mean)
        return sample_tanh_gaussian(key, mean, log_std)[0]


def as_sac(agent: SAC, **changes) -> SAC:
    """Plain SAC over the networks and state of `agent` (a SAC variant), with `changes`: an offline method's
    online phase when it fine-tunes without its regulariser (CQL -> SAC, WSRL)."""
    shared = {f.name: getattr(agent, f.name) for f in dataclasses.fields(SAC)}
    return SAC(**shared).replace(**changes)
