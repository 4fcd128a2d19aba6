"""The environment registry, gymnax/brax adapters and the standard wrapper stack."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.core import Env, EnvSpec
from envs.dynamics import DynamicsParams
from envs.wrappers import AutoReset, EpisodeStats, JointNoise, RescaleAction, TimeLimit

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


def test_brax_envs_default_to_mujoco_physics():
    """MuJoCo's physics (mjx) unless a backend is named: brax's spring hopper stands forever with a zero action."""
    for name in ("brax/hopper", "brax/walker2d", "brax/halfcheetah", "brax/ant"):
        assert envs.make(name, wrappers=False).spec.physics == "mjx", name
    spring = envs.make("brax/hopper", wrappers=False, backend="spring")
    assert spring.spec.physics == "spring" and spring.dynamics_names() == ("gravity", "friction", "actuator")


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


@pytest.mark.slow(reason="brax: compiling hopper's physics (19 s)")
def test_brax_hopper_step_and_dynamics():
    """The adapter, and each brax dynamics changes the hopper's motion (one compile: a vmapped rollout)."""
    from envs.brax_env import BraxParams

    env = envs.make("brax/hopper", wrappers=False)  # the adapter and its params (the wrappers are tested above)
    assert env.spec.obs_shape == (11,) and env.spec.action_shape == (3,)
    assert env.dynamics_names() == ("gravity", "friction", "mass", "actuator")
    variants = {
        "default": env.default_params,
        "ones": env.dynamics_params(gravity=1.0, friction=1.0, actuator=1.0),
        "raw": BraxParams(gravity_scale=jnp.float32(2.0), friction_scale=jnp.float32(1.0), mass_scale=jnp.float32(1.0)),
        "gravity": env.dynamics_params(gravity=2.0),
        "friction": env.dynamics_params(friction=0.3),
        "actuator": env.dynamics_params(actuator=2.0),
        "mass": env.dynamics_params(mass=2.0),
    }
    params = jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x, jnp.float32) for x in xs]), *variants.values())
    key, action = jax.random.key(0), jnp.array([1.0, -1.0, 1.0])

    def run(params):
        obs0, state = env.reset(key, params)

        def body(state, _):
            obs, state, reward, terminated, truncated, _ = env.step(key, state, action, params)
            return state, (obs, reward, terminated, truncated)

        # 10 steps: the hopper starts in the air, and friction acts once its foot is down.
        return obs0, jax.lax.scan(body, state, None, length=10)[1]

    obs0, (obs, reward, terminated, truncated) = jax.jit(jax.vmap(run))(params)
    obs, names = np.asarray(obs), list(variants)
    assert obs0.shape == (7, 11) and obs.shape == (7, 10, 11) and np.isfinite(obs).all()
    assert reward.shape == (7, 10) and not np.asarray(truncated).any()
    np.testing.assert_array_equal(obs[names.index("ones")], obs[0])  # scales of 1 are the unmodified env
    np.testing.assert_array_equal(obs[names.index("raw")], obs[names.index("gravity")])  # gravity = gravity_scale
    for name in ("gravity", "actuator", "mass"):
        assert not np.allclose(obs[names.index(name), 0], obs[0, 0]), f"{name} must change the first step"
    assert not np.allclose(obs[names.index("friction"), -1], obs[0, -1]), "friction must change the motion on the ground"


# Named dynamics ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mountain_car():
    return envs.make(MOUNTAIN_CAR)


def set_inner(state, **fields):
    """`state` of the wrapped env with its gymnax state's `fields` replaced."""
    return state.replace(inner=state.inner.replace(inner=inner_state(state).replace(**fields)))


@partial(jax.jit, static_argnums=0)
def trajectory(env, params, state, actions, key):
    """(obs, reward, gymnax state) of each step of `actions` from `state` under `params`."""

    def body(state, xs):
        k, a = xs
        obs, state, reward, *_ = env.step(k, state, a, params)
        return state, (obs, reward, inner_state(state))

    return jax.lax.scan(body, state, (jax.random.split(key, len(actions)), actions))[1]


