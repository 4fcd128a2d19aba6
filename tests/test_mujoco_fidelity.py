"""Our locomotion envs against MuJoCo itself: gymnasium's v4 tasks, whose physics, observations, reward terms
and terminations are those of the gym v3 tasks D4RL's v2 datasets were recorded on.

From the same qpos/qvel and the same actions, our observations (MuJoCo's algorithms in JAX, float32, brax's
models) and MuJoCo's (C, float64, gym's models) agree within the tolerances below. What remains is stated:
gym integrates hopper and walker2d with RK4, brax's models with Euler (MuJoCo's default) at the same 2 ms
step, and brax's walker2d lets only the feet and torso touch the ground; contacts amplify the difference,
so it is largest in the velocities (clipped to +-10 in the observations) and grows with time.
"""

from __future__ import annotations

import numpy as np
import pytest

import envs

gym = pytest.importorskip("gymnasium")
pytest.importorskip("mujoco")
pytestmark = pytest.mark.slow(
    reason="compiles each MuJoCo-physics (mjx) env, 10-15 s each, and steps gymnasium's MuJoCo envs",
    companion="tests/test_envs.py::test_brax_envs_default_to_mujoco_physics",
)

GYM_IDS = {"hopper": "Hopper-v4", "walker2d": "Walker2d-v4", "halfcheetah": "HalfCheetah-v4"}
# Largest |ours - MuJoCo| over the first 50 steps of 3 episodes (positions: the qpos part of the observation,
# velocities: the qvel part), actions uniform in [-0.1, 0.1], measured 2026-12-06 on the 2-core EPYC: hopper
# 0.002 / 0.11, walker2d 0.023 / 2.05, halfcheetah 0.000 / 0.000 (the same model and integrator: float32
# against float64 only). The bounds leave room for other CPUs' rounding, which contacts amplify.
TOLERANCE = {"hopper": (0.02, 0.5), "walker2d": (0.1, 4.0), "halfcheetah": (1e-3, 1e-2)}
# Rewards: the same terms and weights, but the forward velocity is brax's torso's where gym's is the root
# joint's (qpos[0]). Those differ while the torso rotates (up to ~0.1 a step for halfcheetah), and the
# difference telescopes over an episode to (change of the torso's offset from the root) / dt: the returns
# agree. Bounds on the largest per-step difference and on that of the 50-step return (measured: hopper
# 0.009 / 0.04, walker2d 0.02 / 0.25, halfcheetah 0.08 / 0.06).
REWARD_TOLERANCE = {"hopper": (0.1, 0.3), "walker2d": (0.2, 1.0), "halfcheetah": (0.2, 0.2)}
STEPS = 50


@pytest.fixture(scope="module", params=sorted(GYM_IDS))
def pair(request):
    """(name, our raw env, its jitted reset/step, gymnasium's MuJoCo env)."""
    import jax

    name = request.param
    ours = envs.make(f"brax/{name}", wrappers=False)
    theirs = gym.make(GYM_IDS[name]).unwrapped
    init = jax.jit(ours._env.pipeline_init)
    step = jax.jit(lambda state, action: ours.step(None, state, action))
    reset = jax.jit(ours.reset)
    return name, ours, (init, reset, step), theirs


def test_the_task_definition_is_d4rls(pair):
    """Observation layout, reward terms and termination ranges: gym v4's (D4RL v2's) constants."""
    name, ours, _, theirs = pair
    assert ours.spec.obs_shape == theirs.observation_space.shape and ours.spec.action_shape == theirs.action_space.shape
    assert ours.spec.max_episode_steps == 1000 and ours.spec.physics == "mjx"
    np.testing.assert_allclose(ours._env.dt, theirs.dt)
    for term in ("_forward_reward_weight", "_ctrl_cost_weight", "_healthy_reward", "_healthy_z_range", "_healthy_angle_range",
                 "_healthy_state_range", "_reset_noise_scale", "_terminate_when_unhealthy",
                 "_exclude_current_positions_from_observation"):  # fmt: skip
        if hasattr(theirs, term):
            assert getattr(ours._env, term) == getattr(theirs, term), f"{name}: {term}"


