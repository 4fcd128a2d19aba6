"""Robust IQL (Yang et al., ICLR 2024, arXiv 2310.12955): IQL that tolerates corrupted data.

IQL with these swaps, and nothing else:
- the Q estimate is the alpha-quantile over K target critics instead of the minimum of two, which
  discounts critics that a corrupted action or next state has pushed high;
- the critic fits a Huber loss (heavy-tailed corrupted rewards and dynamics) to targets clipped
  to [-100, 1000];
- the actor is deterministic, weighted regression onto the dataset actions;
- observations are standardised with the (corrupted) dataset's statistics, which the evaluation
  environment shares (`normalizes_observations`).
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxrl.agents import losses
from jaxrl.agents.base import fraction, positive, static
from jaxrl.agents.iql import IQL


class RIQL(IQL):
    num_critics: int = static(5, help="critics in the Q ensemble (K)")
    critic_bias_init: float = static(0.1, help="initial bias of the critics")
    deterministic_actor: bool = static(True, help="MSE actor instead of Gaussian log-likelihood")
    quantile: float = fraction(0.25, help="alpha: the Q estimate is this quantile over the K target critics")
    huber_sigma: float = positive(1.0, help="Huber sigma: quadratic below 1/sigma^2 (0.1 ~ MSE, 3 ~ L1)")
    target_min: float = static(-100.0, help="lower clip of the critic target")
    target_max: float = static(1000.0, help="upper clip of the critic target")

    name = "riql"
    description = "Robust IQL: quantile Q ensemble, Huber critic loss (offline, corrupted data)"
    normalizes_observations = True

    def q_estimate(self, qs):
        return jnp.quantile(qs, self.quantile, axis=0, method="linear")

    def critic_target(self, batch, next_v):
        return jnp.clip(super().critic_target(batch, next_v), self.target_min, self.target_max)

    def critic_loss(self, td_error):
        return losses.huber_loss(td_error, self.huber_sigma)
