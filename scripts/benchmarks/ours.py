"""Our programs: the offline workload (random transitions, every offline agent), SAC and TD3 online on
Pendulum, and PPO on Pendulum and brax hopper.

Only the library's public pieces are used (`build_offline_program`, `build_online_program`, agents,
`envs`), so that `against.py` can run this module against another revision's `jaxrl`.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from dataclasses import dataclass

import jax
import numpy as np

import envs
from benchmarks.timing import Result, check_updates, time_program
from jaxrl.agents import make_agent
from jaxrl.data.dataset import Dataset, next_actions

# `jaxrl` is a namespace package, so an older tree measured by `against.py` sees this checkout's
# jaxrl/engine too: ask which layout the measured tree (first on the path) has.
if importlib.util.find_spec("jaxrl.trainer") is None:
    from jaxrl.engine import phases, sweep, trainer
else:  # revisions before afb8aaf keep the engine's modules flat in jaxrl/
    from jaxrl import sweep, trainer

    # older still: no phases (the benchmarks that need them are not run there)
    phases = importlib.import_module("jaxrl.phases") if importlib.util.find_spec("jaxrl.phases") else None

stack_agents = sweep.stack_agents
build_offline_program, build_online_program = trainer.build_offline_program, trainer.build_online_program
# revisions before PPO have none (`against.py` runs only SAC and IQL there)
build_on_policy_program = getattr(trainer, "build_on_policy_program", None)

try:
    from jaxrl.data.dataset import Normalizer
except ImportError:  # revisions before 6026ebd call it ObsNormalizer
    from jaxrl.data.dataset import ObsNormalizer as Normalizer
if hasattr(sweep, "member_keys"):
    member_keys = sweep.member_keys
else:  # revisions before 6026ebd have no member_keys

    def member_keys(members: list[dict]) -> jax.Array:
        return jax.numpy.stack([jax.random.PRNGKey(m["seed"]) for m in members])


OBS_DIM, ACTION_DIM = 17, 6
OFFLINE_ALGOS = ("bc", "iql", "td3bc", "cql", "awac", "rebrac", "sac-n", "edac")


def seeds(members: int) -> list[dict]:
    return [{"seed": i} for i in range(members)]


def update_counter(states):
    """The agents' update counters where the program's state exposes them (`states.agent.step`), else None."""
    return getattr(getattr(states, "agent", None), "step", None)


def check_counter(label: str, states, after, expected: int) -> None:
    before = update_counter(states)
    if before is None:
        print(f"  {label}: the program's state has no agent.step; update count not checked", flush=True)
    else:
        check_updates(label, before, update_counter(after), expected)


def random_arrays(size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """`size` random transitions as one trajectory (next_observations[i] = observations[i + 1]), with 1%
    terminals and a timeout at the end, so that d3rlpy's MDPDataset and our Dataset hold the same data."""
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((size + 1, OBS_DIM)).astype(np.float32)
    timeouts = np.zeros(size, bool)
    timeouts[-1] = True
    arrays = {
        "observations": obs[:-1],
        "actions": rng.uniform(-1.0, 1.0, (size, ACTION_DIM)).astype(np.float32),
        "rewards": rng.standard_normal(size).astype(np.float32),
        "next_observations": obs[1:],
        "terminals": rng.random(size) < 0.01,
        "timeouts": timeouts,
    }
    arrays["next_actions"] = next_actions(arrays)  # ReBRAC's critic penalty needs them
    return arrays


def offline_spec():
    return envs.EnvSpec(
        name="random",
        obs_shape=(OBS_DIM,),
        action_shape=(ACTION_DIM,),
        action_low=(-1.0,) * ACTION_DIM,
        action_high=(1.0,) * ACTION_DIM,
        max_episode_steps=1000,
    )


