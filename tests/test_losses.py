"""Loss functions, value targets, log densities, schedules and the critic ensemble, on hand-computed values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from jaxrl.agents.losses import advantage_weights, expectile_loss, huber_loss, soft_update, td_target
from jaxrl.agents.networks import CriticEnsemble, gaussian_log_prob, sample_tanh_gaussian
from jaxrl.agents.optim import cosine_decay


def close(actual, expected, **kw):
    np.testing.assert_allclose(np.asarray(actual), expected, **{"rtol": 1e-6, "atol": 1e-6, **kw})


def test_expectile_loss():
    close(expectile_loss(jnp.array([2.0, -2.0]), 0.7), [2.8, 1.2])
    close(expectile_loss(jnp.array([0.5, -1.0, 0.0]), 0.9), [0.225, 0.1, 0.0])
    close(expectile_loss(jnp.array([3.0, -3.0]), 0.5), [4.5, 4.5])  # tau = 0.5 is half the squared error


@pytest.mark.parametrize(
    "sigma, diff, expected",
    [
        (1.0, 0.5, 0.125),  # quadratic: 0.5 * 1 * 0.25
        (1.0, -3.0, 2.5),  # linear: 3 - 0.5
        (0.5, 2.0, 0.5),  # threshold 4; quadratic: 0.5 * 0.25 * 4
        (0.5, -6.0, 4.0),  # linear: 6 - 0.5 * 4
        (3.0, 0.1, 0.045),  # threshold 1/9; quadratic: 0.5 * 9 * 0.01
        (3.0, 1.0, 1.0 - 0.5 / 9),  # linear
    ],
)
def test_huber_loss_branches(sigma, diff, expected):
    close(huber_loss(jnp.array([diff, -diff]), sigma), [expected, expected], rtol=1e-5)


@pytest.mark.parametrize("sigma", [0.5, 3.0])
def test_huber_loss_continuous_at_threshold(sigma):
    t = 1.0 / sigma**2
    eps = 1e-4 * t
    below, at, above = np.asarray(huber_loss(jnp.array([t - eps, t, t + eps]), sigma), np.float64)
    quadratic_at_t = 0.5 * sigma**2 * t**2
    assert at == pytest.approx(quadratic_at_t, rel=1e-5)  # both branches meet at 0.5 / sigma^2
    assert below == pytest.approx(at, abs=2 * eps) and above == pytest.approx(at, abs=2 * eps)
    # The slope is continuous too: sigma^2 x -> 1 at the threshold.
    grad = jax.vmap(jax.grad(lambda x: huber_loss(x, sigma)))(jnp.array([t - eps, t + eps]))
    close(grad, [1.0, 1.0], rtol=1e-3)


def test_td_target_masks_terminal_bootstrap():
    target = td_target(jnp.array([1.0, 1.0, -0.5]), jnp.array([0.0, 1.0, 0.0]), jnp.array([10.0, 10.0, 2.0]), 0.9)
    close(target, [10.0, 1.0, 1.3])


def test_advantage_weights_clip():
    w = advantage_weights(jnp.array([0.0, 1.0, -1.0, 10.0]), beta=2.0, max_weight=100.0)
    close(w, [1.0, np.exp(2.0), np.exp(-2.0), 100.0], rtol=1e-5)
    close(advantage_weights(jnp.array([1.0]), beta=3.0, max_weight=5.0), [5.0])


def test_soft_update():
    target = {"a": jnp.array([0.0, 10.0]), "b": {"c": jnp.array(4.0)}}
    online = {"a": jnp.array([1.0, 0.0]), "b": {"c": jnp.array(8.0)}}
    out = soft_update(target, online, 0.25)
    close(out["a"], [0.25, 7.5])
    close(out["b"]["c"], 5.0)
    close(soft_update(target, online, 1.0)["a"], [1.0, 0.0])


def test_gaussian_log_prob_matches_scipy():
    rng = np.random.default_rng(0)
    x, mean = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    log_std = rng.uniform(-1.5, 1.0, size=(4, 3))
    got = gaussian_log_prob(jnp.asarray(x, jnp.float32), jnp.asarray(mean, jnp.float32), jnp.asarray(log_std, jnp.float32))
    assert got.shape == (4,)
    close(got, norm.logpdf(x, mean, np.exp(log_std)).sum(-1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "mean, log_std",
    [([0.0], [0.0]), ([0.5, -1.0], [-1.0, -0.5]), ([2.0, 0.0, -0.3], [-2.0, 0.3, -1.0])],
)
def test_sample_tanh_gaussian_log_prob_change_of_variables(mean, log_std):
    mean, log_std = jnp.array(mean), jnp.array(log_std)
    key = jax.random.key(7)
    action, log_prob = sample_tanh_gaussian(key, mean, log_std)
    u = np.asarray(mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape), np.float64)
    close(action, np.tanh(u), rtol=1e-5)
    m, s = np.asarray(mean, np.float64), np.exp(np.asarray(log_std, np.float64))
    expected = norm.logpdf(u, m, s).sum() - np.log(1.0 - np.tanh(u) ** 2).sum()
    close(log_prob, expected, rtol=1e-4, atol=1e-4)


def test_sample_tanh_gaussian_log_prob_is_stable_when_saturated():
    # tanh(u) rounds to 1 in float32 here, so a naive log(1 - tanh(u)^2) would be -inf.
    mean, log_std = jnp.array([12.0, -15.0]), jnp.array([-3.0, -3.0])
    key = jax.random.key(1)
    _, log_prob = sample_tanh_gaussian(key, mean, log_std)
    u = np.asarray(mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape), np.float64)
    log_det = 2.0 * (np.log(2.0) - np.abs(u) - np.log1p(np.exp(-2.0 * np.abs(u))))  # exact, float64
    expected = norm.logpdf(u, np.asarray(mean, np.float64), np.exp(np.asarray(log_std, np.float64))).sum() - log_det.sum()
    assert np.isfinite(float(log_prob))
    close(log_prob, expected, rtol=1e-4)


@pytest.mark.parametrize(
    "step, expected", [(0, 1e-3), (50, 5e-4), (100, 0.0), (150, 0.0), (25, 1e-3 * 0.5 * (1 + np.cos(np.pi / 4)))]
)
def test_cosine_decay(step, expected):
    assert float(cosine_decay(1e-3, step, 100)) == pytest.approx(expected, abs=1e-9)


def test_cosine_decay_under_jit_with_traced_step():
    lrs = np.asarray(jax.jit(jax.vmap(lambda s: cosine_decay(2.0, s, 10)))(jnp.arange(11)))
    close(lrs[[0, 5, 10]], [2.0, 1.0, 0.0], atol=1e-6)
    assert np.all(np.diff(lrs) <= 0)


def test_critic_ensemble_shape_and_independent_members():
    k, b = 4, 5
    net = CriticEnsemble(hidden_dims=(8, 8), num_critics=k)
    obs, act = jnp.ones((b, 3)), jnp.zeros((b, 1))
    params = net.init(jax.random.key(0), obs, act)
    q = net.apply(params, jax.random.normal(jax.random.key(1), (b, 3)), jax.random.normal(jax.random.key(2), (b, 1)))
    assert q.shape == (k, b)
    for leaf in jax.tree.leaves(params):
        assert leaf.shape[0] == k
    kernels = [np.asarray(leaf) for leaf in jax.tree.leaves(params) if leaf.ndim == 3]
    assert len(kernels) == 3  # two hidden layers and the output layer
    for i in range(k):
        for j in range(i + 1, k):
            assert all(not np.allclose(w[i], w[j]) for w in kernels), f"members {i} and {j} share parameters"
            assert not np.allclose(q[i], q[j]), f"members {i} and {j} give the same Q values"
