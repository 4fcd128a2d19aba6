"""Parameters with their optimiser state, updated by Adam with a learning rate that is a pytree leaf.

The learning rate is applied outside optax so it can be a traced value: a sweep over learning rates
is then a `vmap`, not a recompilation per value.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

_adam = optax.scale_by_adam()


@struct.dataclass
class Trainable:
    params: Any
    opt_state: Any

    @classmethod
    def create(cls, params) -> "Trainable":
        return cls(params, _adam.init(params))

    def apply_gradients(self, grads, learning_rate) -> "Trainable":
        updates, opt_state = _adam.update(grads, self.opt_state, self.params)
        params = jax.tree.map(lambda p, u: p - learning_rate * u, self.params, updates)
        return Trainable(params, opt_state)


def cosine_decay(learning_rate, step, total_steps: int):
    """Cosine decay from `learning_rate` to 0 over `total_steps`, then 0 (IQL's actor schedule)."""
    progress = jnp.minimum(step / max(total_steps, 1), 1.0)
    return learning_rate * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
