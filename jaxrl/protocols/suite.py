"""Generated D4RL-style dataset suites: train an online agent, then collect the standard levels.

Levels (as in D4RL): random (uniform actions), medium (a policy snapshot at a fraction of expert
performance), expert (the best snapshot), medium-replay (what the agent collected up to the medium
snapshot), medium-expert (medium and expert concatenated), full-replay (everything it collected).
The generating agent is a profile's choice: SAC (D4RL's, off-policy: "collected" is its replay buffer)
or PPO (on-policy, thousands of envs: "collected" is the rollouts of the first `record_envs` envs, since
keeping every env's would be tens of millions of transitions). A suite is deterministic given (env,
profile, seed) on one machine (another machine's float rounding gives other, equally valid numbers),
cached on disk, and stores the random and expert policies' mean returns as `ref_min_score` /
`ref_max_score` for normalised scores.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import envs

try:
    import fcntl
except ImportError:
    fcntl = None
from jaxrl.agents import AGENTS
from jaxrl.data.d4rl import D4RL_LEVELS
from jaxrl.data.dataset import Dataset
from jaxrl.data.io import data_dir, load_dataset, save_dataset
from jaxrl.engine import trainer
from jaxrl.engine.evaluation import evaluate_policy
from jaxrl.engine.hooks import AgentSnapshots
from jaxrl.engine.run_dir import RunDir, cpu_model
from jaxrl.engine.trainer import build_on_policy_program, build_online_program

LEVELS = D4RL_LEVELS  # a suite generates D4RL's levels, under D4RL's names
SUITE_FORMAT = 3  # bump when generation changes, so stale caches are rebuilt (3: brax envs on MuJoCo physics, mjx)
GENERATORS = ("sac", "ppo", "scripted")


@dataclass(frozen=True)
class SuiteProfile:
    agent_steps: int  # online env steps used to train the generating agent
    snapshot_every: int  # env steps between policy snapshots
    transitions: int  # per level for random / medium / expert
    generator: str = "sac"  # the generating agent: "sac" (D4RL's), "ppo", or "scripted" (PathWorld's expert)
    agent_settings: tuple[tuple[str, Any], ...] = (("hidden_dims", (64, 64)),)  # its hyperparameters
    num_envs: int = 8  # envs stepped in parallel while training the generating agent
    utd: float = 0.125  # SAC: updates per env step (below 1 the replay levels hold more, older data)
    learning_starts: int = 1000  # SAC: uniform random actions before it starts learning
    batch_size: int = 256  # SAC
    record_envs: int = 0  # PPO: envs whose rollouts make the replay levels
    # Snapshots are scored, and medium/expert collected, with the policy's mean action (PPO's and brax's
    # evaluation convention) rather than a sample (as D4RL's SAC data): the `small` hopper's PPO expert
    # scored 905 with its mean action and 814 with its exploration noise.
    deterministic: bool = False
    medium_fraction: float = 0.5  # medium = the snapshot closest to this fraction of the expert score
    eval_episodes: int = 20
    collect_envs: int = 100  # envs stepped in parallel while collecting

    def __post_init__(self):
        if self.generator not in GENERATORS:
            raise ValueError(f"suite generator must be one of {GENERATORS}, got {self.generator!r}")
        if self.generator == "ppo" and not 0 < self.record_envs <= self.num_envs:
            raise ValueError(f"a PPO suite needs record_envs in [1, num_envs={self.num_envs}], got {self.record_envs}")

    @property
    def recorded_envs(self) -> int:
        """Envs whose every transition is kept, in time order, for the replay levels."""
        return self.record_envs if self.generator == "ppo" else self.num_envs


PROFILES: dict[str, dict[str, SuiteProfile]] = {
    "gymnax/Pendulum-v1": {
        "default": SuiteProfile(agent_steps=128_000, snapshot_every=2_000, transitions=100_000),
        # checks the pipeline only (its agent barely learns); the test suite generates it twice
        "smoke": SuiteProfile(
            agent_steps=4_000,
            snapshot_every=1_000,
            transitions=2_000,
            agent_settings=(("hidden_dims", (16, 16)),),
            utd=0.25,
            num_envs=4,
            eval_episodes=2,
            collect_envs=4,
            learning_starts=500,
            batch_size=32,
        ),
        # the same check for a PPO-generated suite
        "smoke-ppo": SuiteProfile(
            agent_steps=4_096,
            snapshot_every=1_024,
            transitions=2_000,
            generator="ppo",
            agent_settings=(("policy_dims", (16, 16)), ("value_dims", (16, 16)), ("rollout_length", 16), ("num_minibatches", 4)),
            num_envs=16,
            record_envs=2,
            deterministic=True,
            eval_episodes=2,
            collect_envs=4,
        ),
    },
    "gymnax/MountainCarContinuous-v0": {
        "default": SuiteProfile(agent_steps=400_000, snapshot_every=8_000, transitions=100_000),
    },
}


# Brax locomotion. "full" is D4RL's recipe (SAC for 1M env steps, medium at a third of the expert, 1M
# transitions per level), for a GPU. "small" is sized for a 2-core CPU: PPO, whose thousands of envs
# are cheap on a CPU where SAC's updates are not (its measured returns and times: README). "smoke"
# only checks the pipeline.
def _ppo_small(agent_steps: int, snapshot_every: int = 491_520) -> SuiteProfile:
    """PPO with 512 envs x 32 steps per update (4 epochs of 8 minibatches), sized per env to 30 minutes."""
    return SuiteProfile(
        agent_steps=agent_steps,
        snapshot_every=snapshot_every,
        transitions=100_000,
        generator="ppo",
        agent_settings=(("rollout_length", 32), ("num_minibatches", 8), ("gamma", 0.99)),
        num_envs=512,
        record_envs=16,  # replay levels: 16 of the 512 envs' transitions (1/32 of what PPO collected)
        deterministic=True,
        medium_fraction=1 / 3,
        eval_episodes=10,
        collect_envs=100,
    )


# Budgets for MuJoCo physics (mjx): hopper's generating PPO runs at ~4.3k env steps/s on the 2-core EPYC,
# so 9.8M steps take ~40 min (README's table); walker2d's took 51 min for the same 9.8M (3.2k steps/s);
# halfcheetah's 7.4M steps ~70 min alone (~1.8k steps/s; its expert still improving at the end). Ant's was
# sized to ~30 min on brax's spring physics and is not re-measured on mjx.
_SMALL = {
    "hopper": _ppo_small(9_830_400),
    "walker2d": _ppo_small(9_830_400),
    "ant": _ppo_small(8_847_360),
    "halfcheetah": _ppo_small(7_372_800),
}
_SMOKE = SuiteProfile(agent_steps=2_000, snapshot_every=1_000, transitions=2_000,
                      agent_settings=(("hidden_dims", (16, 16)),), num_envs=4, utd=0.25, eval_episodes=2,
                      collect_envs=4, learning_starts=500, batch_size=32)  # fmt: skip
_FULL = SuiteProfile(agent_steps=1_000_000, snapshot_every=20_000, transitions=1_000_000,
                     agent_settings=(("hidden_dims", (256, 256)),), num_envs=16, utd=1.0, medium_fraction=1 / 3,
                     eval_episodes=10, collect_envs=1000, learning_starts=10_000)  # fmt: skip
PROFILES.update({f"brax/{name}": {"full": _FULL, "small": small, "smoke": _SMOKE} for name, small in _SMALL.items()})

# PathWorld: the scripted expert at noise levels (`SCRIPTED_NOISE`), no agent to train.
_SCRIPTED = {
    "default": SuiteProfile(agent_steps=0, snapshot_every=1, transitions=100_000, generator="scripted", eval_episodes=100),
    "smoke": SuiteProfile(
        agent_steps=0, snapshot_every=1, transitions=3_000, generator="scripted", eval_episodes=20, collect_envs=20
    ),  # fmt: skip
}
PROFILES.update({f"pathworld/{task}": _SCRIPTED for task in ("reach", "push", "pick-place", "touch", "avoid")})


def suite_dir(env_name: str, profile: str, seed: int, root: Path | None = None) -> Path:
    return (root or data_dir()) / env_name.replace("/", "_") / f"{profile}-seed{seed}"


def _profile(env_name: str, profile: str) -> SuiteProfile:
    if env_name not in PROFILES:
        raise ValueError(f"no dataset suite is defined for {env_name!r}; suites exist for: {', '.join(sorted(PROFILES))}")
    if profile not in PROFILES[env_name]:
        raise ValueError(f"unknown suite profile {profile!r} for {env_name}; profiles: {', '.join(sorted(PROFILES[env_name]))}")
    return PROFILES[env_name][profile]


def collect(env, policy, key, num_transitions: int, num_envs: int, params=None) -> Dataset:
    """Roll out `policy(obs, key)` in `num_envs` envs (env `params`; None: the env's own). Episodes are
    laid out contiguously per env and the final, unfinished episode of every env is closed with a timeout flag."""
    steps = -(-num_transitions // num_envs)
    reset_key, key = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, num_envs), params)

    def step(carry, key):
        obs, state = carry
        act_key, env_key = jax.random.split(key)
        action = policy(obs, act_key)
        next_obs, state, reward, terminated, truncated, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(env_key, num_envs), state, action, params
        )
        return (next_obs, state), (obs, action, reward, info["final_obs"], terminated, truncated)

    _, rows = jax.lax.scan(step, (obs, state), jax.random.split(key, steps))
    obs, action, reward, next_obs, terminated, truncated = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), rows)
    truncated = truncated.at[:, -1].set(~terminated[:, -1])
    flat = lambda x: x.reshape(num_envs * steps, *x.shape[2:])[:num_transitions]  # noqa: E731
    f32 = lambda x: flat(x).astype(jnp.float32)  # noqa: E731
    return Dataset(flat(obs), flat(action), flat(reward), flat(next_obs), f32(terminated), f32(truncated))


@functools.lru_cache(maxsize=8)
def _jit_label(path_label):
    return jax.jit(path_label)


def label_episodes(data: Dataset, path_label) -> Dataset:
    """`data` with `paths`: every row gets `path_label(first observations)` of its episode, computed
    once per episode."""
    ends = np.asarray(data.terminals, bool) | np.asarray(data.timeouts, bool)
    episode = np.concatenate([[0], np.cumsum(ends)[:-1]])
    starts = np.flatnonzero(np.concatenate([[True], ends[:-1]]))
    padded = np.resize(starts, 1 << int(len(starts) - 1).bit_length())  # few shapes, few compilations
    return data.replace(paths=_jit_label(path_label)(data.observations[padded])[episode])


def _concat(*datasets: Dataset) -> Dataset:
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *datasets)


@contextlib.contextmanager
def _exclusive(directory: Path):
    """Hold an inter-process lock on `directory`: two jobs that need the same suite on a fresh machine
    (parallel tests, two training runs) generate it once, and never write the same files at once."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as handle:
        if fcntl is not None:  # not POSIX: no lock, as before
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


def _is_complete(out: Path) -> bool:
    info_path = out / "suite.json"
    return (
        info_path.exists()
        and json.loads(info_path.read_text()).get("format") == SUITE_FORMAT
        and all((out / f"{level}.hdf5").exists() for level in LEVELS)
    )


def suite_ready(env_name: str, profile: str = "default", seed: int = 0, root: Path | None = None) -> bool:
    """Whether every level of the suite is generated (in the cache)."""
    return _is_complete(suite_dir(env_name, profile, seed, root))


def generate_suite(
    env_name: str, profile: str = "default", seed: int = 0, root: Path | None = None, verbose: bool = True
) -> Path:
    """Generate (or reuse from the cache) every level of a suite; returns its directory."""
    prof = _profile(env_name, profile)
    out = suite_dir(env_name, profile, seed, root)
    if _is_complete(out):
        return out
    with _exclusive(out):
        if not _is_complete(out):  # another process may have finished it while we waited
            _generate(env_name, profile, seed, prof, out, verbose)
    return out


def _generating_program(env, prof: SuiteProfile):
    """The generating agent and its one-member online program, whose chunks are `snapshot_every` env steps."""
    agent = AGENTS[prof.generator](**dict(prof.agent_settings)).configure(env.spec, prof.agent_steps)
    agents = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32)[None], agent)
    if prof.generator == "ppo":
        program = build_on_policy_program(agents, env, chunk_steps=prof.snapshot_every, num_envs=prof.num_envs,
                                          eval_episodes=1, steps=prof.agent_steps, record_envs=prof.record_envs)  # fmt: skip
    else:
        program = build_online_program(agents, env, chunk_steps=prof.snapshot_every, num_envs=prof.num_envs,
                                       batch_size=prof.batch_size, utd=prof.utd, learning_starts=prof.learning_starts,
                                       buffer_size=prof.agent_steps, eval_episodes=1, steps=prof.agent_steps)  # fmt: skip
    return agent, program


