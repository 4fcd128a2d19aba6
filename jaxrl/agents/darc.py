"""DARC (Eysenbach et al., ICLR 2021, arXiv 2006.13916): SAC on simulator transitions only, each reward
corrected by delta_r = log P_real/P_sim(s'|s,a) from the real-vs-simulated classifiers, so that
transitions the real dynamics would not produce stop paying off. The real data trains the classifiers
only. Input noise 1.0 on the classifiers, as the paper's default; no warm-up without the correction.
"""

from __future__ import annotations

import jax

from jaxrl.agents.sim_to_real import SimToReal, nonnegative


class DARC(SimToReal):
    discriminator_noise: float = nonnegative(1.0, help="std of the Gaussian noise on the classifiers' inputs")
    reward_correction: float = nonnegative(1.0, help="weight of delta_r in the simulated rewards")

    name = "darc"
    description = "Domain adaptation with rewards from classifiers: SAC in the simulator, rewards corrected"

    def training_rows(self, state, batch):
        r = self.real_rows(batch)
        sim = jax.tree.map(lambda x: x[r:], batch)
        delta_r = jax.lax.stop_gradient(
            self.log_ratio(state.discriminators.params, sim.observations, sim.actions, sim.next_observations)
        )
        return sim.replace(rewards=sim.rewards + self.reward_correction * delta_r)
