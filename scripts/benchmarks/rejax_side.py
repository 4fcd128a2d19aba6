"""rejax's SAC and TD3 on gymnax Pendulum-v1 and PPO on Pendulum and brax hopper, with the settings of
ours (`ours.bench_offpolicy_ours`, `ours.bench_ppo_ours`), timed the same way."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from benchmarks.ours import PPOSetting, offpolicy_config, seeds
from benchmarks.timing import Result, check_updates, time_program


class FiveTupleStep:
    """gymnax >= 1.0 returns (obs, state, reward, terminated, truncated, info) from `step`; rejax 0.1.3
    unpacks the older (obs, state, reward, done, info). This adapter gives rejax the older form, with
    done = terminated or truncated (what old gymnax returned); it adds no work beyond an `or`."""

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name):
        if name == "env":  # not set yet (copy/deepcopy build the object without __init__)
            raise AttributeError(name)
        return getattr(self.env, name)

    def step(self, key, state, action, params=None):
        out = self.env.step(key, state, action, params)
        if len(out) == 5:
            return out
        obs, state, reward, terminated, truncated, info = out
        return obs, state, reward, jnp.logical_or(terminated, truncated), info


def _import_rejax():
    """(rejax, its version), or the reason it cannot be used."""
    try:
        import rejax
    except ImportError as err:
        return f"rejax not importable ({err}); skipped (install the bench extra: pip install -e '.[bench]')"
    version = getattr(rejax, "__version__", None)
    if version is None:
        try:
            from importlib.metadata import version as dist_version

            version = dist_version("rejax")
        except Exception:
            version = "?"
    return rejax, version


def _no_eval(algo):
    return algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))  # no evaluation inside train


def bench_offpolicy_rejax(
    algo_name: str, chunk_steps: int, repeats: int, learning_starts: int, buffer_size: int, batch_size: int, quiet_wait: float
) -> Result | str:
    """rejax's "sac" or "td3" with the settings of `ours.bench_offpolicy_ours`."""
    imported = _import_rejax()
    if isinstance(imported, str):
        return imported
    rejax, version = imported
    import gymnax

    # One `train` call runs `chunk_steps` env steps and is resumed from the returned train state, so
    # every timed call after the first is pure steady state (updates start once global_step > fill_buffer).
    gymnax_env, env_params = gymnax.make("Pendulum-v1")
    common = dict(
        env=FiveTupleStep(gymnax_env),
        env_params=env_params,
        num_envs=1,
        batch_size=batch_size,
        buffer_size=buffer_size,
        fill_buffer=learning_starts,
        num_epochs=1,
        total_timesteps=chunk_steps,
        eval_freq=chunk_steps,
        skip_initial_evaluation=True,
        learning_rate=3e-4,
        polyak=0.995,
    )  # fmt: skip  (num_epochs: gradient steps per env step; polyak 0.995 = our tau 0.005)
    if algo_name == "sac":
        algo = rejax.SAC.create(hidden_layer_sizes=(64, 64), **common)
    else:  # TD3's settings as ours: exploration noise 0.1, target noise 0.2 clipped at 0.5, policy delay 2
        algo = rejax.TD3.create(exploration_noise=0.1, target_noise=0.2, target_noise_clip=0.5, policy_delay=2, **common)
    label = f"{algo_name.upper()} (rejax {version})"
    train = jax.jit(lambda ts: _no_eval(algo).train(train_state=ts))
    ts = jax.block_until_ready(jax.jit(algo.init_state)(jax.random.PRNGKey(0)))
    timing = time_program(lambda ts, i: train(ts), ts, repeats, label, quiet_wait)
    # rejax updates the critics once per env step once global_step exceeds fill_buffer; SAC compares the
    # count after the step's env step, TD3 the count before it (so its first update comes one step later)
    expected = timing.calls * chunk_steps - learning_starts - (algo_name == "td3")
    check_updates(label, ts.critic_ts.step, timing.state.critic_ts.step, expected)
    name = f"{algo_name.upper()} online, rejax {version}"
    return Result.of(name, offpolicy_config(batch_size, chunk_steps), timing, chunk_steps, 1, "env steps/s", library="rejax")


