"""What every agent with a Q-ensemble shares: its fields, its networks and the TD fit of the critics."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.agents.base import Agent, fraction, positive, static
from jaxrl.agents.networks import CriticEnsemble
from jaxrl.agents.optim import Trainable


class CriticAgent(Agent):
    hidden_dims: tuple[int, ...] = static((256, 256), help="hidden layer widths of every network")
    num_critics: int = static(2, help="critics in the Q ensemble")
    actor_lr: float = positive(3e-4, help="the policy's Adam learning rate")
    critic_lr: float = positive(3e-4, help="the critics' Adam learning rate")
    gamma: float = fraction(0.99, help="discount")
    tau: float = fraction(0.005, help="Polyak rate of the target critics")
    critic_layer_norm: bool = static(False, help="LayerNorm after every hidden layer of the critics (ReBRAC)")
    critic_bias_init: float = static(0.0, help="initial bias of the critics (SAC-N/EDAC/RIQL use 0.1)")
    critic_output_init: float = static(
        0.0, help="the critics' output weights and bias from U(-x, x) (SAC-N/EDAC/RO2O: 3e-3); 0: the default init"
    )

    @property
    def critic_net(self):
        return CriticEnsemble(self.hidden_dims, self.num_critics, self.critic_layer_norm, self.critic_bias_init,
                              self.critic_output_init)  # fmt: skip

    def init_critic(self, key) -> Trainable:
        return Trainable.create(self.critic_net.init(key, jnp.zeros((1, self.obs_dim)), jnp.zeros((1, self.action_dim))))

    def fit_critic(self, critic: Trainable, batch, target, elementwise_loss=jnp.square, regularizer=None):
        """One gradient step of every critic towards `target`; the loss sums over critics, averages over
        the batch. `regularizer(params) -> (penalty, metrics)` adds a term such as CQL's or EDAC's."""

        def loss_fn(params):
            qs = self.critic_net.apply(params, batch.observations, batch.actions)
            loss = elementwise_loss(qs - target).mean(axis=1).sum()
            penalty, metrics = regularizer(params) if regularizer is not None else (0.0, {})
            return loss + penalty, (loss, qs, metrics)

        (_, (loss, qs, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(critic.params)
        return critic.apply_gradients(grads, self.critic_lr), loss, qs, metrics
