"""Behaviour cloning: the regression actor of IQL with unit weights."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.agents.base import Agent, positive, static
from jaxrl.agents.optim import Trainable
from jaxrl.agents.regression import make_actor, regression_act, weighted_regression_loss


@struct.dataclass
class BCState:
    actor: Trainable
    step: jax.Array


class BC(Agent):
    hidden_dims: tuple[int, ...] = static((256, 256), help="hidden layer widths")
    deterministic_actor: bool = static(False, help="MSE actor instead of Gaussian log-likelihood")
    actor_lr: float = positive(3e-4, help="the policy's Adam learning rate")

    name = "bc"
    description = "Behaviour cloning (offline)"
    # State normalisation (std + 1e-3) as CORL's BC (any_percent_bc.py:325), whose D4RL scores we compare with.
    normalizes_observations = True

    @property
    def actor_net(self):
        return make_actor(self.hidden_dims, self.action_dim, self.deterministic_actor)

    def init(self, key) -> BCState:
        params = self.actor_net.init(key, jnp.zeros((1, self.obs_dim)))
        return BCState(Trainable.create(params), jnp.zeros((), jnp.int32))

    def update(self, state: BCState, batch, key):
        del key
        ones = jnp.ones_like(batch.rewards)
        loss, grads = jax.value_and_grad(weighted_regression_loss, argnums=1)(
            self.actor_net, state.actor.params, batch.observations, batch.actions, ones, self.deterministic_actor
        )
        return BCState(state.actor.apply_gradients(grads, self.actor_lr), state.step + 1), {"actor_loss": loss}

    def act(self, state: BCState, obs, key, deterministic: bool = True):
        return regression_act(self.actor_net, state.actor.params, obs, key, self.deterministic_actor, deterministic)