def _machine() -> str:
    """Where a suite was generated: its numbers depend on the machine's float rounding."""
    return f"{cpu_model()}, {os.cpu_count()} CPUs, jax {jax.__version__} on {jax.devices()[0].device_kind}"


def _generate(env_name: str, profile: str, seed: int, prof: SuiteProfile, out: Path, verbose: bool) -> None:
    log = print if verbose else (lambda *a, **k: None)
    t0 = time.perf_counter()
    env = envs.make(env_name)
    how = (
        "the scripted expert at several noise levels"
        if prof.generator == "scripted"
        else (f"{prof.agent_steps:,} env steps of an online {prof.generator.upper()} agent, snapshotted as it learns")
    )
    log(f"[{env_name}] generating the {profile!r} dataset suite ({', '.join(LEVELS)}) into {out}, since it is "
        f"not in the cache yet (made once, then reused): {how}", flush=True)  # fmt: skip
    common = {"env": env_name, "profile": profile, "seed": seed, "generator": prof.generator, "format": SUITE_FORMAT,
              **({"physics": env.spec.physics} if env.spec.physics else {})}  # fmt: skip
    if prof.generator == "scripted":
        datasets, levels = _scripted_levels(env, prof, jax.random.PRNGKey(seed))
    else:
        datasets, levels = _learned_levels(env, prof, jax.random.PRNGKey(seed), out, common, log, t0)
    _write_suite(out, datasets, {**common, **levels}, prof, t0)
    # The generator's run keeps its config and training metrics; its checkpoints and snapshots were only
    # there to resume it.
    for name in ("checkpoints", "snapshots"):
        shutil.rmtree(out / "generator" / name, ignore_errors=True)
    log(f"[{env_name}] wrote {len(datasets)} datasets to {out} in {time.perf_counter() - t0:.0f} s")


