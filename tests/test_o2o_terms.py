"""Offline-to-online terms (REDQ, RO2O, Cal-QL) and Monte Carlo returns-to-go, on hand-computed values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.agents import ConfigError
from jaxrl.agents.losses import (
    calibrated,
    linear_schedule,
    q_smoothness,
    random_subset_min,
    symmetric_gaussian_kl,
    uncertainty_target,
)
from jaxrl.data.dataset import Dataset
from jaxrl.engine.buffer import ReplayBuffer
from jaxrl.engine.returns import EpisodeReturns, dataset_returns_to_go

KEYS = jax.random.split(jax.random.PRNGKey(0), 200)


def close(actual, expected, **kw):
    np.testing.assert_allclose(np.asarray(actual), expected, **{"rtol": 1e-6, "atol": 1e-6, **kw})


def test_random_subset_min_takes_two_distinct_random_members():
    """REDQ's target is the min over `size` distinct members, a fresh random subset per key."""
    # column 0 holds k (its min is the smaller chosen index), column 1 holds -k (minus the larger one)
    q = jnp.stack([jnp.arange(10.0), -jnp.arange(10.0)], axis=1)
    out = np.asarray(jax.vmap(lambda key: random_subset_min(q, key, 2))(KEYS))
    low, high = out[:, 0], -out[:, 1]
    assert np.all(low < high)  # two distinct members every time
    members = np.asarray(jax.vmap(lambda key: jax.random.choice(key, 10, (2,), replace=False))(KEYS))
    assert np.all(members[:, 0] != members[:, 1])
    close(low, members.min(axis=1))  # the same draw as jax.random.choice with the key
    close(high, members.max(axis=1))
    assert 0.1 < np.mean(low == 0) < 0.3  # the smallest member is in about 2 of 10 subsets
    assert len(np.unique(low)) > 1  # not always the global min


def test_q_smoothness_hand_computed():
    """RO2O's smoothness term: asymmetric square, mean over critics, max over perturbations, mean over batch."""
    q = jnp.array([[1.0, 2.0], [0.0, -1.0]])  # [K=2, B=2]
    q_perturbed = jnp.array(  # [K=2, n=3, B=2]
        [[[2.0, 1.0], [1.0, 4.0], [-1.0, 2.5]], [[-1.0, -1.0], [2.0, -3.0], [1.0, 0.0]]]
    )
    diff = np.array([[[1, -1], [0, 2], [-2, 0.5]], [[-1, 0], [2, -2], [1, 1]]])
    close(q_perturbed - q[:, None], diff)
    # tau = 0.2: a rise d costs 0.8 d^2, a fall 0.2 d^2
    asymmetric = np.array([[[0.8, 0.2], [0.0, 3.2], [0.8, 0.2]], [[0.2, 0.0], [3.2, 0.8], [0.8, 0.8]]])
    close(asymmetric.mean(axis=0), [[0.5, 0.1], [1.6, 2.0], [0.8, 0.5]])
    # max over perturbations: [1.6, 2.0]; mean over the batch: 1.8
    close(q_smoothness(q_perturbed, q, 0.2), 1.8)


def test_q_smoothness_penalises_rises_four_times_more_at_tau_0_2():
    """With tau 0.2, a perturbation that raises Q costs 4x as much as one that lowers it equally."""
    q = jnp.zeros((1, 1))
    rise, fall = (q_smoothness(jnp.full((1, 1, 1), d), q, 0.2) for d in (1.0, -1.0))
    close(rise, 0.8)
    close(fall, 0.2)


def test_uncertainty_target_is_q_minus_unbiased_std_and_detached():
    """RO2O's OOD target subtracts weight times the ensemble's unbiased std, and passes no gradient."""
    q = jnp.array([[1.0, 4.0], [2.0, 4.0], [3.0, 10.0]])  # [K=3, B=2]
    # column 0: mean 2, squares 1 + 0 + 1 = 2, / (3 - 1) -> std 1; column 1: mean 6, 4 + 4 + 16 = 24, / 2 -> sqrt(12)
    shift = 0.5 * np.array([1.0, np.sqrt(12.0)])
    close(uncertainty_target(q, 0.5), np.array([[1.0, 4.0], [2.0, 4.0], [3.0, 10.0]]) - shift, rtol=1e-5)
    grad = jax.grad(lambda x: uncertainty_target(x, 0.5).sum())(q)
    close(grad, np.zeros((3, 2)))