def our_agent(algo: str, hidden_dims: tuple[int, ...]):
    """Defaults of `make_agent(algo)` except the network sizes (cql, rebrac, sac-n and edac default to 3x256)."""
    return make_agent(algo, hidden_dims=hidden_dims).configure(offline_spec(), 1_000_000)


def offline_config(dataset_size: int, batch_size: int, hidden_dims: tuple[int, ...]) -> str:
    nets = "x".join(map(str, hidden_dims)) if len(set(hidden_dims)) > 1 else f"{len(hidden_dims)}x{hidden_dims[0]}"
    return f"{nets} nets, batch {batch_size}, obs {OBS_DIM}/act {ACTION_DIM}, {dataset_size // 1000}k random transitions"


@dataclass
class Calibration:
    flops: float | None  # XLA's flop count of one update (one seed)
    update_s: float  # seconds per call of the jitted single update (dispatch included): sizes the chunks


def calibrate(agent, dataset: Dataset, batch_size: int, seconds: float) -> Calibration:
    """Compile one seed's `update` alone: its flop count (XLA cost analysis) and a rough time per update."""
    state = agent.init(jax.random.PRNGKey(0))
    batch = jax.tree.map(lambda x: x[:batch_size], dataset)
    key = jax.random.PRNGKey(1)
    compiled = jax.jit(agent.update).lower(state, batch, key).compile()
    flops = None
    try:
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        flops = float(cost["flops"]) or None
    except Exception as err:  # cost analysis is best-effort and backend-dependent
        print(f"  (flop count unavailable: {err})")
    state = jax.block_until_ready(compiled(state, batch, key))[0]
    calls, t = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - t < seconds:
        state = jax.block_until_ready(compiled(state, batch, key))[0]
        calls += 1
    return Calibration(flops, (time.perf_counter() - t) / calls)


def bench_ours(
    algo: str,
    agent,
    dataset: Dataset,
    members: int,
    chunk_steps: int,
    repeats: int,
    batch_size: int,
    eval_env,
    quiet_wait: float,
    flops: float | None,
    hidden_dims: tuple[int, ...],
) -> Result:
    """`members` seeds of `agent` vmapped in one offline program."""
    program = build_offline_program(
        stack_agents(agent, seeds(members)),
        dataset,
        Normalizer.identity(OBS_DIM),
        eval_env,
        chunk_steps=chunk_steps,
        batch_size=batch_size,
        eval_episodes=1,
    )
    label = f"{algo} (jaxrl) x{members}"
    states = jax.block_until_ready(program.init(member_keys(seeds(members))))
    timing = time_program(program.chunk, states, repeats, label, quiet_wait)
    check_counter(label, states, timing.state, timing.calls * chunk_steps)
    unit = "updates/s" if members == 1 else "member-updates/s"
    plural = "s" if members > 1 else ""
    config = f"{offline_config(dataset.size, batch_size, hidden_dims)}, {members} seed{plural}, chunk {chunk_steps}"
    name = f"{algo} offline, jaxrl, {members} seed{plural}"
    return Result.of(name, config, timing, chunk_steps, members, unit, algo=algo, flops=flops)


def offpolicy_config(batch_size: int, chunk_steps: int) -> str:
    return f"Pendulum-v1, 64x64, batch {batch_size}, 1 env, 1 update/env step, chunk {chunk_steps}"


def bench_offpolicy_ours(
    algo: str, chunk_steps: int, repeats: int, learning_starts: int, buffer_size: int, batch_size: int, quiet_wait: float
) -> Result:
    """Online `algo` ("sac" or "td3") on Pendulum, one env, one update per env step."""
    env = envs.make("gymnax/Pendulum-v1")
    agent = make_agent(algo, hidden_dims=(64, 64)).configure(env.spec, 1_000_000)
    program = build_online_program(
        stack_agents(agent, seeds(1)),
        env,
        chunk_steps=chunk_steps,
        num_envs=1,
        batch_size=batch_size,
        utd=1,
        learning_starts=learning_starts,
        buffer_size=buffer_size,
        eval_episodes=1,
    )
    label = f"{algo.upper()} (jaxrl)"
    states = jax.block_until_ready(program.init(member_keys(seeds(1))))
    # chunk 0 contains the `learning_starts` random steps; every later chunk makes one update per env step
    timing = time_program(program.chunk, states, repeats, label, quiet_wait)
    check_counter(label, states, timing.state, timing.calls * chunk_steps - learning_starts)
    return Result.of(
        f"{algo.upper()} online, jaxrl", offpolicy_config(batch_size, chunk_steps), timing, chunk_steps, 1, "env steps/s"
    )


