"""SAC-N and EDAC (An et al. 2021, arXiv 2110.01548): offline SAC with a large critic ensemble.

SAC-N is SAC whose target takes the minimum over N critics (N=10 here, 0.1 critic bias init).
EDAC adds eta times the mean pairwise cosine similarity of the critics' action-gradients, which
diversifies the ensemble so fewer critics suffice.
"""

from __future__ import annotations

import jax

from jaxrl import losses
from jaxrl.agents.base import hyperparameter, static
from jaxrl.agents.sac import SAC


class SACN(SAC):
    hidden_dims: tuple[int, ...] = static((256, 256, 256), help="hidden layer widths of actor and critics")
    num_critics: int = static(10, help="critics in the Q ensemble (the target uses their minimum)")
    critic_bias_init: float = static(0.1, help="initial bias of the critics")

    name = "sac-n"
    description = "SAC with an N-critic ensemble (offline)"


class EDAC(SACN):
    eta: float = hyperparameter(1.0, low=0.0, low_open=False, help="weight of the ensemble gradient-diversity term")

    name = "edac"
    description = "Ensemble-diversified actor-critic (offline)"

    def critic_regularizer(self, state, batch, key):
        def diversity(params):
            def q_sum(actions):  # summing over the batch gives per-sample action gradients
                return self.critic_net.apply(params, batch.observations, actions).sum(axis=1)

            grads = jax.jacrev(q_sum)(batch.actions)  # [K, B, A]
            similarity = losses.ensemble_gradient_similarity(grads)
            return self.eta * similarity, {"gradient_similarity": similarity}

        return diversity