def test_the_same_state_and_actions_give_the_same_observations(pair):
    import jax
    import jax.numpy as jnp

    name, ours, (init, reset, step), theirs = pair
    offset = theirs.init_qpos - np.asarray(ours._env.sys.init_q)  # brax's models move some joints' zero
    rng = np.random.default_rng(0)
    n_pos = theirs.observation_space.shape[0] - theirs.model.nv
    worst = np.zeros(4)
    for seed in range(3):
        theirs.reset(seed=seed)
        q, qd = theirs.data.qpos.copy(), theirs.data.qvel.copy()
        _, state = reset(jax.random.PRNGKey(seed))
        state = state.replace(pipeline_state=init(jnp.asarray(q - offset, jnp.float32), jnp.asarray(qd, jnp.float32)))
        # small actions: a hopper driven by uniform [-1, 1] actions falls within ~25 steps
        actions = rng.uniform(-0.1, 0.1, (STEPS, theirs.action_space.shape[0]))
        return_gap = 0.0
        for t, action in enumerate(actions):
            obs_theirs, reward_theirs, terminated, _, _ = theirs.step(action)
            obs, state, reward, done, *_ = step(state, jnp.asarray(action, jnp.float32))
            error = np.abs(np.asarray(obs) - obs_theirs)
            return_gap += float(reward) - reward_theirs
            worst = np.maximum(
                worst, [error[:n_pos].max(), error[n_pos:].max(), abs(float(reward) - reward_theirs), abs(return_gap)]
            )
            assert bool(done) == terminated, f"{name}: termination differs at step {t} of episode {seed}"
            if terminated:
                break
        assert t == STEPS - 1, f"{name}: episode {seed} ended after {t + 1} steps, before the {STEPS} compared"
    pos_tol, vel_tol = TOLERANCE[name]
    assert worst[0] <= pos_tol and worst[1] <= vel_tol, f"{name}: max position / velocity error {worst[:2]}"
    print(f"{name}: max |error| position {worst[0]:.4f}, velocity {worst[1]:.4f}, reward {worst[2]:.4f}, return {worst[3]:.4f}")
    assert worst[2] <= REWARD_TOLERANCE[name][0] and worst[3] <= REWARD_TOLERANCE[name][1], f"{name}: reward errors {worst[2:]}"


# Zero-action episodes (4 resets each, measured 2026-12-06): hopper falls after 129-151 steps in ours,
# 129-186 in MuJoCo (returns 119-151 / 119-197); walker2d after 103-252 / 98-203; halfcheetah never ends
# (|return| < 1 in both). brax's spring hopper stood for 1,000 steps.
ZERO_ACTION_LENGTHS = {"hopper": (100, 300), "walker2d": (60, 300), "halfcheetah": (1000, 1000)}


def test_zero_action_episodes_end_as_mujocos_do(pair):
    import jax
    import jax.numpy as jnp

    name, ours, (_, reset, step), theirs = pair
    low, high = ZERO_ACTION_LENGTHS[name]
    zero = np.zeros(theirs.action_space.shape)
    returns = {"ours": [], "MuJoCo": []}
    for seed in range(4):
        _, state = reset(jax.random.PRNGKey(seed))
        theirs.reset(seed=seed)
        for who in returns:
            total, length = 0.0, 0
            while length < 1000:
                length += 1
                if who == "ours":
                    _, state, reward, done, *_ = step(state, jnp.asarray(zero, jnp.float32))
                    done = bool(done)
                else:
                    _, reward, done, _, _ = theirs.step(zero)
                total += float(reward)
                if done:
                    break
            assert low <= length <= high, f"{name} {who}: a zero action ended after {length} steps (return {total:.1f})"
            returns[who].append(total)
    ours_mean, theirs_mean = np.mean(returns["ours"]), np.mean(returns["MuJoCo"])
    # measured means: hopper 130 / 149, walker2d 104 / 93, halfcheetah 0.2 / 0.1
    assert abs(ours_mean - theirs_mean) <= 0.3 * abs(theirs_mean) + 5, f"{name}: zero-action returns {returns}"


def test_ant_differs_from_d4rls_and_says_how():
    """brax's ant is not gym's: it is offered, but its numbers are not comparable with D4RL's ant (stated here)."""
    ant = envs.make("brax/ant", wrappers=False)
    # D4RL's ant-v2 observations include 84 clipped contact forces (111 in all); brax's ant has none (27),
    # and its model (contacts at the feet only, other densities) drifts ~1 in positions within 50 steps.
    assert ant.spec.obs_shape == (27,) and gym.make("Ant-v4", use_contact_forces=True).observation_space.shape == (111,)
