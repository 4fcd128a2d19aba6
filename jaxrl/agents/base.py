"""The agent protocol.

An agent is a frozen pytree dataclass: static structure (network sizes, ensemble size) lives in
fields marked static, and float hyperparameters are pytree leaves. Stacking agents along a leading
axis and `vmap`ping over them is therefore a hyperparameter sweep inside one compiled program.

Every agent provides three pure functions:
    init(key) -> state
    update(state, batch, key) -> (state, metrics)
    act(state, obs, key, deterministic) -> action in [-1, 1]
after `configure(spec, total_steps)` has filled in what depends on the environment and run length.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Any

import chex
import jax
import numpy as np
import tyro
from flax import struct

from jaxrl.data.dataset import sample_batch


class ConfigError(ValueError):
    """An invalid configuration or hyperparameter value, found before anything is compiled."""


def hyperparameter(default: float, *, low: float | None = None, high: float | None = None, low_open: bool = True, help: str = ""):
    """A float hyperparameter: a pytree leaf (vmappable), range-checked by `Agent.validate`."""
    return struct.field(
        pytree_node=True, default=default, metadata={"low": low, "high": high, "low_open": low_open, "help": help}
    )


def static(default: Any, *, help: str = ""):
    """Structure that changes the compiled program (sizes, counts, switches): not a pytree leaf."""
    return struct.field(pytree_node=False, default=default, metadata={"help": help})


class Agent(struct.PyTreeNode):
    # Filled in by `configure` from the environment and the run length, not set by users.
    obs_dim: Annotated[int, tyro.conf.Suppress] = static(0)
    action_dim: Annotated[int, tyro.conf.Suppress] = static(0)
    total_steps: Annotated[int, tyro.conf.Suppress] = static(1)

    name = "agent"
    description = ""
    normalizes_rewards = True  # whether TrainConfig.normalize_rewards applies to this agent
    normalizes_observations = False  # the default of TrainConfig.normalize_obs for this agent
    default_regime = "offline"  # the regime TrainConfig.regime defaults to for this agent
    offline_only = ""  # why the agent cannot learn from online transitions ("": it can)
    hybrid_only = ""  # why the agent needs real data and a simulator together, the hybrid regime ("": it does not)
    # On-policy agents (PPO) learn from their own rollouts through `update_rollout(state, rollout,
    # extras, key)`, in the online regime only; the others learn from batches through `update`.
    on_policy = False
    # Whether batches must carry `mc_returns`, the Monte Carlo returns-to-go (Cal-QL's reference values):
    # the dataset's are computed at load, an online buffer's are written back as episodes end.
    uses_returns_to_go = False

    def configure(self, spec, total_steps: int) -> "Agent":
        return self.replace(obs_dim=spec.obs_dim, action_dim=spec.action_dim, total_steps=int(total_steps))

    # Hooks with defaults that fit transition-based agents; sequence models (DT) override them.
    def adapt_to_dataset(self, dataset, metadata: dict) -> "Agent":
        """Host-side, before stacking: set what depends on the dataset (e.g. a target return)."""
        return self

    def training_data(self, dataset):
        """Host-side: the pytree that `sample` draws batches from (default: the transitions)."""
        return dataset

    def sample(self, data, key, batch_size: int):
        batch = sample_batch(data, key, batch_size)
        # At trace time, free at run time: data of another env (or a buffer of another layout) stops here,
        # naming the field, instead of broadcasting into the networks.
        chex.assert_shape([batch.observations, batch.next_observations], (batch_size, self.obs_dim))
        chex.assert_shape(batch.actions, (batch_size, self.action_dim))
        chex.assert_shape([batch.rewards, batch.terminals], (batch_size,))
        return batch

    def initial_carry(self, state, first_obs):
        """Memory of a policy that looks at more than the current observation (None: it does not)."""
        return None

    def act_with_carry(self, state, obs, key, carry, deterministic: bool = True):
        return self.act(state, obs, key, deterministic), carry

    def observe(self, carry, reward):
        """Update the policy's memory with the reward of the step just taken."""
        return carry

    def explore(self, state, obs, key):
        """The action taken while collecting, and what the agent keeps of it for learning (on-policy
        agents: e.g. its log-probability); default: a stochastic `act`, nothing kept."""
        return self.act(state, obs, key, False), {}

    def update_at(self, state, batch, key, step):
        """`update` given the update index `step` (= state.step) without the member axis that state.step
        has under vmap, so an agent can branch on it with a real `lax.cond` (TD3+BC's delayed actor)."""
        return self.update(state, batch, key)

    def rows_per_update(self, batch_size: int) -> int:
        """Rows of the batch one `update` takes (several critic steps per update take several batches)."""
        return batch_size

    def with_real_share(self, share: float) -> "Agent":
        """The agent for batches whose first `share` of rows are real data and the rest simulated (the
        hybrid regime's mix puts the dataset's rows first); default: it does not tell them apart."""
        return self

    def for_online(self) -> "Agent":
        """The agent an online phase that follows pretraining trains with (default: the same)."""
        return self

    def enter_online(self, state):
        """What a pretrained agent state changes as an online phase starts (default: nothing); called with
        the online phase's agent, `for_online()`."""
        return state

    def enter_offline(self, state, key, data):
        """What a trained agent state changes as an offline phase that continues it starts (a warm start,
        or the next phase of a sequence), given the phase's training view of the dataset (default: nothing)."""
        return state

    def with_settings(self, values: dict[str, str], where: str) -> "Agent":
        """The agent with settings given as text ({"actor_lr": "1e-4", "cosine_actor_lr": "false"}), e.g. an
        online phase's own hyperparameters; a float hyperparameter is set for every member. Errors name
        `where` (the config field) and the setting."""
        replaced = {}
        for name, text in values.items():
            f = type(self).__dataclass_fields__.get(name)
            if f is None or name in ("obs_dim", "action_dim", "total_steps"):
                raise ConfigError(f"{where}: {self.name} has no hyperparameter {name!r}")
            current = getattr(self, name)
            try:
                if isinstance(current, bool):
                    if text.lower() not in ("true", "false"):
                        raise ValueError
                    replaced[name] = text.lower() == "true"
                elif f.metadata.get("pytree_node", True):
                    replaced[name] = filled(current, float(text))
                elif isinstance(current, int):
                    replaced[name] = int(text)
                else:
                    raise ConfigError(f"{where}: {self.name}.{name} cannot be set this way")
            except ValueError:
                kind = "true or false" if isinstance(current, bool) else type(current).__name__
                raise ConfigError(f"{where}: {self.name}.{name} must be {kind}, got {text!r}") from None
        return self.replace(**replaced).validate()

    def hyperparameters(self) -> dict[str, Any]:
        """The float hyperparameters (pytree leaves) by name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get("pytree_node", True)}

    def validate(self) -> "Agent":
        """Check every hyperparameter against its declared range; raises ConfigError naming it."""
        for f in dataclasses.fields(self):
            low, high = f.metadata.get("low"), f.metadata.get("high")
            if not f.metadata.get("pytree_node", True):
                value = getattr(self, f.name)
                if isinstance(value, tuple) and not all(isinstance(v, int) and v > 0 for v in value):
                    raise ConfigError(f"{self.name}.{f.name} must be positive integers, got {value!r}")
                if (
                    isinstance(value, int)
                    and not isinstance(value, bool)
                    and f.name not in ("obs_dim", "action_dim")
                    and value <= 0
                ):
                    raise ConfigError(f"{self.name}.{f.name} must be positive, got {value!r}")
                continue
            values = np.atleast_1d(np.asarray(jax.device_get(getattr(self, f.name)), dtype=np.float64))
            for v in values:
                if not math.isfinite(v):
                    raise ConfigError(f"{self.name}.{f.name} must be finite, got {v}")
                if low is not None and (v < low or (v == low and f.metadata["low_open"])):
                    bound = ">" if f.metadata["low_open"] else ">="
                    raise ConfigError(f"{self.name}.{f.name} must be {bound} {low}, got {v}")
                if high is not None and v > high:
                    raise ConfigError(f"{self.name}.{f.name} must be <= {high}, got {v}")
        return self


def filled(leaf, value: float) -> np.ndarray:
    """`value` in the shape of the hyperparameter `leaf` (one per member once agents are stacked)."""
    return np.full(np.shape(leaf), value, np.float32)


def positive(default: float, help: str = ""):
    return hyperparameter(default, low=0.0, help=help)


def fraction(default: float, help: str = ""):
    return hyperparameter(default, low=0.0, high=1.0, help=help)
