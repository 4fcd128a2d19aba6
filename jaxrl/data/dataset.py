"""The transition dataset as a pytree of device arrays, and batch sampling under jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class Dataset:
    """Transitions (s, a, r, s', terminal, timeout), all with the same leading length N.

    `terminals` marks true ends (no bootstrapping); `timeouts` marks time-limit ends, after which
    the next row starts a new episode but the transition itself is still bootstrapped.
    """

    observations: jax.Array
    actions: jax.Array
    rewards: jax.Array
    next_observations: jax.Array
    terminals: jax.Array
    timeouts: jax.Array
    # a' of the following row where that row continues the episode, else a (ReBRAC's critic penalty).
    # Filled in by `load_dataset`; None for replay buffers and hand-built datasets.
    next_actions: jax.Array | None = None
    # Discounted Monte Carlo return-to-go of each row within its episode (Cal-QL's reference value),
    # in the agent's reward scale. Filled in by `jaxrl.engine.returns` for agents that use it; else None.
    mc_returns: jax.Array | None = None
    # Path labels of each row's episode, [N, waypoints, 4]: x, y, gripper closed, valid (PathWorld's
    # scripted suites; see envs.pathworld.expert.path_label). None elsewhere.
    paths: jax.Array | None = None

    @property
    def size(self) -> int:
        return int(self.rewards.shape[0])

    @classmethod
    def from_numpy(cls, **arrays) -> "Dataset":
        cast = {"terminals": jnp.float32, "timeouts": jnp.float32}
        return cls(**{k: jnp.asarray(v, cast.get(k, jnp.float32)) for k, v in arrays.items()})

    def to_numpy(self) -> dict[str, np.ndarray]:
        out = {k: np.asarray(getattr(self, k)) for k in self.__dataclass_fields__ if getattr(self, k) is not None}
        out["terminals"] = out["terminals"].astype(bool)
        out["timeouts"] = out["timeouts"].astype(bool)
        return out

    def subset(self, fraction: float, seed: int) -> "Dataset":
        """round(fraction * size) rows drawn without replacement given `seed`, kept in their order (so what
        remains of each episode stays contiguous; returns-to-go end where a row does not continue)."""
        keep = max(1, round(fraction * self.size))
        rows = np.sort(np.random.default_rng(seed).choice(self.size, keep, replace=False))
        return jax.tree.map(lambda x: x[rows], self)

    def episode_returns(self) -> np.ndarray:
        """Undiscounted return of every (possibly partial) episode, in order."""
        ends = np.asarray(self.terminals, bool) | np.asarray(self.timeouts, bool)
        episode_id = np.concatenate([[0], np.cumsum(ends)[:-1]])
        return np.bincount(episode_id, weights=np.asarray(self.rewards, np.float64))


def next_actions(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The action of the next row wherever that row continues the same episode, else the row's own."""
    actions = arrays["actions"]
    ends = arrays["terminals"].astype(bool) | arrays["timeouts"].astype(bool)
    continues = ~ends[:-1] & np.all(np.isclose(arrays["observations"][1:], arrays["next_observations"][:-1]), axis=1)
    out = actions.copy()
    out[:-1][continues] = actions[1:][continues]
    return out


def sample_batch(dataset: Dataset, key: jax.Array, batch_size: int) -> Dataset:
    """Uniform sample of `batch_size` transitions with replacement."""
    idx = jax.random.randint(key, (batch_size,), 0, dataset.rewards.shape[0])
    return jax.tree.map(lambda x: x[idx], dataset)


@struct.dataclass
class Normalizer:
    """How a run's agent sees data: observations standardised per dimension and rewards scaled.

    One per run, fixed for the run: applied once to the offline dataset, to every online transition
    before it is stored, and to observations whenever the agent acts (collecting or evaluating). A warm
    start carries it over with the agent, so a fine-tuned agent keeps seeing data the same way.
    """

    mean: jax.Array
    std: jax.Array
    reward_scale: jax.Array  # float32 scalar: rewards are multiplied by it

    @classmethod
    def identity(cls, obs_dim: int) -> "Normalizer":
        return cls(jnp.zeros(obs_dim), jnp.ones(obs_dim), jnp.ones((), jnp.float32))

    @classmethod
    def from_dataset(cls, dataset: Dataset, eps: float = 1e-3, reward_scale: float = 1.0) -> "Normalizer":
        """Statistics over observations and next observations together (RIQL's choice)."""
        obs = jnp.concatenate([dataset.observations, dataset.next_observations])
        return cls(obs.mean(0), obs.std(0) + eps, jnp.asarray(reward_scale, jnp.float32))

    def __call__(self, obs):
        return (obs - self.mean) / self.std

    def apply(self, dataset: Dataset) -> Dataset:
        """The dataset as the agent sees it (observations standardised, rewards scaled)."""
        return dataset.replace(
            observations=self(dataset.observations),
            next_observations=self(dataset.next_observations),
            rewards=dataset.rewards * self.reward_scale,
        )


@struct.dataclass
class RunningStats:
    """Mean and variance of every observation seen so far (Chan et al.'s parallel update), for agents
    that normalise observations while they collect them (PPO); starts as the identity."""

    count: jax.Array
    mean: jax.Array
    var: jax.Array

    @classmethod
    def create(cls, obs_dim: int) -> "RunningStats":
        return cls(jnp.zeros((), jnp.float32), jnp.zeros(obs_dim), jnp.ones(obs_dim))

    def update(self, obs) -> "RunningStats":
        """The statistics with a batch `obs` [..., obs_dim] added."""
        obs = obs.reshape(-1, obs.shape[-1])
        n = jnp.float32(obs.shape[0])
        batch_mean, batch_var = obs.mean(0), obs.var(0)
        total = self.count + n
        delta = batch_mean - self.mean
        mean = self.mean + delta * n / total
        var = (self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total
        return RunningStats(total, mean, var)

    def __call__(self, obs, eps: float = 1e-6):
        return (obs - self.mean) / jnp.sqrt(self.var + eps)
