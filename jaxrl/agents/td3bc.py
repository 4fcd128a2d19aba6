"""TD3+BC (Fujimoto & Gu 2021, arXiv 2106.06860) and ReBRAC (Tarasov et al. 2023, arXiv 2305.09836).

Both are TD3 (jaxrl.agents.td3: deterministic actor, target policy smoothing, delayed actor updates)
with a behaviour cloning term. The actor minimises  actor_bc_coef * ||pi(s) - a||^2 - alpha * Q(s, pi(s)) / mean|Q|
(normaliser detached). ReBRAC also penalises the critic target with critic_bc_coef * ||a~' - a'_data||^2,
uses LayerNorm critics and sums (rather than averages) the squared error over action dimensions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.agents import losses
from jaxrl.agents.base import ConfigError, hyperparameter, positive, static
from jaxrl.agents.td3 import TD3


class TD3BC(TD3):
    alpha: float = positive(2.5, help="weight of the normalised Q term in the actor loss")
    actor_bc_coef: float = hyperparameter(1.0, low=0.0, low_open=False, help="weight of ||pi(s) - a||^2")
    critic_bc: bool = static(False, help="penalise the critic target with critic_bc_coef * ||a~' - a'_data||^2")
    critic_bc_coef: float = hyperparameter(0.0, low=0.0, low_open=False, help="weight of ||a~' - a'_data||^2 in the target")
    bc_reduce: str = static("mean", help="'mean' or 'sum' of the squared error over action dimensions")

    name = "td3bc"
    description = "TD3 with behaviour cloning (offline)"
    default_regime = "offline"
    # The paper's and CORL's: states standardised (sfujim/TD3_BC utils.py:52-56; CORL td3_bc.py:422), raw rewards.
    normalizes_observations = True
    normalizes_rewards = False

    @property
    def offline_only(self) -> str:
        if self.critic_bc:
            return "its critic penalty (critic_bc) needs the dataset's next actions, which online transitions do not record"
        return ""

    def init(self, key):
        if self.bc_reduce not in ("mean", "sum"):
            raise ConfigError(f"{self.name}.bc_reduce must be 'mean' or 'sum', got {self.bc_reduce!r}")
        return super().init(key)

    def target_penalty(self, next_action, batch):
        if not self.critic_bc:
            return None
        if batch.next_actions is None:
            raise ConfigError(f"{self.name} needs next_actions in its batches (datasets read by load_dataset have them)")
        return self.critic_bc_coef * losses.bc_penalty(next_action, batch.next_actions, self.bc_reduce)

    def actor_objective(self, action, q, batch):
        lmbda = self.alpha / jax.lax.stop_gradient(jnp.abs(q).mean())
        bc = losses.bc_penalty(action, batch.actions, self.bc_reduce)
        return (self.actor_bc_coef * bc - lmbda * q).mean(), {"bc_mse": bc.mean()}


class ReBRAC(TD3BC):
    hidden_dims: tuple[int, ...] = static((256, 256, 256), help="hidden layer widths of every network")
    critic_layer_norm: bool = static(True, help="LayerNorm after every hidden layer of the critics")
    actor_lr: float = positive(1e-3, help="the policy's Adam learning rate")
    critic_lr: float = positive(1e-3, help="the critics' Adam learning rate")
    alpha: float = positive(1.0, help="weight of the normalised Q term in the actor loss")
    actor_bc_coef: float = hyperparameter(0.05, low=0.0, low_open=False, help="beta1: weight of ||pi(s) - a||^2")
    critic_bc: bool = static(True, help="penalise the critic target with critic_bc_coef * ||a~' - a'_data||^2")
    critic_bc_coef: float = hyperparameter(
        0.01, low=0.0, low_open=False, help="beta2: weight of ||a~' - a'_data||^2 in the target"
    )
    bc_reduce: str = static("sum", help="'mean' or 'sum' of the squared error over action dimensions")

    name = "rebrac"
    description = "ReBRAC: TD3+BC with LayerNorm critics and a critic BC penalty (offline)"
    normalizes_observations = False  # CORL's ReBRAC (rebrac.py:61): raw states, raw rewards

    def actor_q(self, qs):
        return qs.min(axis=0)