def theta_dot(env, params, theta, action, steps=1):
    """The pendulum's angular velocity after each of `steps` steps of `action` from rest at `theta` (0: upright)."""
    _, state = env.reset(jax.random.key(0))
    state = set_inner(state, theta=jnp.float32(theta), theta_dot=jnp.float32(0.0), last_u=jnp.float32(0.0))
    return np.asarray(trajectory(env, params, state, jnp.full((steps, 1), action), jax.random.key(1))[2].theta_dot)


class Echo(Env):
    """Stub env whose next obs is (the action it was given, a draw from the key it was given)."""

    spec = EnvSpec("echo", (2,), (1,), (-1.0,), (1.0,), 10)
    default_params = None

    def reset(self, key, params=None):
        return jnp.zeros(2), jnp.zeros(())

    def step(self, key, state, action, params=None):
        obs, no = jnp.concatenate([action, jax.random.uniform(key, (1,))]), jnp.zeros((), bool)
        return obs, state, jnp.float32(0.0), no, no, {}


def test_joint_noise_wrapper_adds_noise_to_the_action_only():
    env, key, action = JointNoise(Echo()), jax.random.key(0), jnp.array([0.25])
    want = Echo().step(key, None, action)[0]
    np.testing.assert_array_equal(np.asarray(env.step(key, None, action)[0]), np.asarray(want))  # sigma 0: untouched
    noisy = env.step(key, None, action, DynamicsParams(None, 0.5))[0]
    assert float(noisy[0]) != 0.25  # the physics sees a noisy action...
    assert float(noisy[1]) == float(want[1])  # ...and the env's own key, unchanged


def test_dynamics_names(pendulum, mountain_car):
    assert pendulum.dynamics_names() == ("gravity", "mass", "length", "max_torque", "joint_noise")
    assert mountain_car.dynamics_names() == ("power", "gravity", "joint_noise")
    raw = envs.make(PENDULUM, wrappers=False)
    assert raw.dynamics_names() == ("gravity", "mass", "length", "max_torque")  # joint noise is a wrapper


