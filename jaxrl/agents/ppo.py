"""Proximal Policy Optimisation (Schulman et al. 2017, arXiv 1707.06347), as brax and PureJaxRL run it.

On-policy: the trainer's rollout phase steps many envs for `rollout_length` steps with `explore`,
then calls `update_rollout` once, which computes GAE with the current value net and makes
`epochs` passes of `num_minibatches` clipped-surrogate steps over the rollout. Observations are
standardised with running statistics that are part of the agent's state (updated from every rollout
before learning from it, as brax does), so a saved agent acts on raw observations. The policy is a
tanh-squashed Gaussian (brax's); rollouts keep the pre-squash sample so log-probabilities are exact.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl.agents import losses
from jaxrl.agents.base import Agent, ConfigError, fraction, hyperparameter, positive, static
from jaxrl.agents.networks import MLP, gaussian_log_prob
from jaxrl.agents.optim import Trainable
from jaxrl.data.dataset import RunningStats


@struct.dataclass
class PPOState:
    params: Trainable  # {"policy": ..., "value": ...}, one Adam over both, as brax does
    obs_stats: RunningStats
    step: jax.Array  # rollout updates made


def _tanh_log_det(u):
    """log |d tanh(u) / du| summed over the last axis, written stably."""
    return jnp.sum(2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u)), axis=-1)


class PPO(Agent):
    policy_dims: tuple[int, ...] = static((32, 32, 32, 32), help="hidden layer widths of the policy (brax's)")
    value_dims: tuple[int, ...] = static((256, 256), help="hidden layer widths of the value net")
    rollout_length: int = static(5, help="env steps per env between updates (brax's unroll_length)")
    epochs: int = static(4, help="passes over each rollout (brax's num_updates_per_batch)")
    num_minibatches: int = static(32, help="minibatches per pass")
    normalize_observations: bool = static(True, help="standardise observations with running statistics")
    learning_rate: float = positive(3e-4, help="Adam's learning rate")
    gamma: float = fraction(0.97, help="discount")
    gae_lambda: float = fraction(0.95, help="GAE lambda")
    clip_epsilon: float = positive(0.3, help="clip range of the probability ratio")
    entropy_coef: float = hyperparameter(1e-2, low=0.0, low_open=False, help="weight of the entropy bonus")
    value_coef: float = positive(0.25, help="weight of the squared value error (brax: 0.5 * 0.5)")
    reward_scale: float = positive(10.0, help="rewards are multiplied by it in the loss (brax's reward_scaling)")
    max_grad_norm: float = positive(1e6, help="clip of the global gradient norm (large: no clipping, brax's default)")

    name = "ppo"
    description = "Proximal Policy Optimisation (online, on-policy)"
    default_regime = "online"
    on_policy = True

    @property
    def policy_net(self):
        return MLP(self.policy_dims, 2 * self.action_dim, activation=nn.swish)

    @property
    def value_net(self):
        return MLP(self.value_dims, 1, activation=nn.swish)

    @property
    def transform(self):
        return optax.chain(optax.clip_by_global_norm(self.max_grad_norm), optax.scale_by_adam())

    def check_rollout(self, num_envs: int):
        """Raise ConfigError unless a rollout of `num_envs` envs splits into whole minibatches."""
        if (num_envs * self.rollout_length) % self.num_minibatches:
            raise ConfigError(
                f"ppo: num_envs * rollout_length ({num_envs} * {self.rollout_length}) must be a multiple of num_minibatches ({self.num_minibatches})"
            )

    def init(self, key) -> PPOState:
        k_policy, k_value = jax.random.split(key)
        obs = jnp.zeros((1, self.obs_dim))
        params = {"policy": self.policy_net.init(k_policy, obs), "value": self.value_net.init(k_value, obs)}
        return PPOState(Trainable.create(params, self.transform), RunningStats.create(self.obs_dim), jnp.zeros((), jnp.int32))

    def _normalize(self, state: PPOState, obs):
        return state.obs_stats(obs) if self.normalize_observations else obs

    def _distribution(self, policy_params, obs):
        mean, raw_scale = jnp.split(self.policy_net.apply(policy_params, obs), 2, axis=-1)
        return mean, jnp.log(jax.nn.softplus(raw_scale) + 1e-3)  # brax's scale, as a log std

    def _values(self, value_params, obs):
        return self.value_net.apply(value_params, obs)[..., 0]

    def explore(self, state: PPOState, obs, key):
        mean, log_std = self._distribution(state.params.params["policy"], self._normalize(state, obs))
        u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
        log_prob = gaussian_log_prob(u, mean, log_std) - _tanh_log_det(u)
        return jnp.tanh(u), {"raw_action": u, "log_prob": log_prob}

    def act(self, state: PPOState, obs, key, deterministic: bool = True):
        if deterministic:
            return jnp.tanh(self._distribution(state.params.params["policy"], self._normalize(state, obs))[0])
        return self.explore(state, obs, key)[0]

    def update_rollout(self, state: PPOState, rollout, extras, key):
        """Learn from a rollout: `rollout` a Dataset and `extras` what `explore` returned, leaves [T, N, ...]."""
        stats = state.obs_stats.update(rollout.observations) if self.normalize_observations else state.obs_stats
        state = state.replace(obs_stats=stats)
        obs, next_obs = self._normalize(state, rollout.observations), self._normalize(state, rollout.next_observations)
        value_params = state.params.params["value"]
        values, next_values = self._values(value_params, obs), self._values(value_params, next_obs)
        done = jnp.maximum(rollout.terminals, rollout.timeouts)
        rewards = rollout.rewards * self.reward_scale
        advantages = losses.gae_advantages(rewards, values, next_values, rollout.terminals, done, self.gamma, self.gae_lambda)
        samples = {
            "obs": obs,
            "raw_action": extras["raw_action"],
            "log_prob": extras["log_prob"],
            "advantage": advantages,
            "target": advantages + values,
        }
        samples = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), samples)
        n = samples["advantage"].shape[0]

        def loss_fn(params, batch, key):
            mean, log_std = self._distribution(params["policy"], batch["obs"])
            u = batch["raw_action"]
            log_prob = gaussian_log_prob(u, mean, log_std) - _tanh_log_det(u)
            advantage = batch["advantage"]
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
            surrogate = losses.clipped_surrogate(log_prob - batch["log_prob"], advantage, self.clip_epsilon).mean()
            value_loss = jnp.square(self._values(params["value"], batch["obs"]) - batch["target"]).mean()
            # The tanh-Gaussian's entropy has no closed form: the Gaussian's plus a one-sample log-det term.
            sample = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
            entropy = (jnp.sum(log_std + 0.5 * jnp.log(2 * jnp.pi * jnp.e), axis=-1) + _tanh_log_det(sample)).mean()
            loss = -surrogate + self.value_coef * value_loss - self.entropy_coef * entropy
            clip_fraction = jnp.mean(jnp.abs(jnp.exp(log_prob - batch["log_prob"]) - 1.0) > self.clip_epsilon)
            return loss, {"policy_loss": -surrogate, "value_loss": value_loss, "entropy": entropy, "clip_fraction": clip_fraction}

        def minibatch_step(trainable, inputs):
            batch, key = inputs
            grads, metrics = jax.grad(loss_fn, has_aux=True)(trainable.params, batch, key)
            return trainable.apply_gradients(grads, self.learning_rate, self.transform), metrics

        def epoch(trainable, key):
            perm_key, loss_key = jax.random.split(key)
            order = jax.random.permutation(perm_key, n)
            shuffled = jax.tree.map(
                lambda x: x[order].reshape(self.num_minibatches, n // self.num_minibatches, *x.shape[1:]), samples
            )
            return jax.lax.scan(minibatch_step, trainable, (shuffled, jax.random.split(loss_key, self.num_minibatches)))

        trainable, metrics = jax.lax.scan(epoch, state.params, jax.random.split(key, self.epochs))
        metrics = {k: v.mean() for k, v in metrics.items()} | {"value_mean": values.mean()}
        return state.replace(params=trainable, step=state.step + 1), metrics
