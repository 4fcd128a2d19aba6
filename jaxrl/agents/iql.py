"""Implicit Q-Learning (Kostrikov et al. 2021, arXiv 2110.06169).

V is fitted by expectile regression to the target critics' estimate, Q by TD to r + gamma V(s'),
and the actor by advantage-weighted regression. `q_estimate`, `critic_target` and `critic_loss` are
the points that robust variants (RIQL) override.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.agents import losses
from jaxrl.agents.base import hyperparameter, positive, static
from jaxrl.agents.critic import CriticAgent
from jaxrl.agents.networks import ValueNet
from jaxrl.agents.optim import Trainable, cosine_decay
from jaxrl.agents.regression import make_actor, regression_act, weighted_regression_loss


@struct.dataclass
class IQLState:
    actor: Trainable
    critic: Trainable
    target_critic_params: Any
    value: Trainable
    step: jax.Array


class IQL(CriticAgent):
    deterministic_actor: bool = static(False, help="MSE actor instead of Gaussian log-likelihood")
    cosine_actor_lr: bool = static(True, help="decay the actor learning rate to 0 with a cosine")
    value_lr: float = positive(3e-4, help="the value network's Adam learning rate")
    expectile: float = hyperparameter(0.7, low=0.0, high=1.0, help="expectile of the value regression")
    beta: float = hyperparameter(3.0, low=0.0, low_open=False, help="inverse temperature of the advantage weights")
    max_weight: float = positive(100.0, help="clip of the advantage weights")

    name = "iql"
    description = "Implicit Q-Learning (offline)"
    # Locomotion defaults of the references: states standardised (CORL iql.py:93-96,553 and its configs'
    # `normalize: true`; the original does not) and rewards x 1000 / (max - min episode return) (the
    # original's train_offline.py:35-74 on every locomotion task; CORL on hopper, iql.py:246-250).
    normalizes_observations = True

    @property
    def actor_net(self):
        return make_actor(self.hidden_dims, self.action_dim, self.deterministic_actor)

    @property
    def value_net(self):
        return ValueNet(self.hidden_dims)

    def init(self, key) -> IQLState:
        k_actor, k_critic, k_value = jax.random.split(key, 3)
        obs = jnp.zeros((1, self.obs_dim))
        critic = self.init_critic(k_critic)
        return IQLState(
            actor=Trainable.create(self.actor_net.init(k_actor, obs)),
            critic=critic,
            target_critic_params=critic.params,
            value=Trainable.create(self.value_net.init(k_value, obs)),
            step=jnp.zeros((), jnp.int32),
        )

    def q_estimate(self, qs):
        """Combine the [K, B] target critic values into one estimate: the minimum (clipped double Q)."""
        return qs.min(axis=0)

    def critic_loss(self, td_error):
        return td_error**2

    def critic_target(self, batch, next_v):
        return losses.td_target(batch.rewards, batch.terminals, next_v, self.gamma)

    def update(self, state: IQLState, batch, key):
        del key  # IQL's update is deterministic given the batch
        target_q = self.q_estimate(self.critic_net.apply(state.target_critic_params, batch.observations, batch.actions))

        def value_loss(params):
            v = self.value_net.apply(params, batch.observations)
            return losses.expectile_loss(target_q - v, self.expectile).mean(), v

        (v_loss, v), grads = jax.value_and_grad(value_loss, has_aux=True)(state.value.params)
        value = state.value.apply_gradients(grads, self.value_lr)

        advantage = target_q - self.value_net.apply(value.params, batch.observations)
        weights = losses.advantage_weights(advantage, self.beta, self.max_weight)
        actor_loss, grads = jax.value_and_grad(weighted_regression_loss, argnums=1)(
            self.actor_net, state.actor.params, batch.observations, batch.actions, weights, self.deterministic_actor
        )
        actor_lr = cosine_decay(self.actor_lr, state.step, self.total_steps) if self.cosine_actor_lr else self.actor_lr
        actor = state.actor.apply_gradients(grads, actor_lr)

        next_v = self.value_net.apply(value.params, batch.next_observations)
        target = self.critic_target(batch, next_v)
        critic, q_loss, qs, _ = self.fit_critic(state.critic, batch, target, self.critic_loss)

        new_state = IQLState(
            actor=actor,
            critic=critic,
            target_critic_params=losses.soft_update(state.target_critic_params, critic.params, self.tau),
            value=value,
            step=state.step + 1,
        )
        metrics = {
            "critic_loss": q_loss,
            "value_loss": v_loss,
            "actor_loss": actor_loss,
            "q_mean": qs.mean(),
            "v_mean": v.mean(),
            "advantage_mean": advantage.mean(),
        }
        return new_state, metrics

    def for_online(self) -> "IQL":
        # The offline cosine schedule has brought the actor's learning rate to 0 by the end of the
        # offline phase; fine-tuning goes on at the constant rate, on the same update.
        return self.replace(cosine_actor_lr=False)

    def act(self, state: IQLState, obs, key, deterministic: bool = True):
        return regression_act(self.actor_net, state.actor.params, obs, key, self.deterministic_actor, deterministic)