# The scripted expert's action noise per level (a std in [-1, 1] action units, before clipping). The
# expert re-plans every step, so it shrugs off small noise: 0.6 still scores 97-101% of the expert's
# normalised return, 3.0 scores 55-67% (reach, push, pick-place; 100 episodes each), D4RL's medium
# range. Replay levels stand in for a learner's history: n / 8 transitions per noise level, falling
# from 8 (nearly uniform) to medium's (medium-replay, 5/8 of n) or to expert's (full-replay, n).
SCRIPTED_NOISE = {"expert": 0.1, "medium": 3.0}
REPLAY_NOISE = {"medium-replay": (8.0, 6.0, 5.0, 4.0, 3.0), "full-replay": (8.0, 6.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.1)}


def _scripted_levels(env, prof: SuiteProfile, key):
    """Every level from a scripted expert (PathWorld) at a noise level, with the expert's path labels."""
    from envs.pathworld.expert import expert_action, path_label  # noqa: PLC0415 (only PathWorld suites need it)

    params = env.default_params

    def expert(noise):
        return jax.vmap(lambda o, k: expert_action(params, o, k, noise))

    def policy(noise):
        return lambda obs, key: expert(noise)(obs, jax.random.split(key, obs.shape[0]))

    def random_policy(obs, key):
        return jax.random.uniform(key, (obs.shape[0], env.spec.action_dim), minval=-1.0, maxval=1.0)

    label = jax.vmap(lambda o: path_label(params, o))
    k_eval, k_random, k_levels = jax.random.split(key, 3)
    # noise is an argument, not a constant, so every noise level shares one compiled program
    score = jax.jit(lambda noise: evaluate_policy(env, policy(noise), k_eval, prof.eval_episodes).mean())
    random_return = float(jax.jit(lambda: evaluate_policy(env, random_policy, k_eval, prof.eval_episodes).mean())())
    expert_return, medium_return = float(score(SCRIPTED_NOISE["expert"])), float(score(SCRIPTED_NOISE["medium"]))
    n, ne = prof.transitions, prof.collect_envs
    # every level but random is parts of n / 8 transitions, one noise level each, all in one program
    part = max(n // 8, ne)
    noises = {"medium": [SCRIPTED_NOISE["medium"]] * 8, "expert": [SCRIPTED_NOISE["expert"]] * 8, **REPLAY_NOISE}
    flat = jnp.array([noise for level in noises.values() for noise in level])
    run = jax.jit(jax.vmap(lambda noise, k: collect(env, policy(noise), k, part, ne)))
    parts = run(flat, jax.random.split(k_levels, len(flat)))
    datasets, start = {"random": collect(env, random_policy, k_random, n, ne)}, 0
    for level, level_noises in noises.items():
        datasets[level] = _concat(*(jax.tree.map(lambda x, i=i: x[i], parts) for i in range(start, start + len(level_noises))))
        start += len(level_noises)
    datasets = {level: label_episodes(data, label) for level, data in datasets.items()}
    datasets["medium-expert"] = _concat(datasets["medium"], datasets["expert"])
    common = {"ref_min_score": random_return, "ref_max_score": expert_return, "medium_return": medium_return,
              "scripted_noise": SCRIPTED_NOISE, "replay_noise": REPLAY_NOISE}  # fmt: skip
    return datasets, common


def _train_generator(env, prof: SuiteProfile, key, out: Path, common: dict, log, t0):
    """The generating agent trained by the trainer in `out/generator` (resumed there after a kill, with
    its snapshots): (agent, the policy state after every `snapshot_every` env steps, its buffer)."""
    agent, program = _generating_program(env, prof)
    run_dir, config = RunDir(out / "generator"), {**common, "profile_settings": asdict(prof)}
    resume = run_dir.open(config)  # a generator of other settings (an older format) starts afresh
    num_snapshots = program.num_chunks
    snapshots = AgentSnapshots(run_dir.path / "snapshots")
    # About 8 checkpoints a generation: a kill loses at most an eighth of it, and Orbax's writes of the
    # buffer stay a small part of the time (a checkpoint per snapshot added ~25 s to Pendulum's 64). No
    # evaluation episodes: the snapshots are scored below.
    result = trainer.run(
        program,
        [{"seed": common["seed"]}],
        run_dir,
        keys=key[None],
        eval_every=num_snapshots,
        checkpoint_every=max(1, num_snapshots // 8),
        resume=resume,
        # a brax `small` suite trains for up to an hour: a bar with its ETA, one step a snapshot
        progress=log is print,
        progress_name=f"{env.spec.name}: training the generating {agent.name}",
        hooks=(snapshots,),
        evaluate=False,
    )
    template = jax.tree.map(lambda x: x[0], result.states.agent)
    policies = snapshots.load(num_snapshots, template)
    buffer = jax.tree.map(lambda x: x[0], result.states.buffer)
    log(f"[{env.spec.name}] trained the generating {agent.name} for {prof.agent_steps} steps ({time.perf_counter() - t0:.0f} s)")
    return agent, policies, buffer


def _learned_levels(env, prof: SuiteProfile, key, out: Path, common: dict, log, t0):
    """Every level from an online agent trained for the profile's budget (SAC or PPO)."""
    env_name = env.spec.name
    agent_key, eval_key, collect_key = jax.random.split(key, 3)

    # 1. Train the generating agent, snapshotting its policy; the buffer keeps what it collected.
    agent, snapshots, buffer = _train_generator(env, prof, agent_key, out, common, log, t0)

    # 2. Score every snapshot and the random policy.
    def policy_of(agent_state, deterministic):
        return lambda obs, key: agent.act(agent_state, obs, key, deterministic)

    def random_policy(obs, key):
        return jax.random.uniform(key, (obs.shape[0], env.spec.action_dim), minval=-1.0, maxval=1.0)

    def zero_policy(obs, key):
        return jnp.zeros((obs.shape[0], env.spec.action_dim))

    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *snapshots)
    score = jax.jit(
        jax.vmap(
            lambda s, k: evaluate_policy(env, policy_of(s, prof.deterministic), k, prof.eval_episodes).mean(), in_axes=(0, None)
        )
    )
    snapshot_returns = np.asarray(score(stacked, eval_key))
    random_return, zero_return = (
        float(jax.jit(lambda k, p=p: evaluate_policy(env, p, k, prof.eval_episodes).mean())(eval_key))
        for p in (random_policy, zero_policy)
    )
    expert_idx = int(np.argmax(snapshot_returns))
    expert_return = float(snapshot_returns[expert_idx])
    target = random_return + prof.medium_fraction * (expert_return - random_return)
    medium_idx = int(np.argmin(np.abs(snapshot_returns - target)))
    medium_steps = (medium_idx + 1) * prof.snapshot_every
    log(
        f"[{env_name}] zero action {zero_return:.1f}, random {random_return:.1f}, medium {snapshot_returns[medium_idx]:.1f} (step {medium_steps}), expert {expert_return:.1f} (step {(expert_idx + 1) * prof.snapshot_every})"
    )

    # 3. Collect the levels. The replay levels are the recorded envs' transitions in time order, one env
    # after another, each env's last (unfinished) episode closed with a timeout.
    def replay(n_steps):
        per_env, envs_ = n_steps // prof.num_envs, prof.recorded_envs

        def per_env_order(x):
            return jnp.swapaxes(x[: per_env * envs_].reshape(per_env, envs_, *x.shape[1:]), 0, 1)

        data = jax.tree.map(per_env_order, buffer.data)
        data = data.replace(timeouts=data.timeouts.at[:, -1].set(1.0 - data.terminals[:, -1]))
        return jax.tree.map(lambda x: x.reshape(per_env * envs_, *x.shape[2:]), data)

    k_random, k_medium, k_expert = jax.random.split(collect_key, 3)
    n, ne = prof.transitions, prof.collect_envs
    datasets = {
        "random": collect(env, random_policy, k_random, n, ne),
        "medium": collect(env, policy_of(snapshots[medium_idx], prof.deterministic), k_medium, n, ne),
        "expert": collect(env, policy_of(snapshots[expert_idx], prof.deterministic), k_expert, n, ne),
        "medium-replay": replay(medium_steps),
        "full-replay": replay(prof.agent_steps),
    }
    datasets["medium-expert"] = _concat(datasets["medium"], datasets["expert"])
    common = {
        "ref_min_score": random_return,
        "ref_max_score": expert_return,
        # the do-nothing and random baselines: a learned policy that scores no more has learned nothing
        "zero_action_return": zero_return,
        "random_return": random_return,
        "medium_return": float(snapshot_returns[medium_idx]),
        "medium_steps": medium_steps,
        "snapshot_returns": snapshot_returns.tolist(),
    }
    return datasets, common


def _write_suite(out: Path, datasets: dict, common: dict, prof: SuiteProfile, t0: float) -> None:
    info = {**common, "profile_settings": asdict(prof), "seconds": time.perf_counter() - t0, "machine": _machine()}
    common = {k: v for k, v in common.items() if k != "snapshot_returns"}
    for level, data in datasets.items():
        returns = data.episode_returns()
        meta = {
            **common,
            "level": level,
            "num_transitions": data.size,
            "num_episodes": len(returns),
            "mean_episode_return": float(returns.mean()),
        }
        save_dataset(out / f"{level}.hdf5", data, meta)
    (out / "suite.json").write_text(json.dumps(info, indent=2))


def load_level(env_name: str, level: str, profile: str = "default", seed: int = 0, root: Path | None = None):
    """The dataset of one level of a generated suite (generating the suite first if needed)."""
    if level not in LEVELS:
        raise ValueError(f"unknown dataset level {level!r}; levels: {', '.join(LEVELS)}")
    directory = generate_suite(env_name, profile, seed, root)
    return load_dataset(directory / f"{level}.hdf5", envs.make(env_name).spec)
