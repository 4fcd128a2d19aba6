"""The environment registry, gymnax/brax adapters and the standard wrapper stack."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.core import Env, EnvSpec
from envs.wrappers import RescaleAction, TimeLimit

PENDULUM = "gymnax/Pendulum-v1"
MOUNTAIN_CAR = "gymnax/MountainCarContinuous-v0"


def inner_state(state):
    """The gymnax state under AutoReset(EpisodeStats(TimeLimit(RescaleAction(env))))."""
    return state.inner.inner


def rollout(env, key, actions):
    """Scan `env.step` over `actions` from `env.reset(key)`; returns (first obs, step keys, stacked outputs)."""
    obs0, state = env.reset(key)
    keys = jax.random.split(jax.random.fold_in(key, 1), len(actions))

    def body(state, xs):
        k, a = xs
        obs, state, reward, terminated, truncated, info = env.step(k, state, a)
        return state, (obs, reward, terminated, truncated, info)

    _, out = jax.lax.scan(body, state, (keys, actions))
    return obs0, keys, out


def test_unknown_env_lists_registered_names():
    with pytest.raises(envs.UnknownEnvError) as err:
        envs.make("nope")
    assert isinstance(err.value, KeyError)
    message = str(err.value)
    assert "'nope'" in message
    for name in (PENDULUM, MOUNTAIN_CAR, "brax/hopper"):
        assert name in message


def test_gymnax_rejects_options():
    with pytest.raises(TypeError, match="takes no options"):
        envs.make(PENDULUM, backend="spring")


def test_pendulum_spec():
    raw = envs.make(PENDULUM, wrappers=False).spec
    assert (raw.action_low, raw.action_high) == ((-2.0,), (2.0,))
    spec = envs.make(PENDULUM).spec
    assert spec.name == PENDULUM
    assert spec.obs_shape == (3,) and spec.obs_dim == 3
    assert spec.action_shape == (1,) and spec.action_dim == 1
    assert (spec.action_low, spec.action_high) == ((-1.0,), (1.0,))
    assert spec.max_episode_steps == 200


@pytest.mark.numerics
@pytest.mark.parametrize("action, torque", [(1.0, 2.0), (-1.0, -2.0), (0.0, 0.0), (0.5, 1.0), (3.0, 2.0), (-7.0, -2.0)])
def test_rescale_action_maps_onto_bounds(action, torque):
    raw = envs.make(PENDULUM, wrappers=False)
    wrapped = envs.make(PENDULUM)
    key = jax.random.key(3)
    _, raw_state = raw.reset(key)
    _, state = wrapped.reset(key)
    a = jnp.array([action], jnp.float32)

    # Through RescaleAction alone: same transition as the raw env with the rescaled action.
    want = raw.step(key, raw_state, jnp.array([torque]))
    got = RescaleAction(raw).step(key, raw_state, a)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-6)
    assert float(got[1].last_u) == pytest.approx(torque)

    # Through the full stack: AutoReset hands its first key split to the inner env.
    obs, state, reward, *_ = wrapped.step(key, state, a)
    raw_obs, _, raw_reward, *_ = raw.step(jax.random.split(key)[0], raw_state, jnp.array([torque]))
    np.testing.assert_allclose(obs, raw_obs, rtol=1e-6)
    np.testing.assert_allclose(reward, raw_reward, rtol=1e-6)
    assert float(inner_state(state).last_u) == pytest.approx(torque)


@pytest.fixture(scope="module")
def pendulum_rollout():
    """401 steps of the wrapped Pendulum under a random policy, plus the raw env's trajectory."""
    env, raw = envs.make(PENDULUM), envs.make(PENDULUM, wrappers=False)
    key = jax.random.key(0)
    actions = jax.random.uniform(jax.random.key(1), (401, 1), minval=-1.0, maxval=1.0)
    obs0, keys, out = jax.jit(lambda k, a: rollout(env, k, a))(key, actions)

    def raw_rollout(key, keys, actions):
        _, state = raw.reset(key)

        def body(state, xs):
            k, a = xs
            obs, state, reward, terminated, truncated, _ = raw.step(jax.random.split(k)[0], state, 2.0 * a)
            return state, (obs, reward, terminated, truncated)

        return jax.lax.scan(body, state, (keys[:200], actions[:200]))[1]

    raw_out = jax.jit(raw_rollout)(key, keys, actions)
    return dict(env=env, raw=raw, key=key, keys=keys, obs0=obs0, out=out, raw_out=raw_out)


def test_time_limit_truncates_pendulum(pendulum_rollout):
    _, _, terminated, truncated, info = pendulum_rollout["out"]
    terminated, truncated = np.asarray(terminated), np.asarray(truncated)
    assert not terminated.any()  # Pendulum never terminates
    assert np.flatnonzero(truncated).tolist() == [199, 399]  # steps 200 and 400, not 199
    assert not truncated[198]
    length = np.asarray(info["episode_length"])
    assert length[198] == 199 and length[199] == 200 and length[399] == 200
    np.testing.assert_array_equal(np.asarray(info["episode_done"]), truncated)


