"""H2O (Niu et al., NeurIPS 2022, arXiv 2206.13464): SAC on batches of real data and simulator
transitions that trusts the simulator only as far as its dynamics agree with the real ones.

- Two classifiers, D_sa(s,a) and D_sas(s,a,s'), learn real vs simulated rows in every update (inputs
  noised); by Bayes they give the dynamics ratio P_real/P_sim(s'|s,a).
- Simulated TD errors are weighted by that ratio, clipped to [1e-5, 1].
- A CQL-like penalty pushes Q down on simulated rows where the gap u(s,a) (an estimate of KL(P_sim ||
  P_real) from next states sampled around s') is large, and up on the real rows.

Batches come from the hybrid regime's mix: its first `real_share` of rows are the dataset's (the trainer
sets `real_share` from the run's offline_fraction). Differences from the reference (`t6-thu/H2O`,
SimpleSAC/sim2real_sac.py): the classifiers train on the update's own real and simulated rows (the
reference draws separate batches of 256 each), and the next-state noise of u uses the std of the batch's
real observations (the reference: of its whole buffer).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl import losses
from jaxrl.agents.base import ConfigError, hyperparameter, positive, static
from jaxrl.agents.sac import SAC, SACState
from jaxrl.networks import Discriminator
from jaxrl.optim import Trainable


@struct.dataclass
class H2OState(SACState):
    discriminators: Trainable  # {"sa": D_sa params, "sas": D_sas params}


def _nonnegative(default: float, help: str = ""):
    return hyperparameter(default, low=0.0, low_open=False, help=help)


class H2O(SAC):
    backup_entropy: bool = static(False, help="subtract alpha log pi(a'|s') in the critic target")
    real_share: float = static(0.5, help="share of each batch that is real data, its first rows (set from offline_fraction)")
    discriminator_dims: tuple[int, ...] = static((256, 256), help="hidden layer widths of both classifiers")
    discriminator_lr: float = positive(3e-4, help="learning rate of both classifiers")
    discriminator_noise: float = _nonnegative(0.1, help="std of the Gaussian noise on the classifiers' inputs")
    penalty_weight: float = _nonnegative(0.01, help="beta: weight of the dynamics-gap penalty")
    next_state_samples: int = static(10, help="next states sampled around s' to estimate u(s,a)")
    importance_weighting: bool = static(True, help="weight simulated TD errors by the dynamics ratio")
    gap_penalty: bool = static(True, help="the u-weighted penalty on simulated Q values (off with the weights: naive mix)")

    name = "h2o"
    description = "Dynamics-aware hybrid offline-and-online RL: real data plus an imperfect simulator"
    default_regime = "hybrid"
    hybrid_only = "it learns from real data and simulator transitions together"

    def validate(self) -> "H2O":
        if not 0.0 < self.real_share < 1.0:
            raise ConfigError(
                f"h2o needs real and simulated rows in every batch: offline_fraction must be in (0, 1), got {self.real_share}"
            )
        return super().validate()

    def with_real_share(self, share: float) -> "H2O":
        return self.replace(real_share=float(share))

    def real_rows(self, batch) -> int:
        """How many leading rows of `batch` are real: as the mix rounds its share (in float32)."""
        n = batch.rewards.shape[0]
        return int(np.round(np.float32(self.real_share) * np.float32(n)))

    @property
    def discriminator_net(self):
        return Discriminator(self.discriminator_dims)

    def init(self, key) -> H2OState:
        k_sac, k_sa, k_sas = jax.random.split(key, 3)
        obs, action = jnp.zeros((1, self.obs_dim)), jnp.zeros((1, self.action_dim))
        params = {
            "sa": self.discriminator_net.init(k_sa, obs, action),
            "sas": self.discriminator_net.init(k_sas, obs, action, obs),
        }
        return H2OState(**vars(super().init(k_sac)), discriminators=Trainable.create(params))

    def log_ratio(self, params, obs, action, next_obs):
        """log P_real/P_sim(s'|s,a): D_sas's logit gap (D_sa's cancels: `losses.dynamics_log_ratio`)."""
        return losses.dynamics_log_ratio(self.discriminator_net.apply(params["sas"], obs, action, next_obs))

    def discriminator_step(self, state: H2OState, batch, key):
        """One step of both classifiers, real rows as class 0 and simulated ones as class 1, on noised
        inputs. D_sas is read through D_sa + D_sas, so its loss trains both (as the reference)."""
        r = self.real_rows(batch)
        noisy = [x + self.discriminator_noise * jax.random.normal(k, x.shape) for x, k in
                 zip((batch.observations, batch.actions, batch.next_observations), jax.random.split(key, 3), strict=True)]  # fmt: skip

        def loss_fn(params):
            sa = self.discriminator_net.apply(params["sa"], *noisy[:2])
            sas = self.discriminator_net.apply(params["sas"], *noisy) + sa
            sa_loss, sas_loss = losses.discriminator_loss(sa[:r], sa[r:]), losses.discriminator_loss(sas[:r], sas[r:])
            accuracy = jnp.concatenate([sas[:r, 0] > sas[:r, 1], sas[r:, 1] > sas[r:, 0]]).mean()
            return sa_loss + sas_loss, {"dsa_loss": sa_loss, "dsas_loss": sas_loss, "dsas_accuracy": accuracy}

        grads, metrics = jax.grad(loss_fn, has_aux=True)(state.discriminators.params)
        return state.replace(discriminators=state.discriminators.apply_gradients(grads, self.discriminator_lr)), metrics

    def update(self, state: H2OState, batch, key):
        k_disc, k_sac = jax.random.split(key)
        state, disc_metrics = self.discriminator_step(state, batch, k_disc)
        state, metrics = super().update(state, batch, k_sac)
        return state, {**metrics, **disc_metrics}

    def td_weights(self, state: H2OState, batch):
        """The mean squared TD error of the real rows plus the ratio-weighted mean of the simulated ones,
        as per-row weights of the batch mean."""
        r, n = self.real_rows(batch), batch.rewards.shape[0]
        sim = jnp.ones(n - r)
        if self.importance_weighting:
            log_ratio = self.log_ratio(state.discriminators.params, batch.observations[r:], batch.actions[r:],
                                       batch.next_observations[r:])  # fmt: skip
            sim = losses.importance_weights(log_ratio)
        return jax.lax.stop_gradient(jnp.concatenate([jnp.full(r, n / r), sim * n / (n - r)]))

    def critic_regularizer(self, state: H2OState, batch, key):
        if not self.gap_penalty:
            return None
        r, m = self.real_rows(batch), self.next_state_samples
        obs, action, next_obs = batch.observations[r:], batch.actions[r:], batch.next_observations[r:]
        std = batch.observations[:r].std(axis=0)
        sampled = next_obs + std * jax.random.normal(key, (m, *next_obs.shape))
        log_ratios = jax.vmap(lambda s: self.log_ratio(state.discriminators.params, obs, action, s))(sampled)
        # Floored at 1e-30, not the reference's 1e-45: that is a float32 subnormal, which devices may flush
        # to 0, and a batch of zeros would make omega = u / sum u undefined.
        u = jax.lax.stop_gradient(losses.dynamics_gap(log_ratios.T, low=1e-30))

        def penalty(params):
            q = self.critic_net.apply(params, batch.observations, batch.actions)  # [K, B]
            gap = losses.gap_penalty(q[:, r:], u, q[:, :r])
            return self.penalty_weight * gap.sum(), {"gap_penalty": gap.mean(), "u": u.mean()}

        return penalty
