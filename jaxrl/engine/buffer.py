"""A circular replay buffer that lives on device as a pytree, for online training."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.data.dataset import Dataset


@struct.dataclass
class ReplayBuffer:
    data: Dataset  # preallocated storage of length `capacity`
    position: jax.Array  # next row to write
    size: jax.Array  # rows written so far, at most capacity

    @classmethod
    def create(cls, capacity: int, obs_dim: int, action_dim: int, mc_returns: bool = False) -> "ReplayBuffer":
        """Empty storage; with `mc_returns`, a column for returns-to-go too (see `jaxrl.engine.returns`)."""
        zeros = lambda *shape: jnp.zeros((capacity, *shape), jnp.float32)  # noqa: E731
        data = Dataset(zeros(obs_dim), zeros(action_dim), zeros(), zeros(obs_dim), zeros(), zeros())
        if mc_returns:
            data = data.replace(mc_returns=zeros())
        return cls(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))

    @property
    def capacity(self) -> int:
        return self.data.rewards.shape[0]

    def rows_of_next(self, n: int) -> jax.Array:
        """The rows the next `add` of n transitions writes to."""
        return (self.position + jnp.arange(n)) % self.capacity

    def add(self, batch: Dataset) -> "ReplayBuffer":
        """Write a batch of transitions (leading axis B), overwriting the oldest when full."""
        n = batch.rewards.shape[0]
        idx = self.rows_of_next(n)
        data = jax.tree.map(lambda store, x: store.at[idx].set(x.astype(store.dtype)), self.data, batch)
        return ReplayBuffer(data, (self.position + n) % self.capacity, jnp.minimum(self.size + n, self.capacity))

    def sample(self, key: jax.Array, batch_size: int) -> Dataset:
        idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(self.size, 1))
        return jax.tree.map(lambda x: x[idx], self.data)
