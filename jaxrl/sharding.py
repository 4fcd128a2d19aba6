"""Spreading sweep members over devices.

Members are independent, so the member axis is the natural one to shard: each device trains its
share of the seeds and hyperparameter values, and nothing crosses devices inside a chunk. Data that
every member reads (the dataset) is replicated.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def member_mesh(num_members: int) -> Mesh | None:
    """A 1-D mesh over as many devices as divide the member count; None on a single device."""
    devices = jax.devices()
    n = max(d for d in range(1, len(devices) + 1) if num_members % d == 0)
    return Mesh(np.array(devices[:n]), ("members",)) if n > 1 else None


def shard_members(tree, mesh: Mesh | None):
    """Place every leaf (leading axis = members) split along that axis over the mesh."""
    if mesh is None:
        return tree
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec("members")))


def replicate(tree, mesh: Mesh | None):
    if mesh is None:
        return tree
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))