def _rejax_env(name: str):
    """rejax's own adapters for our env names: gymnax directly, brax through `rejax.compat` (spring, 1,000 steps)."""
    if name.startswith("gymnax/"):
        import gymnax

        env, params = gymnax.make(name.removeprefix("gymnax/"))
        return FiveTupleStep(env), params
    from rejax.compat.brax2gymnax import Brax2GymnaxEnv, create_brax

    class Brax2GymnaxStep(Brax2GymnaxEnv):
        """rejax 0.1.3's brax adapter inherits gymnax 1.x's `step`, which reads a `time` field brax states
        lack; `brax.envs.create` already wraps the env in its episode limit and auto-reset, so `step` is
        the adapter's own `step_env` (the 5-tuple rejax expects)."""

        def step(self, key, state, action, params=None):
            return self.step_env(key, state, action, params)

    env, params = create_brax(name.removeprefix("brax/"), backend="spring", episode_length=1000)
    return Brax2GymnaxStep(env.env), params


def bench_ppo_rejax(setting: PPOSetting, members: int, repeats: int, quiet_wait: float) -> Result | str:
    """rejax's PPO with the settings of `ours.bench_ppo_ours`; `members` seeds vmapped over its train state."""
    imported = _import_rejax()
    if isinstance(imported, str):
        return imported
    rejax, version = imported
    env, env_params = _rejax_env(setting.env)
    algo = rejax.PPO.create(
        env=env,
        env_params=env_params,
        num_envs=setting.num_envs,
        num_steps=setting.rollout_length,
        num_epochs=setting.epochs,
        num_minibatches=setting.num_minibatches,
        total_timesteps=setting.chunk_steps,
        eval_freq=setting.chunk_steps,
        skip_initial_evaluation=True,
        normalize_observations=True,
        agent_kwargs={"hidden_layer_sizes": setting.hidden_dims, "activation": "swish"},
    )
    label = f"PPO (rejax {version}) {setting.env} x{members}"
    train = jax.jit(jax.vmap(lambda ts: _no_eval(algo).train(train_state=ts)))
    keys = jnp.stack([jax.random.PRNGKey(m["seed"]) for m in seeds(members)])
    ts = jax.block_until_ready(jax.jit(jax.vmap(algo.init_state))(keys))
    timing = time_program(lambda ts, i: train(ts), ts, repeats, label, quiet_wait)
    minibatch_steps = setting.iterations_per_chunk * setting.epochs * setting.num_minibatches
    check_updates(label, ts.actor_ts.step[0], timing.state.actor_ts.step[0], timing.calls * minibatch_steps)
    unit = "env steps/s" if members == 1 else "member-env steps/s"
    name = f"PPO {setting.env}, rejax {version}"
    return Result.of(name, setting.describe(members), timing, setting.chunk_steps, members, unit, library="rejax")


def rejax_notes(learning_starts: int, buffer_size: int) -> list[str]:
    return [
        "rejax SAC and TD3 are timed the same way: `jax.jit` of `algo.train(train_state=ts)` for one chunk of env steps, resumed from the returned state, "
        f"with fill_buffer={learning_starts}, num_epochs=1, polyak=0.995, buffer_size={buffer_size} and evaluation replaced by a no-op; "
        "its gymnax env is given the 5-tuple `step` that rejax 0.1.3 expects (gymnax 1.x returns 6 values)",
        "rejax's SAC/TD3 networks use swish, ours relu (same widths, 64x64); rejax's TD3 has no width option (64x64 is its fixed size)",
        "PPO: rejax's `train` of one chunk, vmapped over the seeds' train states, on its own env adapters (gymnax Pendulum; brax hopper "
        "through `rejax.compat.create_brax(..., backend='spring', episode_length=1000)`, the backend and length of ours). Same envs x steps, "
        "epochs, minibatches, widths, swish and observation normalisation; the policies differ in form: rejax's is a Gaussian with a "
        "state-independent std, clipped to the action range; ours is brax's tanh-squashed Gaussian with a state-dependent std",
        "rejax 0.1.3 samples each minibatch without replacement (`jax.random.choice(..., replace=False, p=...)` over the whole "
        "buffer capacity), which costs O(buffer_size) per update; jaxrl samples with replacement (`randint` over the filled part)",
    ]