@pytest.mark.numerics
def test_default_dynamics_are_the_unmodified_env(pendulum):
    """Scales of 1 and no joint noise are bit for bit the wrapper stack without JointNoise."""
    raw = envs.make(PENDULUM, wrappers=False)
    plain = AutoReset(EpisodeStats(TimeLimit(RescaleAction(raw))))
    actions = jax.random.uniform(jax.random.key(1), (30, 1), minval=-1.5, maxval=1.5)
    _, state = pendulum.reset(jax.random.key(0))
    want = trajectory(plain, raw.default_params, state, actions, jax.random.key(2))
    ones = pendulum.dynamics_params(gravity=1.0, mass=1.0, length=1.0, max_torque=1.0, joint_noise=0.0)
    for params in (pendulum.default_params, pendulum.dynamics_params(), ones):
        got = trajectory(pendulum, params, state, actions, jax.random.key(2))
        for x, y in zip(jax.tree.leaves(want), jax.tree.leaves(got), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # And params=None, unjitted: the defaults as constants, as in a user's script.
    plain_state = state
    for a in actions[:3]:
        want, got = plain.step(jax.random.key(3), plain_state, a), pendulum.step(jax.random.key(3), state, a)
        np.testing.assert_array_equal(np.asarray(want[0]), np.asarray(got[0]))
        plain_state, state = want[1], got[1]


def test_pendulum_dynamics_move_it_as_its_equations_say(pendulum):
    """gymnax: theta_dot += (3 g / (2 l) sin(theta) + 3 / (m l^2) u) dt, u = clip(torque, +-max_torque)."""
    # Falling from near upright without torque: faster under more gravity, slower when longer.
    falling = {k: np.abs(theta_dot(pendulum, pendulum.dynamics_params(**v), 0.1, 0.0, steps=8))
               for k, v in {"default": {}, "gravity": {"gravity": 2.0}, "length": {"length": 1.5}}.items()}  # fmt: skip
    assert (falling["gravity"] > falling["default"]).all() and (falling["length"] < falling["default"]).all()
    np.testing.assert_allclose(falling["gravity"][0], 2 * falling["default"][0], rtol=1e-5)
    np.testing.assert_allclose(falling["length"][0], falling["default"][0] / 1.5, rtol=1e-5)

    # A full torque (action 1: 2 Nm) from upright at rest, where gravity has no moment.
    def pushed(action=1.0, **dynamics):
        return float(theta_dot(pendulum, pendulum.dynamics_params(**dynamics), 0.0, action)[0])

    assert pushed() == pytest.approx(3.0 * 2.0 * 0.05, rel=1e-5)
    assert pushed(mass=2.0) == pytest.approx(pushed() / 2, rel=1e-5)  # the same torque moves a heavier pendulum less
    assert pushed(max_torque=0.5) == pytest.approx(pushed() / 2, rel=1e-5)  # clipped to 1 Nm
    assert pushed(0.5, max_torque=0.5) == pytest.approx(pushed(0.5), rel=1e-6)  # 1 Nm is still allowed


def test_mountain_car_dynamics(mountain_car):
    def velocity(position, action, **dynamics):
        _, state = mountain_car.reset(jax.random.key(0))
        state = set_inner(state, position=jnp.float32(position), velocity=jnp.float32(0.0))
        out = trajectory(
            mountain_car, mountain_car.dynamics_params(**dynamics), state, jnp.full((1, 1), action), jax.random.key(1)
        )
        return float(out[2].velocity[0])

    bottom = -np.pi / 6  # cos(3 x) = 0: gravity has no pull here
    assert velocity(bottom, 1.0, power=2.0) == pytest.approx(2 * velocity(bottom, 1.0), rel=1e-4)
    assert velocity(bottom, 1.0, power=2.0) > velocity(bottom, 1.0) > 0  # full throttle accelerates more
    assert velocity(0.0, 0.0, gravity=2.0) == pytest.approx(2 * velocity(0.0, 0.0), rel=1e-5) and velocity(0.0, 0.0) < 0


def test_joint_noise_perturbs_only_the_physics(pendulum):
    _, state = pendulum.reset(jax.random.key(0))
    action, key = jnp.array([0.2]), jax.random.key(5)
    step = jax.jit(pendulum.step)
    clean = step(key, state, action, pendulum.dynamics_params())
    noisy = step(key, state, action, pendulum.dynamics_params(joint_noise=1.0))
    assert not np.allclose(noisy[0], clean[0]), "joint noise must change the next state"
    assert float(inner_state(clean[1]).last_u) == pytest.approx(0.4)  # 2 * 0.2 Nm, noise-free
    assert abs(float(inner_state(noisy[1]).last_u)) <= 2.0 and float(inner_state(noisy[1]).last_u) != pytest.approx(0.4)
    again = step(key, state, action, pendulum.dynamics_params(joint_noise=1.0))
    np.testing.assert_array_equal(np.asarray(again[0]), np.asarray(noisy[0]))  # a function of the key
    other = step(jax.random.key(6), state, action, pendulum.dynamics_params(joint_noise=1.0))
    assert not np.allclose(other[0], noisy[0])
    # The same noise through `make`'s defaults and params=None.
    sim = envs.make(PENDULUM, dynamics={"joint_noise": 1.0})
    np.testing.assert_array_equal(np.asarray(jax.jit(sim.step)(key, state, action)[0]), np.asarray(noisy[0]))


def test_dynamics_can_be_vmapped(pendulum):
    params = jax.vmap(lambda g: pendulum.dynamics_params(gravity=g))(jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(params.physics.g, [10.0, 20.0])
    _, state = pendulum.reset(jax.random.key(0))
    state = set_inner(state, theta=jnp.float32(0.3))
    key, action = jax.random.key(1), jnp.zeros(1)
    obs = jax.jit(jax.vmap(pendulum.step, in_axes=(None, None, None, 0)))(key, state, action, params)[0]
    assert not np.allclose(obs[0], obs[1])
    np.testing.assert_allclose(obs[0], pendulum.step(key, state, action)[0], rtol=1e-6)
    # Traced values are not range-checked (the sweep's own business).
    assert float(jax.jit(lambda g: pendulum.dynamics_params(gravity=g).g)(jnp.float32(-1.0))) == -10.0


def test_make_with_dynamics_shifts_every_default(pendulum):
    sim = envs.make(PENDULUM, dynamics={"gravity": 2.0, "joint_noise": 0.1})
    assert sim.default_params.g == 20.0 and sim.default_params.joint_noise == 0.1
    layer = sim
    while hasattr(layer, "env"):  # every layer means the same by params=None
        layer = layer.env
        assert layer.default_params.g == 20.0
    _, state = pendulum.reset(jax.random.key(0))
    key, action = jax.random.key(1), jnp.array([0.3])
    np.testing.assert_array_equal(
        np.asarray(sim.step(key, state, action)[0]), np.asarray(pendulum.step(key, state, action, sim.default_params)[0])
    )
    # Scales stay relative to the env's own values; unnamed dynamics keep the shifted defaults.
    assert sim.dynamics_params(gravity=1.0).g == 10.0
    heavy = sim.dynamics_params(mass=2.0)
    assert (heavy.g, heavy.m, heavy.joint_noise) == (20.0, 2.0, 0.1)
    # Raw fields as before, and joint_noise among them.
    assert sim.params_with(g=12.0).g == 12.0 and sim.params_with(g=12.0).joint_noise == 0.1
    both = pendulum.params_with(g=12.0, joint_noise=0.5)
    assert (both.g, both.joint_noise) == (12.0, 0.5)
    with pytest.raises(TypeError, match="params must be DynamicsParams"):
        pendulum.step(key, state, action, envs.make(PENDULUM, wrappers=False).default_params)


PENDULUM_DYNAMICS = r"its dynamics: gravity \(scale > 0\), mass \(scale > 0\), length \(scale > 0\), max_torque \(scale > 0\), joint_noise \(sigma >= 0\)"


@pytest.mark.parametrize(
    "values, error",
    [
        ({"nope": 1.0}, "has no dynamics 'nope'"),
        ({"g": 2.0}, "has no dynamics 'g'"),  # a raw field: that is params_with
        ({"gravity": 0.0}, "dynamics gravity must be a finite number > 0"),
        ({"mass": -2.0}, "dynamics mass must be a finite number > 0"),
        ({"length": float("nan")}, "dynamics length must be a finite number > 0"),
        ({"max_torque": float("inf")}, "dynamics max_torque must be a finite number > 0"),
        ({"gravity": "2"}, "dynamics gravity must be a finite number > 0"),
        ({"gravity": True}, "dynamics gravity must be a finite number > 0"),
        ({"gravity": np.array([1.0, 0.0])}, "dynamics gravity must be a finite number > 0"),
        ({"joint_noise": -0.1}, "dynamics joint_noise must be a finite number >= 0"),
        ({"joint_noise": float("nan")}, "dynamics joint_noise must be a finite number >= 0"),
    ],
)
def test_invalid_dynamics_list_every_name_with_its_range(pendulum, values, error):
    with pytest.raises(ValueError, match=f"^gymnax/Pendulum-v1 {error}.*; {PENDULUM_DYNAMICS}$"):
        pendulum.dynamics_params(**values)
    with pytest.raises(ValueError, match=error):
        envs.make(PENDULUM, dynamics=values)


def test_valid_dynamics_values(pendulum):
    assert pendulum.dynamics_params(gravity=2, joint_noise=0).g == 20.0  # ints
    assert float(pendulum.dynamics_params(gravity=np.float32(0.5)).g) == 5.0
    np.testing.assert_allclose(pendulum.dynamics_params(gravity=np.array([1.0, 2.0])).g, [10.0, 20.0])


def test_params_with_lists_the_parameters_and_joint_noise(pendulum):
    with pytest.raises(ValueError, match=r"has no parameter 'gravity'; its parameters \(defaults\): .*g=10.0.*joint_noise=0.0"):
        pendulum.params_with(gravity=2.0)
    with pytest.raises(ValueError, match="dynamics joint_noise must be a finite number >= 0"):
        pendulum.params_with(joint_noise=-1.0)
    with pytest.raises(ValueError, match="has no dynamics 'joint_noise'"):  # the raw env has no noise layer
        envs.make(PENDULUM, wrappers=False).dynamics_params(joint_noise=0.1)
