"""The circular on-device replay buffer."""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.data import Dataset
from jaxrl.engine.buffer import ReplayBuffer

OBS_DIM, ACT_DIM = 2, 1


def batch(start: int, n: int) -> Dataset:
    """n transitions whose every field encodes its global index start..start+n-1."""
    ids = np.arange(start, start + n, dtype=np.float32)
    return Dataset.from_numpy(
        observations=np.repeat(ids[:, None], OBS_DIM, 1),
        actions=-ids[:, None],
        rewards=ids,
        next_observations=np.repeat(ids[:, None] + 0.5, OBS_DIM, 1),
        terminals=(ids % 2 == 0),
        timeouts=(ids % 3 == 0),
    )


def test_create():
    buf = ReplayBuffer.create(10, OBS_DIM, ACT_DIM)
    assert buf.capacity == 10 and int(buf.position) == 0 and int(buf.size) == 0
    assert buf.data.observations.shape == (10, OBS_DIM) and buf.data.actions.shape == (10, ACT_DIM)


def test_add_wraps_around_in_circular_order():
    buf = ReplayBuffer.create(10, OBS_DIM, ACT_DIM)
    add = jax.jit(ReplayBuffer.add)
    expected = [(4, 4), (8, 8), (2, 10), (6, 10)]  # (position, size) after each batch of 4
    for i, (position, size) in enumerate(expected):
        buf = add(buf, batch(4 * i, 4))
        assert (int(buf.position), int(buf.size)) == (position, size)

    # 16 rows written into 10 slots: ids 10..15 overwrote the oldest ids 0..5, in order.
    ids = np.asarray(buf.data.rewards)
    np.testing.assert_array_equal(ids, [10, 11, 12, 13, 14, 15, 6, 7, 8, 9])
    # Every field of a row was written together.
    data = buf.data
    np.testing.assert_array_equal(np.asarray(data.observations), np.repeat(ids[:, None], OBS_DIM, 1))
    np.testing.assert_array_equal(np.asarray(data.actions)[:, 0], -ids)
    np.testing.assert_array_equal(np.asarray(data.next_observations)[:, 0], ids + 0.5)
    np.testing.assert_array_equal(np.asarray(data.terminals), (ids % 2 == 0).astype(np.float32))
    np.testing.assert_array_equal(np.asarray(data.timeouts), (ids % 3 == 0).astype(np.float32))


def test_sample_only_returns_written_rows():
    buf = ReplayBuffer.create(10, OBS_DIM, ACT_DIM).add(batch(100, 3))  # rows 0-2 hold ids 100-102
    sample = jax.jit(ReplayBuffer.sample, static_argnums=2)(buf, jax.random.key(0), 1000)
    assert sample.rewards.shape == (1000,) and sample.observations.shape == (1000, OBS_DIM)
    ids = np.asarray(sample.rewards)
    assert set(ids.tolist()) == {100.0, 101.0, 102.0}  # never an unwritten (zero) row, and all three seen
    np.testing.assert_array_equal(np.asarray(sample.observations)[:, 0], ids)


def test_sample_covers_all_rows_once_full():
    buf = ReplayBuffer.create(8, OBS_DIM, ACT_DIM)
    for i in range(3):
        buf = buf.add(batch(4 * i, 4))
    sample = buf.sample(jax.random.key(1), 2000)
    assert set(np.asarray(sample.rewards).tolist()) == set(range(4, 12))


def test_add_under_scan():
    def body(buf, start):
        ids = start + jnp.arange(3, dtype=jnp.float32)
        b = Dataset(ids[:, None] * jnp.ones(OBS_DIM), ids[:, None], ids, ids[:, None] * jnp.ones(OBS_DIM), ids * 0, ids * 0)
        return buf.add(b), None

    buf, _ = jax.jit(lambda b: jax.lax.scan(body, b, jnp.arange(0, 15, 3, dtype=jnp.float32)))(
        ReplayBuffer.create(7, OBS_DIM, ACT_DIM)
    )
    # 15 rows into 7 slots: position 15 % 7 = 1; slot 0 holds id 14, slots 1..6 hold ids 8..13.
    assert int(buf.position) == 1 and int(buf.size) == 7
    np.testing.assert_array_equal(np.asarray(buf.data.rewards), [14, 8, 9, 10, 11, 12, 13])


def test_batches_of_the_wrong_shape_or_dtype_are_named_at_trace_time():
    """An agent's batch must fit its env (chex, at trace time); a mix's sources must agree in shape and dtype."""
    from jaxrl.agents import IQL
    from jaxrl.engine.sources import DatasetSource, Mix

    data = batch(0, 16)  # observations [16, 2]
    agent = IQL().configure(types.SimpleNamespace(obs_dim=OBS_DIM + 1, action_dim=ACT_DIM), 10)
    with pytest.raises(AssertionError, match=r"\(8, 3\)"):
        agent.sample(data, jax.random.PRNGKey(0), 8)
    wide = data.replace(rewards=data.rewards.astype(jnp.float16))
    with pytest.raises(AssertionError, match="rewards"):
        Mix((DatasetSource(data), DatasetSource(wide)), jnp.array([0.5, 0.5])).sample(jax.random.PRNGKey(0), 8)
