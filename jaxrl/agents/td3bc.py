"""TD3+BC (Fujimoto & Gu 2021, arXiv 2106.06860) and ReBRAC (Tarasov et al. 2023, arXiv 2305.09836).

Both are TD3 (deterministic actor, target policy smoothing, delayed actor updates) with a behaviour
cloning term. The actor minimises  actor_bc_coef * ||pi(s) - a||^2 - alpha * Q(s, pi(s)) / mean|Q|
(normaliser detached). ReBRAC also penalises the critic target with critic_bc_coef * ||a~' - a'_data||^2,
uses LayerNorm critics and sums (rather than averages) the squared error over action dimensions.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl import losses
from jaxrl.agents.base import ConfigError, fraction, hyperparameter, positive, static
from jaxrl.agents.critic import CriticAgent
from jaxrl.networks import DeterministicActor
from jaxrl.optim import Trainable


@struct.dataclass
class TD3BCState:
    actor: Trainable
    target_actor_params: Any
    critic: Trainable
    target_critic_params: Any
    step: jax.Array


class TD3BC(CriticAgent):
    policy_noise: float = fraction(0.2, help="std of the target policy smoothing noise")
    noise_clip: float = positive(0.5, help="clip of the target policy smoothing noise")
    policy_freq: int = static(2, help="critic updates per actor update")
    alpha: float = positive(2.5, help="weight of the normalised Q term in the actor loss")
    actor_bc_coef: float = hyperparameter(1.0, low=0.0, low_open=False, help="weight of ||pi(s) - a||^2")
    critic_bc: bool = static(False, help="penalise the critic target with critic_bc_coef * ||a~' - a'_data||^2")
    critic_bc_coef: float = hyperparameter(0.0, low=0.0, low_open=False, help="weight of ||a~' - a'_data||^2 in the target")
    bc_reduce: str = static("mean", help="'mean' or 'sum' of the squared error over action dimensions")

    name = "td3bc"

    @property
    def offline_only(self) -> str:
        if self.critic_bc:
            return "its critic penalty (critic_bc) needs the dataset's next actions, which online transitions do not record"
        return ""

    description = "TD3 with behaviour cloning (offline)"

    @property
    def actor_net(self):
        return DeterministicActor(self.hidden_dims, self.action_dim)

    def actor_q(self, qs):
        """TD3+BC scores the actor with the first critic."""
        return qs[0]

    def init(self, key) -> TD3BCState:
        k_actor, k_critic = jax.random.split(key)
        if self.bc_reduce not in ("mean", "sum"):
            raise ConfigError(f"{self.name}.bc_reduce must be 'mean' or 'sum', got {self.bc_reduce!r}")
        actor = Trainable.create(self.actor_net.init(k_actor, jnp.zeros((1, self.obs_dim))))
        critic = self.init_critic(k_critic)
        return TD3BCState(actor, actor.params, critic, critic.params, jnp.zeros((), jnp.int32))

    def update(self, state: TD3BCState, batch, key):
        return self.update_at(state, batch, key, state.step)

    def update_at(self, state: TD3BCState, batch, key, step):
        """`update` with the update index `step` (equal to state.step) given separately. The offline trainer
        passes its scan counter, which is unbatched under the member vmap, so that the delayed actor update
        is a real branch: `state.step` carries a member axis there and would turn `lax.cond` into a select."""
        noise = jnp.clip(self.policy_noise * jax.random.normal(key, batch.actions.shape), -self.noise_clip, self.noise_clip)
        next_action = jnp.clip(self.actor_net.apply(state.target_actor_params, batch.next_observations) + noise, -1.0, 1.0)
        next_q = self.critic_net.apply(state.target_critic_params, batch.next_observations, next_action).min(axis=0)
        if self.critic_bc:
            if batch.next_actions is None:
                raise ConfigError(f"{self.name} needs next_actions in its batches (datasets read by load_dataset have them)")
            next_q = next_q - self.critic_bc_coef * losses.bc_penalty(next_action, batch.next_actions, self.bc_reduce)
        target = losses.td_target(batch.rewards, batch.terminals, next_q, self.gamma)
        critic, q_loss, qs, _ = self.fit_critic(state.critic, batch, target)

        def actor_loss(params):
            action = self.actor_net.apply(params, batch.observations)
            q = self.actor_q(self.critic_net.apply(critic.params, batch.observations, action))
            lmbda = self.alpha / jax.lax.stop_gradient(jnp.abs(q).mean())
            bc = losses.bc_penalty(action, batch.actions, self.bc_reduce)
            return (self.actor_bc_coef * bc - lmbda * q).mean(), bc.mean()

        # Delayed policy updates: every policy_freq-th step moves the actor and both targets.
        def actor_step(_):
            (pi_loss, bc), grads = jax.value_and_grad(actor_loss, has_aux=True)(state.actor.params)
            return state.actor.apply_gradients(grads, self.actor_lr), pi_loss, bc

        def hold(_):  # the loss without its gradient, so that the logged metrics still cover every step
            return state.actor, *actor_loss(state.actor.params)

        delayed = step % self.policy_freq == 0
        actor, pi_loss, bc = jax.lax.cond(delayed, actor_step, hold, None)
        # The Polyak averages are cheap elementwise work; outside the branch XLA compiles them as before,
        # bit for bit (inside it, they come out 1 ulp different).
        pick = lambda new, old: jax.tree.map(lambda n, o: jnp.where(delayed, n, o), new, old)  # noqa: E731
        new_state = TD3BCState(
            actor=actor,
            target_actor_params=pick(
                losses.soft_update(state.target_actor_params, actor.params, self.tau), state.target_actor_params
            ),
            critic=critic,
            target_critic_params=pick(
                losses.soft_update(state.target_critic_params, critic.params, self.tau), state.target_critic_params
            ),
            step=state.step + 1,
        )
        return new_state, {"critic_loss": q_loss, "actor_loss": pi_loss, "bc_mse": bc, "q_mean": qs.mean()}

    def act(self, state: TD3BCState, obs, key, deterministic: bool = True):
        return self.actor_net.apply(state.actor.params, obs)


class ReBRAC(TD3BC):
    hidden_dims: tuple[int, ...] = static((256, 256, 256), help="hidden layer widths of every network")
    critic_layer_norm: bool = static(True, help="LayerNorm after every hidden layer of the critics")
    actor_lr: float = positive(1e-3)
    critic_lr: float = positive(1e-3)
    alpha: float = positive(1.0, help="weight of the normalised Q term in the actor loss")
    actor_bc_coef: float = hyperparameter(0.05, low=0.0, low_open=False, help="beta1: weight of ||pi(s) - a||^2")
    critic_bc: bool = static(True, help="penalise the critic target with critic_bc_coef * ||a~' - a'_data||^2")
    critic_bc_coef: float = hyperparameter(
        0.01, low=0.0, low_open=False, help="beta2: weight of ||a~' - a'_data||^2 in the target"
    )
    bc_reduce: str = static("sum", help="'mean' or 'sum' of the squared error over action dimensions")

    name = "rebrac"
    description = "ReBRAC: TD3+BC with LayerNorm critics and a critic BC penalty (offline)"

    def actor_q(self, qs):
        return qs.min(axis=0)
