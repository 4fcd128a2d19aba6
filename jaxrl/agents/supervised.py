"""A model fitted by minibatch Adam on a loss over examples: the protocols' supervised learners (HAMSTER's
path model, low levels and action models) as agents, so that the trainer runs them like any other agent
(vmapped seeds, resume after a kill, the divergence check, metrics.jsonl).

The examples are any pytree whose leaves share a leading axis (rows); batches are uniform rows with
replacement. The model is given as functions: `init_params(key) -> params` and
`loss(params, batch) -> scalar`; they are structure of the program (static), not hyperparameters.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.agents.base import Agent, positive, static
from jaxrl.agents.optim import Trainable


@struct.dataclass
class SupervisedState:
    model: Trainable
    step: jax.Array


def sample_rows(data: Any, key: jax.Array, batch_size: int) -> Any:
    """Uniform rows (with replacement) of every leaf of `data`."""
    index = jax.random.randint(key, (batch_size,), 0, jax.tree.leaves(data)[0].shape[0])
    return jax.tree.map(lambda x: x[index], data)


class Supervised(Agent):
    init_params: Callable = static(None, help="key -> the model's params")
    loss: Callable = static(None, help="(params, batch) -> the loss of a batch of examples")
    learning_rate: float = positive(1e-3, help="Adam's learning rate")

    name = "supervised"
    description = "A model fitted by Adam on a loss over examples (no policy, no environment)"

    def init(self, key) -> SupervisedState:
        return SupervisedState(Trainable.create(self.init_params(key)), jnp.zeros((), jnp.int32))

    def sample(self, data, key, batch_size: int):
        return sample_rows(data, key, batch_size)

    def update(self, state: SupervisedState, batch, key):
        del key
        loss, grads = jax.value_and_grad(self.loss)(state.model.params, batch)
        return SupervisedState(state.model.apply_gradients(grads, self.learning_rate), state.step + 1), {"loss": loss}
