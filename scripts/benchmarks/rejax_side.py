"""rejax's SAC on gymnax Pendulum-v1, with the settings of ours (`ours.bench_sac_ours`), timed the same way."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from benchmarks.ours import sac_config
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


def bench_sac_rejax(
    chunk_steps: int, repeats: int, learning_starts: int, buffer_size: int, batch_size: int, quiet_wait: float
) -> Result | str:
    try:
        import gymnax
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
    # One `train` call runs `chunk_steps` env steps and is resumed from the returned train state, so
    # every timed call after the first is pure steady state (updates start once global_step > fill_buffer).
    gymnax_env, env_params = gymnax.make("Pendulum-v1")
    algo = rejax.SAC.create(
        env=FiveTupleStep(gymnax_env),
        env_params=env_params,
        hidden_layer_sizes=(64, 64),
        num_envs=1,
        batch_size=batch_size,
        buffer_size=buffer_size,
        fill_buffer=learning_starts,
        num_epochs=1,  # gradient steps per env step (per train iteration with 1 env)
        total_timesteps=chunk_steps,
        eval_freq=chunk_steps,
        skip_initial_evaluation=True,
        learning_rate=3e-4,
        polyak=0.995,  # tau = 0.005, as ours
    )
    algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))  # no evaluation inside train
    train = jax.jit(lambda ts: algo.train(train_state=ts))
    ts = jax.block_until_ready(jax.jit(algo.init_state)(jax.random.PRNGKey(0)))
    timing = time_program(lambda ts, i: train(ts), ts, repeats, f"SAC (rejax {version})", quiet_wait)
    # rejax updates once global_step (counted after the env step) exceeds fill_buffer
    check_updates(
        f"SAC (rejax {version})", ts.actor_ts.step, timing.state.actor_ts.step, timing.calls * chunk_steps - learning_starts
    )
    return Result.of(f"SAC online, rejax {version}", sac_config(batch_size, chunk_steps), timing, chunk_steps, 1, "env steps/s")


def rejax_notes(learning_starts: int, buffer_size: int) -> list[str]:
    return [
        "rejax SAC is timed the same way: `jax.jit` of `algo.train(train_state=ts)` for one chunk of env steps, resumed from the returned state, "
        f"with fill_buffer={learning_starts}, num_epochs=1, polyak=0.995, buffer_size={buffer_size} and evaluation replaced by a no-op; "
        "its gymnax env is given the 5-tuple `step` that rejax 0.1.3 expects (gymnax 1.x returns 6 values)",
        "rejax 0.1.3 samples each minibatch without replacement (`jax.random.choice(..., replace=False, p=...)` over the whole "
        "buffer capacity), which costs O(buffer_size) per update; jaxrl samples with replacement (`randint` over the filled part)",
    ]
