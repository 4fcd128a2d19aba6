"""Where training batches come from: one interface, `sample(key, n) -> batch`, for every source.

- `DatasetSource`: a fixed dataset, or an agent's training view of it (DT's trajectory windows);
- `ReplayBuffer` (jaxrl.engine.buffer): the transitions collected so far;
- `Mix`: a fixed share of each batch from each of several sources (offline data + online buffer,
  real data + simulator buffer).

Sources are built inside the traced training step from the arrays they read, so they are plain
objects, not pytrees; their arrays (and a `Mix`'s fractions) may be traced, e.g. vmapped over members.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import chex
import jax
import jax.numpy as jnp

from jaxrl.data.dataset import sample_batch


class Source(Protocol):
    def sample(self, key: jax.Array, n: int) -> Any: ...


@dataclass(frozen=True)
class DatasetSource:
    """Uniform samples of a dataset; `sample_fn(data, key, n)` draws them (an agent's `sample` for its view)."""

    data: Any
    sample_fn: Callable = sample_batch

    def sample(self, key: jax.Array, n: int):
        return self.sample_fn(self.data, key, n)


@dataclass(frozen=True)
class Mix:
    """Batches of which round(fractions[j] * n) rows come from `sources[j]` (the last takes the rest).

    Every source is sampled for the full n rows and each row is then picked from its source, so the
    shares can be traced values (a swept fraction is one program) while batch shapes stay static.
    Rows of source 0 come first. All sources must give batches of the same structure.
    """

    sources: tuple
    fractions: Any  # [len(sources)], summing to 1

    def sample(self, key: jax.Array, n: int):
        batches = [s.sample(k, n) for s, k in zip(self.sources, jax.random.split(key, len(self.sources)), strict=True)]
        structures = {jax.tree.structure(b) for b in batches}
        if len(structures) > 1:
            raise ValueError(f"Mix: the sources give batches of different structures: {structures}")
        # Rows of one batch from several sources must agree in shape and dtype (a float64 buffer would
        # otherwise upcast the whole batch, a wider one fail inside jnp.where).
        chex.assert_trees_all_equal_shapes_and_dtypes(*batches)
        ends = jnp.round(jnp.cumsum(jnp.asarray(self.fractions, jnp.float32)) * n)
        which = jnp.sum(jnp.arange(n)[:, None] >= ends[None, :-1], axis=1)  # source index of every row

        def pick(*leaves):
            rows = which.reshape((n,) + (1,) * (leaves[0].ndim - 1))
            out = leaves[-1]
            for j in range(len(leaves) - 2, -1, -1):
                out = jnp.where(rows == j, leaves[j], out)
            return out

        return jax.tree.map(pick, *batches)