@dataclass(frozen=True)
class PPOSetting:
    """One PPO workload, given identically to ours and to rejax's."""

    env: str
    num_envs: int
    rollout_length: int  # rejax's num_steps
    epochs: int
    num_minibatches: int
    iterations_per_chunk: int
    hidden_dims: tuple[int, ...] = (64, 64)
    backend: str | None = None  # a brax env's physics (None: the env's default)

    @property
    def env_options(self) -> dict:
        return {"backend": self.backend} if self.backend else {}

    @property
    def chunk_steps(self) -> int:
        return self.num_envs * self.rollout_length * self.iterations_per_chunk

    def describe(self, members: int) -> str:
        plural = "s" if members > 1 else ""
        return (
            f"{self.env}{f' ({self.backend})' if self.backend else ''}, {self.num_envs} envs x {self.rollout_length} steps, {self.epochs} epochs x {self.num_minibatches} "
            f"minibatches, {'x'.join(map(str, self.hidden_dims))} swish, obs normalisation, {members} seed{plural}, chunk {self.chunk_steps}"
        )


def bench_ppo_ours(setting: PPOSetting, members: int, repeats: int, quiet_wait: float) -> Result:
    """`members` seeds of PPO vmapped in one on-policy program."""
    env = envs.make(setting.env, **setting.env_options)
    agent = make_agent(
        "ppo",
        policy_dims=setting.hidden_dims,
        value_dims=setting.hidden_dims,
        rollout_length=setting.rollout_length,
        epochs=setting.epochs,
        num_minibatches=setting.num_minibatches,
    ).configure(env.spec, 1_000_000)
    program = build_on_policy_program(
        stack_agents(agent, seeds(members)), env, chunk_steps=setting.chunk_steps, num_envs=setting.num_envs, eval_episodes=1
    )
    label = f"PPO (jaxrl) {setting.env} x{members}"
    states = jax.block_until_ready(program.init(member_keys(seeds(members))))
    timing = time_program(program.chunk, states, repeats, label, quiet_wait)
    check_counter(label, states, timing.state, timing.calls * setting.iterations_per_chunk)
    unit = "env steps/s" if members == 1 else "member-env steps/s"
    return Result.of(f"PPO {setting.env}, jaxrl", setting.describe(members), timing, setting.chunk_steps, members, unit)


def finetune_config(agent, chunk_steps: int, batch_size: int) -> str:
    sizes = "x".join(map(str, agent.hidden_dims))
    extra = f", {agent.num_perturbations} perturbations" if hasattr(agent, "num_perturbations") else ""
    utd = getattr(agent.for_online(), "critic_updates", 1)
    return (f"Pendulum-v1, {sizes}, {agent.num_critics} critics{extra}, batch {batch_size}, 1 env, "
            f"{utd} critic update{'s' if utd > 1 else ''}/env step, fresh buffer, chunk {chunk_steps}")  # fmt: skip


