"""What the sim-to-real agents (H2O, DARC) share: batches whose first rows are real data and the rest
simulator transitions, and two real-vs-simulated classifiers trained on them in every update.

D_sa(s,a) and D_sas(s,a,s') classify their (noised) inputs, real as class 0; p(.|s,a,s') is read as
softmax(D_sas + D_sa), as both references do, so D_sas learns what s' adds to (s,a), and by Bayes
log P_real/P_sim(s'|s,a) is D_sas's logit gap (`losses.dynamics_log_ratio`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl.agents import losses
from jaxrl.agents.base import ConfigError, hyperparameter, positive, static
from jaxrl.agents.networks import Discriminator
from jaxrl.agents.optim import Trainable
from jaxrl.agents.sac import SAC, SACState


@struct.dataclass
class ClassifierState(SACState):
    discriminators: Trainable  # {"sa": D_sa params, "sas": D_sas params}


def nonnegative(default: float, help: str = ""):
    return hyperparameter(default, low=0.0, low_open=False, help=help)


class SimToReal(SAC):
    real_share: float = static(0.5, help="share of each batch that is real data, its first rows (set from offline_fraction)")
    discriminator_dims: tuple[int, ...] = static((256, 256), help="hidden layer widths of both classifiers")
    discriminator_lr: float = positive(3e-4, help="learning rate of both classifiers")
    discriminator_noise: float = nonnegative(0.1, help="std of the Gaussian noise on the classifiers' inputs")

    default_regime = "hybrid"
    hybrid_only = "it learns from real data and simulator transitions together"

    def validate(self):
        if not 0.0 < self.real_share < 1.0:
            raise ConfigError(
                f"{self.name} needs real and simulated rows in every batch: offline_fraction must be in (0, 1), got {self.real_share}"
            )
        return super().validate()

    def with_real_share(self, share: float):
        return self.replace(real_share=float(share))

    def real_rows(self, batch) -> int:
        """How many leading rows of `batch` are real: as the mix rounds its share (in float32)."""
        n = batch.rewards.shape[0]
        return int(np.round(np.float32(self.real_share) * np.float32(n)))

    @property
    def discriminator_net(self):
        return Discriminator(self.discriminator_dims)

    def init(self, key) -> ClassifierState:
        k_sac, k_sa, k_sas = jax.random.split(key, 3)
        obs, action = jnp.zeros((1, self.obs_dim)), jnp.zeros((1, self.action_dim))
        params = {
            "sa": self.discriminator_net.init(k_sa, obs, action),
            "sas": self.discriminator_net.init(k_sas, obs, action, obs),
        }
        return ClassifierState(**vars(super().init(k_sac)), discriminators=Trainable.create(params))

    def log_ratio(self, params, obs, action, next_obs):
        """log P_real/P_sim(s'|s,a): D_sas's logit gap (D_sa's cancels: `losses.dynamics_log_ratio`)."""
        return losses.dynamics_log_ratio(self.discriminator_net.apply(params["sas"], obs, action, next_obs))

    def discriminator_step(self, state: ClassifierState, batch, key):
        """One step of both classifiers on noised inputs. D_sas is read through D_sa + D_sas, so its loss
        trains both (as the references)."""
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

    def update(self, state: ClassifierState, batch, key):
        """The classifiers' step, then SAC's update on the rows `training_rows` makes of the batch."""
        k_disc, k_sac = jax.random.split(key)
        state, disc_metrics = self.discriminator_step(state, batch, k_disc)
        state, metrics = super().update(state, self.training_rows(state, batch), k_sac)
        return state, {**metrics, **disc_metrics}

    def training_rows(self, state: ClassifierState, batch):
        """What the critics and the actor learn from (default: every row, real and simulated)."""
        return batch
