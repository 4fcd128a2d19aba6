"""SAC-N and EDAC (An et al. 2021, arXiv 2110.01548): offline SAC with a large critic ensemble.

SAC-N is SAC whose target takes the minimum over N critics (N=10 here, 0.1 critic bias init).
EDAC adds eta times the mean pairwise cosine similarity of the critics' action-gradients, which
diversifies the ensemble so fewer critics suffice.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.agents import losses
from jaxrl.agents.base import hyperparameter, static
from jaxrl.agents.sac import SAC


class SACN(SAC):
    hidden_dims: tuple[int, ...] = static((256, 256, 256), help="hidden layer widths of actor and critics")
    num_critics: int = static(10, help="critics in the Q ensemble (the target uses their minimum)")
    critic_bias_init: float = static(0.1, help="initial bias of the critics")
    # EDAC's init, which SAC-N's, EDAC's and RO2O's references use (CORL sac_n.py/edac.py VectorizedCritic,
    # RO2O ro2o_mujoco.py): hidden biases 0.1, the output layer from U(-3e-3, 3e-3), so Q starts near 0.
    critic_output_init: float = static(3e-3, help="the critics' output weights and bias from U(-x, x); 0: the default init")

    name = "sac-n"
    default_regime = "offline"
    # SAC-N's and EDAC's references train on raw states and rewards (CORL sac_n.py:117,521, edac.py:570;
    # snu-mllab/EDAC experiment_utils/prepare_data.py:12-49).
    normalizes_rewards = False
    description = "SAC with an N-critic ensemble (offline)"


class EDAC(SACN):
    eta: float = hyperparameter(1.0, low=0.0, low_open=False, help="weight of the ensemble gradient-diversity term")

    name = "edac"
    description = "Ensemble-diversified actor-critic (offline)"

    def critic_regularizer(self, state, batch, key):
        def diversity(params):
            grads = self.action_gradients(params, batch.observations, batch.actions)
            similarity = losses.ensemble_gradient_similarity(grads)
            return self.eta * similarity, {"gradient_similarity": similarity}

        return diversity

    def action_gradients(self, params, observations, actions):
        """grad_a Q_k(s, a) of every critic k at every sample: [K, B, A].

        Critic k is evaluated on its own copy of the actions, so one backward pass of the summed Q values
        gives them all (jax.jacrev would run K backward passes, each through all K critics).
        """
        single = self.critic_net.clone(num_critics=1)  # one critic, given its params with a leading axis of 1

        def q(critic_params, critic_actions):
            return single.apply(jax.tree.map(lambda x: x[None], critic_params), observations, critic_actions)[0]

        def q_sum(actions_k):  # sum over k and b of Q_k(s_b, actions_k[k, b])
            return jax.vmap(q)(params, actions_k).sum()

        return jax.grad(q_sum)(jnp.broadcast_to(actions, (self.num_critics, *actions.shape)))