def kl_diag(m_p, s_p, m_q, s_q):
    """Closed-form KL(p || q) of diagonal Gaussians, per dimension (numpy)."""
    return np.log(s_q / s_p) + (s_p**2 + (m_p - m_q) ** 2) / (2 * s_q**2) - 0.5


def test_symmetric_gaussian_kl_hand_computed():
    """The RO2O policy-smoothness term is KL(p||q) + KL(q||p), summed over action dims, 0 at p = q, symmetric."""
    m_p, s_p, m_q, s_q = np.array([0.0, 1.0]), np.array([1.0, 2.0]), np.array([1.0, 1.0]), np.array([2.0, 1.0])
    # dim 0: (log 2 - 0.25) + (2 - log 2) = 1.75; dim 1: (1.5 - log 2) + (log 2 - 0.375) = 1.125
    expected = kl_diag(m_p, s_p, m_q, s_q) + kl_diag(m_q, s_q, m_p, s_p)
    close(expected, [1.75, 1.125])
    # a batch of two: (p, q) and (p, p)
    mean_p, log_std_p = jnp.array([m_p, m_p]), jnp.log(jnp.array([s_p, s_p]))
    mean_q, log_std_q = jnp.array([m_q, m_p]), jnp.log(jnp.array([s_q, s_p]))
    close(symmetric_gaussian_kl(mean_p, log_std_p, mean_q, log_std_q), [2.875, 0.0], rtol=1e-5)
    close(symmetric_gaussian_kl(mean_q, log_std_q, mean_p, log_std_p), [2.875, 0.0], rtol=1e-5)


def test_linear_schedule_decays_then_floors():
    """RO2O's uncertainty weight goes linearly from 1.0 to 0.1 and then stays at 0.1."""
    steps = jnp.array([0, 1_000_000, 1_800_000, 2_000_000, 10_000_000])
    close(linear_schedule(1.0, 5e-7, 0.1, steps), [1.0, 0.5, 0.1, 0.1, 0.1], rtol=1e-5)


def test_calibrated_floors_each_state_at_its_reference_value():
    """Cal-QL floors Q [K, n, B] of every critic and sampled action at its state's reference value [B]."""
    q_policy = jnp.array([[[0.0, 5.0, -3.0], [2.0, -1.0, 1.0]], [[4.0, 0.0, -7.0], [-2.0, 3.0, 0.0]]])
    reference = jnp.array([1.0, 2.0, -jnp.inf])  # -inf: a pending return leaves Q unbounded
    expected = [[[1.0, 5.0, -3.0], [2.0, 2.0, 1.0]], [[4.0, 2.0, -7.0], [1.0, 3.0, 0.0]]]
    close(calibrated(q_policy, reference), expected)


def transitions(obs, rewards, terminals, timeouts):
    """A hand-built Dataset of 1-d observations with next_observations = obs + 1."""
    obs = np.asarray(obs, np.float32)[:, None]
    n = len(rewards)
    return Dataset.from_numpy(
        observations=obs,
        actions=np.zeros((n, 1)),
        rewards=rewards,
        next_observations=obs + 1,
        terminals=terminals,
        timeouts=timeouts,
    )


