"""WSRL (Zhou et al., arXiv 2412.07762) as a recipe: pretrain Cal-QL with a 10-critic LayerNorm ensemble
whose target is the minimum over a random pair (REDQ), then fine-tune with plain SAC, UTD 4, on a fresh
buffer after a warm-up in which the frozen pretrained policy collects (the config's `buffer: discard`
and `learning_starts: 5000`, see experiments/presets/wsrl-locomotion.yaml). No loss of its own."""

from __future__ import annotations

from jaxrl.agents.base import filled, static
from jaxrl.agents.calql import CalQL
from jaxrl.agents.sac import SAC, as_sac


class WSRL(CalQL):
    hidden_dims: tuple[int, ...] = static((256, 256), help="hidden layer widths of actor and critics (locomotion)")
    num_critics: int = static(10, help="critics in the Q ensemble")
    critic_layer_norm: bool = static(True, help="LayerNorm after every hidden layer of the critics")
    target_subset: int | None = static(2, help="REDQ: the target is the minimum over this many critics drawn at random")
    online_critic_updates: int = static(4, help="online SAC's critic steps per env step (UTD), each on its own batch")

    name = "wsrl"
    description = "Warm-start RL: Cal-QL pretraining, then SAC at UTD 4 without offline data"

    def for_online(self) -> SAC:
        """SAC over the same networks and state, with WSRL's online settings (`sac_config.py`): actor and
        temperature lr 1e-4, no entropy backup, `online_critic_updates` critic steps per update."""
        return as_sac(
            self,
            critic_updates=self.online_critic_updates,
            backup_entropy=False,
            actor_lr=filled(self.actor_lr, 1e-4),
            alpha_lr=filled(self.alpha_lr, 1e-4),
        )
