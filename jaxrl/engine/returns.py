"""Discounted Monte Carlo returns-to-go, the reference values Cal-QL floors its Q values at.

G_t = r_t + gamma G_{t+1} within an episode. At every episode end, terminal or cut by the time limit,
G_t = r_t: the reference (Cal-QL's `calc_return_to_go`) bootstraps nothing after a timeout either, so a
truncated episode's last values are an underestimate, which only loosens the floor.

- `dataset_returns_to_go`: for a dataset, per episode, once at load (host side, one scan);
- `EpisodeReturns`: for online transitions, on device: each env remembers where its current episode's
  rows went in the replay buffer, and when the episode ends their returns are written back there. Until
  then a row's return is -inf, which leaves its Q value unbounded.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl.agents.base import ConfigError

PENDING = -jnp.inf  # the return of a row whose episode has not ended: no floor


def _discounted_backward(rewards, ends, gamma):
    """G_t = r_t + gamma (1 - end_t) G_{t+1}, over the leading axis."""

    def step(future, inputs):
        reward, end = inputs
        value = reward + gamma * (1.0 - end) * future
        return value, value

    _, values = jax.lax.scan(step, jnp.zeros_like(rewards[0]), (rewards, ends), reverse=True)
    return values


def dataset_returns_to_go(dataset, gamma: float, where: str = "dataset"):
    """The dataset with `mc_returns` filled in. Episodes end at terminals, timeouts, and wherever the next
    row does not start at this row's next observation (a dataset of concatenated partial episodes).
    Raises ConfigError when the data has no terminals and no timeouts: its episodes are unknown."""
    terminals = np.asarray(dataset.terminals, bool)
    timeouts = np.asarray(dataset.timeouts, bool)
    if not (terminals.any() or timeouts.any()):
        raise ConfigError(
            f"{where} has no episode boundaries (no terminals and no timeouts), so its Monte Carlo returns-to-go "
            "(Cal-QL's reference values) are undefined"
        )
    obs, next_obs = np.asarray(dataset.observations), np.asarray(dataset.next_observations)
    ends = terminals | timeouts
    ends[:-1] |= np.any(np.abs(obs[1:] - next_obs[:-1]) > 1e-6, axis=1)
    ends[-1] = True
    values = jax.jit(_discounted_backward)(jnp.asarray(dataset.rewards, jnp.float32), jnp.asarray(ends, jnp.float32), gamma)
    return dataset.replace(mc_returns=values)


@struct.dataclass
class EpisodeReturns:
    """Per env: the buffer rows and rewards of its current episode so far ([num_envs, max_length])."""

    rows: jax.Array
    rewards: jax.Array
    length: jax.Array  # [num_envs]

    @classmethod
    def create(cls, num_envs: int, max_length: int) -> "EpisodeReturns":
        return cls(
            jnp.zeros((num_envs, max_length), jnp.int32),
            jnp.zeros((num_envs, max_length), jnp.float32),
            jnp.zeros((num_envs,), jnp.int32),
        )

    def record(self, buffer, rows, rewards, done, gamma):
        """Note that env e wrote `rewards[e]` to buffer row `rows[e]`; for every env whose episode is `done`,
        write its returns-to-go into the buffer and start a new episode. Returns (self, buffer)."""
        envs = jnp.arange(self.length.shape[0])
        position = jnp.minimum(self.length, self.rows.shape[1] - 1)  # episodes are at most max_length long
        recorded = EpisodeReturns(
            self.rows.at[envs, position].set(rows),
            self.rewards.at[envs, position].set(rewards),
            position + 1,
        )

        def write_back(buffer):
            steps = jnp.arange(self.rows.shape[1])
            within = steps[None, :] < recorded.length[:, None]
            last = steps[None, :] == recorded.length[:, None] - 1
            values = _discounted_backward(recorded.rewards.T, last.T.astype(jnp.float32), gamma).T
            write = within & done[:, None]
            target = jnp.where(write, recorded.rows, buffer.capacity)  # out of range: dropped
            mc = buffer.data.mc_returns.at[target.reshape(-1)].set(values.reshape(-1), mode="drop")
            return buffer.replace(data=buffer.data.replace(mc_returns=mc))

        buffer = jax.lax.cond(done.any(), write_back, lambda b: b, buffer)
        return recorded.replace(length=jnp.where(done, 0, recorded.length)), buffer