def bench_finetune_ours(algo: str, members: int, chunk_steps: int, repeats: int, batch_size: int, quiet_wait: float) -> Result:
    """The online phase of offline-to-online fine-tuning (a pretrained agent: no random warm-up, the agent's
    `for_online()` learns) on Pendulum, one env, one update per env step, each algorithm's own networks."""
    Online, WarmStart, build_program = phases.Online, trainer.WarmStart, trainer.build_program

    env = envs.make("gymnax/Pendulum-v1")
    agent = make_agent(algo).configure(env.spec, 1_000_000)
    agents = stack_agents(agent, seeds(members))
    keys = member_keys(seeds(members))
    pretrained = jax.vmap(agent.init)(keys)  # where pretraining would have left it: only its shapes matter here
    spec = Online(chunk_steps * 100, chunk_steps, batch_size, learning_starts=0, buffer_size=100_000,
                  agents=agents.for_online())  # fmt: skip
    program = build_program(agents, [spec], normalizer=Normalizer.identity(env.spec.obs_dim), eval_env=env,
                            eval_episodes=1, env=env, warm_start=WarmStart(pretrained))  # fmt: skip
    return _time_online_program(program, keys, f"{algo} fine-tuning", "online", finetune_config(agent, chunk_steps, batch_size),
                                "env steps", chunk_steps, members, repeats, quiet_wait)  # fmt: skip


def _time_online_program(program, keys, what: str, regime: str, setting: str, unit: str, chunk_steps: int, members: int,
                         repeats: int, quiet_wait: float) -> Result:  # fmt: skip
    """Time the chunks of an online program of `members` seeds; `unit` names what a chunk step is."""
    label = f"{what} (jaxrl) x{members}"
    states = jax.block_until_ready(program.init(keys))
    timing = time_program(program.chunk, states, repeats, label, quiet_wait)
    check_counter(label, states, timing.state, timing.calls * chunk_steps)
    plural = "s" if members > 1 else ""
    unit = f"{unit}/s" if members == 1 else f"member-{unit}/s"
    return Result.of(f"{what} {regime}, jaxrl, {members} seed{plural}", setting, timing, chunk_steps, members, unit)


def bench_hybrid_ours(algo: str, members: int, chunk_steps: int, repeats: int, batch_size: int, quiet_wait: float) -> Result:
    """The hybrid regime's iteration (H2O, or SAC for reference): one simulator step of Pendulum with gravity
    x2, then one update on a batch of half real rows (20k random Pendulum transitions standing in for the
    real data: only their shapes matter for speed) and half simulated ones, classifier step included."""
    Online, build_program = phases.Online, trainer.build_program

    env = envs.make("gymnax/Pendulum-v1")
    agent = make_agent(algo).configure(env.spec, 1_000_000).with_real_share(0.5)
    agents = stack_agents(agent, seeds(members))
    keys = member_keys(seeds(members))
    rng = np.random.default_rng(0)
    n, d = 20_000, env.spec.obs_dim
    obs = rng.standard_normal((n, d)).astype(np.float32)
    real = Dataset.from_numpy(observations=obs, actions=rng.uniform(-1, 1, (n, 1)).astype(np.float32),
                              rewards=rng.standard_normal(n).astype(np.float32), next_observations=obs,
                              terminals=np.zeros(n, np.float32), timeouts=np.zeros(n, np.float32))  # fmt: skip
    spec = Online(chunk_steps * 100, chunk_steps, batch_size, learning_starts=0, buffer_size=200_000, buffer="mix")
    program = build_program(agents, [spec], normalizer=Normalizer.identity(d), eval_env=env, eval_episodes=1, env=env,
                            dataset=real, collect_params=env.dynamics_params(gravity=2.0))  # fmt: skip
    nets = "x".join(map(str, agent.hidden_dims))
    extra = f", classifiers {'x'.join(map(str, agent.discriminator_dims))}" if hasattr(agent, "discriminator_dims") else ""
    setting = (f"Pendulum-v1 sim (gravity x2), {nets}{extra}, batch {batch_size} (half real), 1 env step + 1 update "
               f"per iteration, chunk {chunk_steps}")  # fmt: skip
    return _time_online_program(program, keys, algo, "hybrid", setting, "iterations", chunk_steps, members, repeats, quiet_wait)
