"""Advantage-Weighted Actor-Critic (Nair et al. 2020, arXiv 2006.09359).

Critics are fitted by TD to r + gamma min Q'(s', a'~pi); the actor by weighted regression onto
dataset actions with weights min(exp(A / lambda), 100), A = Q(s, a) - Q(s, a~pi(s)).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.agents import losses
from jaxrl.agents.base import positive
from jaxrl.agents.critic import CriticAgent
from jaxrl.agents.optim import Trainable
from jaxrl.agents.regression import make_actor, regression_act, weighted_regression_loss


@struct.dataclass
class AWACState:
    actor: Trainable
    critic: Trainable
    target_critic_params: Any
    step: jax.Array


class AWAC(CriticAgent):
    awac_lambda: float = positive(1.0, help="temperature of the advantage weights")
    max_weight: float = positive(100.0, help="clip of the advantage weights")

    name = "awac"
    description = "Advantage-Weighted Actor-Critic (offline)"
    # CORL's AWAC (awac.py:426): states standardised, rewards raw.
    normalizes_observations = True
    normalizes_rewards = False

    @property
    def actor_net(self):
        return make_actor(self.hidden_dims, self.action_dim, deterministic=False)

    def init(self, key) -> AWACState:
        k_actor, k_critic = jax.random.split(key)
        critic = self.init_critic(k_critic)
        actor = Trainable.create(self.actor_net.init(k_actor, jnp.zeros((1, self.obs_dim))))
        return AWACState(actor, critic, critic.params, jnp.zeros((), jnp.int32))

    def policy_action(self, state, obs, key):
        return regression_act(self.actor_net, state.actor.params, obs, key, False, deterministic=False)

    def update(self, state: AWACState, batch, key):
        k_next, k_pi = jax.random.split(key)
        next_action = self.policy_action(state, batch.next_observations, k_next)
        next_q = self.critic_net.apply(state.target_critic_params, batch.next_observations, next_action).min(axis=0)
        target = losses.td_target(batch.rewards, batch.terminals, next_q, self.gamma)
        critic, q_loss, qs, _ = self.fit_critic(state.critic, batch, target)

        q = lambda actions: self.critic_net.apply(critic.params, batch.observations, actions).min(axis=0)  # noqa: E731
        advantage = q(batch.actions) - q(self.policy_action(state, batch.observations, k_pi))
        weights = losses.advantage_weights(advantage, 1.0 / self.awac_lambda, self.max_weight)
        pi_loss, grads = jax.value_and_grad(weighted_regression_loss, argnums=1)(
            self.actor_net, state.actor.params, batch.observations, batch.actions, weights, False
        )
        new_state = AWACState(
            actor=state.actor.apply_gradients(grads, self.actor_lr),
            critic=critic,
            target_critic_params=losses.soft_update(state.target_critic_params, critic.params, self.tau),
            step=state.step + 1,
        )
        return new_state, {"critic_loss": q_loss, "actor_loss": pi_loss, "q_mean": qs.mean(), "advantage_mean": advantage.mean()}

    def act(self, state: AWACState, obs, key, deterministic: bool = True):
        return regression_act(self.actor_net, state.actor.params, obs, key, False, deterministic)
