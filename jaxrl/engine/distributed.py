"""Runs over several processes (hosts) through JAX's multi-controller runtime (`jax.distributed`).

Every process runs the same program: the member axis is sharded over the devices of all processes (the
global mesh, `sharding.member_mesh`), each process steps the members on its own devices, and nothing
crosses processes inside a chunk. Between chunks, the metrics and evaluation returns are gathered to every
process (`to_host`), so every process takes the same decisions (divergence, the schedule); only the primary
process (0) writes the run directory's files, and Orbax writes each process's shards of a checkpoint.

A process learns its place from flags (`python -m jaxrl.train --coordinator HOST:PORT --num-processes N
--process-id I`), from the environment (JAXRL_COORDINATOR, JAXRL_NUM_PROCESSES, JAXRL_PROCESS_ID), or,
with `--coordinator auto`, from the launcher (SLURM, Open MPI, a Cloud TPU pod slice: JAX's own detection).
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from dataclasses import dataclass

import jax
import numpy as np

ENVIRONMENT = {"coordinator": "JAXRL_COORDINATOR", "num_processes": "JAXRL_NUM_PROCESSES", "process_id": "JAXRL_PROCESS_ID"}
AUTO = "auto"


class DistributedError(RuntimeError):
    """A multi-process run cannot start or the processes disagree."""


@dataclass(frozen=True)
class Cluster:
    """Where this process stands among the run's processes. `coordinator` is process 0's HOST:PORT (every
    process gives the same), or "auto" for a launcher JAX detects."""

    coordinator: str
    num_processes: int | None = None
    process_id: int | None = None
    timeout: int = 300  # seconds to wait for every process to reach the coordinator

    @classmethod
    def from_settings(cls, coordinator=None, num_processes=None, process_id=None, timeout=300, environ=None) -> "Cluster | None":
        """The cluster given by arguments, falling back on the environment; None for a single-process run."""
        environ = os.environ if environ is None else environ
        coordinator = coordinator or environ.get(ENVIRONMENT["coordinator"]) or None
        num_processes = num_processes if num_processes is not None else _integer(environ, "num_processes")
        process_id = process_id if process_id is not None else _integer(environ, "process_id")
        if coordinator is None:
            if num_processes not in (None, 1) or process_id not in (None, 0):
                raise DistributedError(
                    f"{num_processes} processes (process id {process_id}) but no coordinator: give --coordinator "
                    f"HOST:PORT (or {ENVIRONMENT['coordinator']}), process 0's address, the same for every process"
                )
            return None
        cluster = cls(coordinator, num_processes, process_id, timeout)
        cluster.validate()
        return cluster

    def validate(self) -> None:
        if self.timeout <= 0:
            raise DistributedError(f"the coordinator timeout must be positive, got {self.timeout}")
        if self.coordinator == AUTO:
            return
        host, _, port = self.coordinator.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise DistributedError(f"coordinator {self.coordinator!r} is not HOST:PORT (e.g. 10.0.0.1:12345)")
        if self.num_processes is None or self.process_id is None:
            raise DistributedError(
                f"coordinator {self.coordinator} needs the process count and this process's id: --num-processes N "
                f"--process-id I (or {ENVIRONMENT['num_processes']}, {ENVIRONMENT['process_id']})"
            )
        if self.num_processes < 1 or not 0 <= self.process_id < self.num_processes:
            raise DistributedError(
                f"process id {self.process_id} of {self.num_processes} processes: ids run from 0 to num_processes - 1"
            )


def _integer(environ, name: str) -> int | None:
    value = environ.get(ENVIRONMENT[name])
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise DistributedError(f"{ENVIRONMENT[name]}={value!r} is not an integer") from None


def initialize(cluster: Cluster | None) -> None:
    """Join the cluster (nothing for None). Call before any JAX computation: the runtime must know every
    process before it makes the devices."""
    if cluster is None or jax.distributed.is_initialized():
        return
    # CPU processes exchange the gathered metrics through gloo (GPUs and TPUs use their own collectives).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if cluster.coordinator != AUTO and cluster.process_id != 0:
        # JAX's client ends the whole process with a bare log line when it cannot reach the coordinator:
        # look for it first, to say what is wrong.
        _wait_for(cluster)
    try:
        if cluster.coordinator == AUTO:
            jax.distributed.initialize(initialization_timeout=cluster.timeout)
        else:
            jax.distributed.initialize(
                cluster.coordinator, cluster.num_processes, cluster.process_id, initialization_timeout=cluster.timeout
            )
    except Exception as err:  # JAX raises several kinds (RuntimeError, XlaRuntimeError, ValueError)
        where = "the launcher's settings" if cluster.coordinator == AUTO else f"coordinator {cluster.coordinator}"
        raise DistributedError(
            f"process {cluster.process_id} of {cluster.num_processes} could not join {where} within {cluster.timeout} s: "
            f"{str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}. Is process 0 running and "
            "reachable there, and do all processes give the same address and process count?"
        ) from None


def _wait_for(cluster: Cluster) -> None:
    host, _, port = cluster.coordinator.rpartition(":")
    deadline = time.monotonic() + cluster.timeout
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=min(5.0, cluster.timeout)):
                return
        except OSError as err:
            if time.monotonic() >= deadline:
                raise DistributedError(
                    f"process {cluster.process_id} of {cluster.num_processes} could not reach coordinator "
                    f"{cluster.coordinator} within {cluster.timeout} s ({err.strerror or err}). Is process 0 running "
                    "there, reachable from this host, and do all processes give the same address?"
                ) from None
            time.sleep(0.25)


def process_count() -> int:
    return jax.process_count()


def is_primary() -> bool:
    """The process that writes the run directory's files (metrics, tables, plots, config)."""
    return jax.process_index() == 0


def to_host(tree):
    """Every leaf as a NumPy array on this host, gathered from all processes where it is spread over them."""
    from jax.experimental import multihost_utils

    def fetch(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    return jax.tree.map(fetch, tree)


def barrier(name: str) -> None:
    """Wait until every process gets here (nothing in a single-process run)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def check_same(what: str, text: str) -> None:
    """Stop every process when they do not all hold the same `text` (e.g. their run configs)."""
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    digest = np.frombuffer(hashlib.sha256(text.encode()).digest()[:8], np.uint8)
    digests = np.asarray(multihost_utils.process_allgather(digest))  # [processes, 8]
    differ = [p for p in range(len(digests)) if not np.array_equal(digests[p], digests[0])]
    if differ:
        raise DistributedError(
            f"the processes were given different {what}: process(es) {differ} differ from process 0 "
            f"(this is process {jax.process_index()}). Start every process with the same settings."
        )
