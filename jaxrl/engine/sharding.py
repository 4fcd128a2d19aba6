"""Spreading sweep members over devices.

Members are independent, so the member axis is the natural one to shard: each device trains its
share of the seeds and hyperparameter values, and nothing crosses devices inside a chunk. Data that
every member reads (the dataset) is replicated. In a multi-process run (`jaxrl.engine.distributed`) the
mesh spans the devices of every process, each process holding an equal block of consecutive members.
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
    if devices is None and jax.process_count() > 1:
        return _multi_process_mesh(num_members)
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


def member_sharding(mesh: Mesh | None) -> NamedSharding | None:
    """How a leaf whose leading axis is the members lies on the mesh (None: one device)."""
    return None if mesh is None else NamedSharding(mesh, PartitionSpec("members"))


def shard_members(tree, mesh: Mesh | None):
    """Place every leaf (leading axis = members) split along that axis over the mesh."""
    if mesh is None:
        return tree
    return jax.device_put(tree, member_sharding(mesh))


def replicate(tree, mesh: Mesh | None):
    if mesh is None:
        return tree
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def _multi_process_mesh(num_members: int) -> Mesh:
    """The same number of devices from every process (each process must hold members: a process without
    any would only wait), as many as divide each process's share of the members."""
    from jaxrl.agents import ConfigError

    processes = jax.process_count()
    if num_members % processes:
        raise ConfigError(
            f"{num_members} members cannot be split evenly over {processes} processes: sweep a multiple of {processes} "
            "members (seeds x grid points)"
        )
    local = [sorted((d for d in jax.devices() if d.process_index == p), key=lambda d: d.id) for p in range(processes)]
    per_process = min(len(devices) for devices in local)
    share = num_members // processes
    n = max(d for d in range(1, per_process + 1) if share % d == 0)
    if n < min(share, per_process):
        warnings.warn(
            f"{num_members} members run on {n} of each process's {per_process} devices: to use all of them, sweep a "
            f"multiple of {processes * per_process} members",
            IdleDevicesWarning,
            stacklevel=3,
        )
    return Mesh(np.array([d for devices in local for d in devices[:n]]), ("members",))
