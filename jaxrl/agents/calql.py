"""Cal-QL (Nakamoto et al., arXiv 2303.05479): CQL whose pushed-down Q values of policy actions (at the
current and the next state's samples) are floored at the reference value of their state, the discounted
Monte Carlo return-to-go of the data's trajectory, so CQL's conservatism cannot drive Q below what the
behaviour policy is known to earn. The uniform random actions are not floored, as in the reference
(`calql_bound_random_actions=False`). Online, the buffer's returns are written back as episodes end."""

from __future__ import annotations

from jaxrl.agents import losses
from jaxrl.agents.base import static
from jaxrl.agents.cql import CQL


class CalQL(CQL):
    # The reference runs Cal-QL with CQL's max target backup on (cql_max_target_backup=True).
    max_target_backup: bool = static(True, help="back up the best of num_sampled_actions policy actions at s'")
    name = "calql"
    description = "Calibrated Q-learning: CQL floored at Monte Carlo returns (offline-to-online)"
    uses_returns_to_go = True

    def bound(self, q_policy, batch):
        return losses.calibrated(q_policy, batch.mc_returns)
