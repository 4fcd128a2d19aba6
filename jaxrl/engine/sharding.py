"""Spreading sweep members over devices.

Members are independent, so the member axis is the natural one to shard: each device trains its
share of the seeds and hyperparameter values, and nothing crosses devices inside a chunk. Data that
every member reads (the dataset) is replicated.
"""

from __future__ import annotations

import warnings

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


class IdleDevicesWarning(UserWarning):
    """Some devices get no members: the member count is not a multiple of the device count."""


def member_mesh(num_members: int, devices=None) -> Mesh | None:
    """A 1-D mesh over as many devices as divide the member count (each device holds the same number of
    members); None on a single device. Says so when devices are left idle."""
    devices = jax.devices() if devices is None else devices
    n = max(d for d in range(1, len(devices) + 1) if num_members % d == 0)
    if n < min(num_members, len(devices)):
        warnings.warn(
            f"{num_members} members run on {n} of the {len(devices)} devices: {num_members} is not a multiple of a "
            f"larger device count. To use all {len(devices)}, sweep a multiple of {len(devices)} members (seeds x grid points).",
            IdleDevicesWarning,
            stacklevel=2,
        )
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