def test_dataset_returns_to_go_restarts_at_every_episode_end():
    """Returns-to-go stop at terminals, timeouts (no bootstrap), observation breaks and the end of the data."""
    # episodes: rows 0-2 end at a terminal, 3-4 at a timeout, 5-6 where row 7's obs (30) != next obs (7), 7-8 at the end
    ds = transitions(
        obs=[0, 1, 2, 3, 4, 5, 6, 30, 31],
        rewards=[1, 2, 3, 1, 1, 2, 4, 1, 10],
        terminals=[0, 0, 1, 0, 0, 0, 0, 0, 0],
        timeouts=[0, 0, 0, 0, 1, 0, 0, 0, 0],
    )
    # gamma 0.9: 1 + 0.9 (2 + 0.9 * 3) = 5.23, 2 + 2.7 = 4.7, 3 | 1 + 0.9 = 1.9, 1 | 2 + 3.6 = 5.6, 4 | 1 + 9 = 10, 10
    close(dataset_returns_to_go(ds, 0.9).mc_returns, [5.23, 4.7, 3.0, 1.9, 1.0, 5.6, 4.0, 10.0, 10.0], rtol=1e-5)


def test_dataset_returns_to_go_needs_episode_boundaries():
    """Data without terminals or timeouts is refused with a ConfigError naming where it came from."""
    ds = transitions(obs=[0, 1, 2], rewards=[1, 1, 1], terminals=[0, 0, 0], timeouts=[0, 0, 0])
    with pytest.raises(ConfigError, match="my offline data"):
        dataset_returns_to_go(ds, 0.9, where="my offline data")


def online_step(buffer, tracker, record, rewards, done):
    """One step of 2 envs: add their pending transitions to the buffer, then let the tracker record them."""
    batch = transitions(obs=[0, 0], rewards=rewards, terminals=[0, 0], timeouts=[0, 0]).replace(mc_returns=jnp.full(2, -jnp.inf))
    rows = buffer.rows_of_next(2)
    buffer = buffer.add(batch)
    tracker, buffer = record(tracker, buffer, rows, jnp.asarray(rewards, jnp.float32), jnp.asarray(done))
    return buffer, tracker


@pytest.mark.parametrize("jit", [False, True])
def test_episode_returns_written_back_when_each_episode_ends(jit):
    """Online rows stay -inf until their episode ends, then hold its discounted returns-to-go."""
    record = lambda t, b, r, rw, d: t.record(b, r, rw, d, 0.9)  # noqa: E731
    record = jax.jit(record) if jit else record
    buffer = ReplayBuffer.create(capacity=16, obs_dim=1, action_dim=1, mc_returns=True)
    tracker = EpisodeReturns.create(num_envs=2, max_length=8)
    # step t writes env 0 to row 2t and env 1 to row 2t + 1; env 0's episode ends at step 2, env 1's at step 4
    rewards = [[1, 1], [2, 1], [3, 1], [4, 1], [5, 1], [6, 7]]
    done = [[False, False], [False, False], [True, False], [False, False], [False, True], [False, False]]
    mc = []
    for step_rewards, step_done in zip(rewards, done, strict=True):
        buffer, tracker = online_step(buffer, tracker, record, step_rewards, step_done)
        mc.append(np.asarray(buffer.data.mc_returns))
    inf = np.inf
    close(mc[1][:4], [-inf] * 4)  # nothing has ended yet
    close(mc[2][[0, 2, 4]], [5.23, 4.7, 3.0], rtol=1e-5)  # env 0: 1 + 0.9 * 4.7, 2 + 0.9 * 3, 3
    close(mc[2][[1, 3, 5]], [-inf] * 3)  # env 1 still running
    env1 = [4.0951, 3.439, 2.71, 1.9, 1.0]  # five rewards of 1: G = 1 + 0.9 G'
    close(mc[4][[1, 3, 5, 7, 9]], env1, rtol=1e-5)
    close(mc[4][[6, 8]], [-inf] * 2)  # env 0's second episode is pending
    close(mc[5][[0, 2, 4, 1, 3, 5, 7, 9]], [5.23, 4.7, 3.0, *env1], rtol=1e-5)  # ended episodes keep their values
    close(mc[5][[6, 8, 10, 11]], [-inf] * 4)  # both new episodes are pending
    assert np.asarray(tracker.length).tolist() == [3, 1]