@pytest.mark.numerics
def test_auto_reset_final_obs_and_episode_stats(pendulum_rollout):
    r = pendulum_rollout
    obs, reward, _, _, info = r["out"]
    raw_obs, raw_reward, raw_terminated, raw_truncated = r["raw_out"]
    assert not np.asarray(raw_truncated).any() and not np.asarray(raw_terminated).any()

    # final_obs is the true next observation for the whole first episode, the done step included.
    np.testing.assert_allclose(info["final_obs"][:200], raw_obs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(obs[:199], raw_obs[:199], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reward[:200], raw_reward, rtol=1e-5, atol=1e-6)

    # On the done step the returned obs is a fresh reset from AutoReset's second key split.
    reset_obs, _ = r["raw"].reset(jax.random.split(r["keys"][199])[1])
    np.testing.assert_allclose(obs[199], reset_obs, rtol=1e-6)
    assert not np.allclose(obs[199], raw_obs[199])

    # Episode statistics: the full return at the done step, then the counters restart.
    returns, lengths = np.asarray(info["episode_return"]), np.asarray(info["episode_length"])
    np.testing.assert_allclose(returns[199], np.asarray(raw_reward, np.float64).sum(), rtol=1e-4)
    np.testing.assert_allclose(returns[:200], np.cumsum(np.asarray(raw_reward)), rtol=1e-4)
    assert lengths[200] == 1 and returns[200] == pytest.approx(float(reward[200]))
    np.testing.assert_allclose(returns[399], np.asarray(reward[200:400], np.float64).sum(), rtol=1e-4)


class Countdown(Env):
    """Stub env whose state is a step counter and which terminates at step `end`."""

    def __init__(self, end: int, limit: int):
        self.end = end
        self.spec = EnvSpec("countdown", (1,), (1,), (-1.0,), (1.0,), limit)
        self.default_params = None

    def reset(self, key, params=None):
        return jnp.zeros(1), jnp.zeros((), jnp.int32)

    def step(self, key, state, action, params=None):
        state = state + 1
        return state[None].astype(jnp.float32), state, jnp.float32(1.0), state >= self.end, jnp.zeros((), bool), {}


@pytest.mark.parametrize("end, limit, want", [(5, 5, (True, False)), (7, 5, (False, True)), (3, 5, (True, False))])
def test_time_limit_never_reports_both(end, limit, want):
    env = TimeLimit(Countdown(end, limit))
    _, state = env.reset(jax.random.key(0))
    for _ in range(min(end, limit)):
        _, state, _, terminated, truncated, _ = env.step(jax.random.key(0), state, jnp.zeros(1))
    assert (bool(terminated), bool(truncated)) == want


def test_mountain_car_terminates_at_goal_not_truncated():
    env = envs.make(MOUNTAIN_CAR)
    assert env.spec.max_episode_steps == 999

    @jax.jit
    def run(key):
        _, state = env.reset(key)

        def body(state, k):
            velocity = inner_state(state).velocity
            action = jnp.where(velocity >= 0, 1.0, -1.0)[None]  # pump energy at full throttle
            obs, state, reward, terminated, truncated, info = env.step(k, state, action)
            return state, (terminated, truncated, reward, info["final_obs"])

        return jax.lax.scan(body, state, jax.random.split(key, 999))[1]

    terminated, truncated, reward, final_obs = map(np.asarray, run(jax.random.key(0)))
    assert terminated.any(), "the energy-pumping policy should reach the goal"
    t = int(np.argmax(terminated))
    assert t < 998  # well before the time limit
    assert not truncated[: t + 1].any()
    assert final_obs[t, 0] >= 0.45  # at the goal position
    assert reward[t] > 90.0  # the goal bonus of 100, minus the action cost


def test_jit_vmap_over_envs():
    env = envs.make(PENDULUM)
    keys = jax.random.split(jax.random.key(0), 4)
    obs, state = jax.jit(jax.vmap(env.reset))(keys)
    assert obs.shape == (4, 3)
    actions = jnp.linspace(-1, 1, 4)[:, None]
    obs2, state, reward, terminated, truncated, info = jax.jit(jax.vmap(env.step))(keys, state, actions)
    assert obs2.shape == (4, 3) and reward.shape == (4,) and terminated.shape == (4,) and truncated.shape == (4,)
    assert info["final_obs"].shape == (4, 3)
    assert len({tuple(np.round(o, 6)) for o in np.asarray(obs)}) == 4  # independent copies
    np.testing.assert_array_equal(np.asarray(info["episode_length"]), [1, 1, 1, 1])


def test_brax_hopper_step_and_params():
    from envs.brax_env import BraxParams

    env = envs.make("brax/hopper", wrappers=False)  # the adapter and its params (the wrappers are tested above)
    assert env.spec.obs_shape == (11,) and env.spec.action_shape == (3,)
    key = jax.random.key(0)
    obs, state = jax.jit(env.reset)(key)
    assert obs.shape == (11,)
    step = jax.jit(env.step)
    action = jnp.full((3,), 0.5)
    heavy = BraxParams(gravity_scale=jnp.float32(2.0), friction_scale=jnp.float32(1.0), mass_scale=jnp.float32(1.0))
    next_default, _, reward, terminated, truncated, _ = step(key, state, action, env.default_params)
    next_heavy, *_ = step(key, state, action, heavy)
    assert next_default.shape == (11,) and np.isfinite(np.asarray(next_default)).all()
    assert reward.shape == () and not bool(truncated)
    assert not np.allclose(next_default, next_heavy), "gravity_scale must change the dynamics"
