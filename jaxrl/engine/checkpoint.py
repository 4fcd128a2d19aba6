"""Orbax checkpoints of the whole training state.

Orbax writes each checkpoint into a temporary directory and renames it when complete, so a run
killed mid-save leaves the previous checkpoint intact and unfinished ones are ignored on restore.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp


class Checkpointer:
    def __init__(self, directory: str | Path, max_to_keep: int = 2):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def save(self, step: int, state: Any) -> None:
        self._manager.save(step, args=ocp.args.StandardSave(_without_empty(state)))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def restore(self, abstract_state: Any, step: int | None = None, sharding=None) -> tuple[int, Any]:
        """Restore into the structure of `abstract_state` (e.g. from `jax.eval_shape`), every array placed
        with `sharding` (None: the default device). A multi-process run must give its arrays' sharding."""
        step = self._manager.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint to resume from in {self.directory}")
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), abstract_state)
        restored = self._manager.restore(step, args=ocp.args.StandardRestore(_without_empty(abstract)))
        return step, _with_empty(restored, abstract)

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()


# Orbax refuses arrays with no elements (brax's MuJoCo-physics env states carry some, e.g. an empty
# actuator activation), so they are left out of a checkpoint and rebuilt from the target's shapes.
def _without_empty(tree: Any) -> Any:
    return jax.tree.map(lambda x: None if math.prod(x.shape) == 0 else x, tree)


def _with_empty(restored: Any, abstract: Any) -> Any:
    def rebuild(r, a):  # a is None where the state itself holds None (e.g. no episode returns)
        if r is not None or a is None:
            return r
        empty = jnp.zeros(a.shape, a.dtype)
        return empty if a.sharding is None else jax.device_put(empty, a.sharding)

    return jax.tree.map(rebuild, restored, abstract, is_leaf=lambda x: x is None)
