"""Parameters with their optimiser state, updated by an optax transformation (Adam unless given) with a
learning rate that is a pytree leaf.

The learning rate is applied outside optax so it can be a traced value: a sweep over learning rates
is then a `vmap`, not a recompilation per value. The transformation is structure (which optax steps,
in which order) fixed when the program is traced; the values it closes over, such as a clip norm or a
weight decay, may themselves be traced hyperparameters. Build it where they are in scope and pass the
same one to `create` and `apply_gradients`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

ADAM = optax.scale_by_adam()


@struct.dataclass
class Trainable:
    params: Any
    opt_state: Any

    @classmethod
    def create(cls, params, transform: optax.GradientTransformation = ADAM) -> "Trainable":
        return cls(params, transform.init(params))

    def apply_gradients(self, grads, learning_rate, transform: optax.GradientTransformation = ADAM) -> "Trainable":
        """params - learning_rate * transform(grads)."""
        updates, opt_state = transform.update(grads, self.opt_state, self.params)
        params = jax.tree.map(lambda p, u: p - learning_rate * u, self.params, updates)
        return Trainable(params, opt_state)


def cosine_decay(learning_rate, step, total_steps: int):
    """Cosine decay from `learning_rate` to 0 over `total_steps`, then 0 (IQL's actor schedule)."""
    progress = jnp.minimum(step / max(total_steps, 1), 1.0)
    return learning_rate * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))


def warmup_cosine(learning_rate, step, total_steps: int, warmup_steps, end: float = 0.0):
    """Linear warm-up to `learning_rate` over `warmup_steps`, then cosine decay to `end` at `total_steps`
    (the learning-rate schedule of L2M's reference, HF's `get_cosine_schedule_with_warmup` with a floor)."""
    warmup = jnp.maximum(warmup_steps, 1.0)
    progress = jnp.clip((step - warmup_steps) / jnp.maximum(total_steps - warmup_steps, 1.0), 0.0, 1.0)
    decayed = end + (learning_rate - end) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
    return jnp.where(step < warmup_steps, learning_rate * jnp.minimum((step + 1) / warmup, 1.0), decayed)
