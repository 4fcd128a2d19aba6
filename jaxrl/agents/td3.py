"""TD3 (Fujimoto et al. 2018, arXiv 1802.09477): a deterministic actor, clipped double-Q targets with
target policy smoothing, and delayed actor and target updates.

Online it is plain TD3. The offline variants (TD3+BC, ReBRAC in jaxrl.agents.td3bc) are TD3 with a
behaviour-cloning actor objective and, for ReBRAC, a penalty on the critic target: they override
`actor_objective` and `target_penalty` and nothing else of the update.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.agents import losses
from jaxrl.agents.base import fraction, positive, static
from jaxrl.agents.critic import CriticAgent
from jaxrl.agents.networks import DeterministicActor
from jaxrl.agents.optim import Trainable


@struct.dataclass
class TD3State:
    actor: Trainable
    target_actor_params: Any
    critic: Trainable
    target_critic_params: Any
    step: jax.Array


class TD3(CriticAgent):
    policy_noise: float = fraction(0.2, help="std of the target policy smoothing noise")
    noise_clip: float = positive(0.5, help="clip of the target policy smoothing noise")
    policy_freq: int = static(2, help="critic updates per actor update")
    exploration_noise: float = fraction(0.1, help="std of the Gaussian noise added to actions while collecting")

    name = "td3"
    description = "TD3: twin delayed deep deterministic policy gradient (online)"
    default_regime = "online"

    @property
    def actor_net(self):
        return DeterministicActor(self.hidden_dims, self.action_dim)

    def actor_q(self, qs):
        """The critic value the actor climbs: TD3 uses the first critic."""
        return qs[0]

    def actor_objective(self, action, q, batch):
        """(loss to minimise, metrics) of the actor given its actions and their `actor_q` values."""
        return -q.mean(), {}

    def target_penalty(self, next_action, batch):
        """Subtracted from the target's next-state value (None: nothing)."""
        return None

    def init(self, key) -> TD3State:
        k_actor, k_critic = jax.random.split(key)
        actor = Trainable.create(self.actor_net.init(k_actor, jnp.zeros((1, self.obs_dim))))
        critic = self.init_critic(k_critic)
        return TD3State(actor, actor.params, critic, critic.params, jnp.zeros((), jnp.int32))

    def update(self, state: TD3State, batch, key):
        return self.update_at(state, batch, key, state.step)

    def update_at(self, state: TD3State, batch, key, step):
        """`update` with the update index `step` (equal to state.step) given separately. The trainer passes
        its scan counter, which is unbatched under the member vmap, so that the delayed actor update is a
        real branch: `state.step` carries a member axis there and would turn `lax.cond` into a select."""
        noise = jnp.clip(self.policy_noise * jax.random.normal(key, batch.actions.shape), -self.noise_clip, self.noise_clip)
        next_action = jnp.clip(self.actor_net.apply(state.target_actor_params, batch.next_observations) + noise, -1.0, 1.0)
        next_q = self.critic_net.apply(state.target_critic_params, batch.next_observations, next_action).min(axis=0)
        penalty = self.target_penalty(next_action, batch)
        if penalty is not None:
            next_q = next_q - penalty
        target = losses.td_target(batch.rewards, batch.terminals, next_q, self.gamma)
        critic, q_loss, qs, _ = self.fit_critic(state.critic, batch, target)

        def actor_loss(params):
            action = self.actor_net.apply(params, batch.observations)
            q = self.actor_q(self.critic_net.apply(critic.params, batch.observations, action))
            return self.actor_objective(action, q, batch)

        # Delayed policy updates: every policy_freq-th step moves the actor and both targets.
        def actor_step(_):
            (pi_loss, metrics), grads = jax.value_and_grad(actor_loss, has_aux=True)(state.actor.params)
            return state.actor.apply_gradients(grads, self.actor_lr), pi_loss, metrics

        def hold(_):  # the loss without its gradient, so that the logged metrics still cover every step
            return state.actor, *actor_loss(state.actor.params)

        delayed = step % self.policy_freq == 0
        actor, pi_loss, actor_metrics = jax.lax.cond(delayed, actor_step, hold, None)
        # The Polyak averages are cheap elementwise work; outside the branch XLA compiles them as before,
        # bit for bit (inside it, they come out 1 ulp different).
        pick = lambda new, old: jax.tree.map(lambda n, o: jnp.where(delayed, n, o), new, old)  # noqa: E731
        new_state = TD3State(
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
        return new_state, {"critic_loss": q_loss, "actor_loss": pi_loss, **actor_metrics, "q_mean": qs.mean()}

    def act(self, state: TD3State, obs, key, deterministic: bool = True):
        action = self.actor_net.apply(state.actor.params, obs)
        if deterministic:
            return action
        return jnp.clip(action + self.exploration_noise * jax.random.normal(key, action.shape), -1.0, 1.0)
