"""Train an agent in any regime (offline, online, offline-to-online, hybrid); all seeds in one program.

python -m jaxrl.train --help
python -m jaxrl.train iql --beta 3                         # IQL on the Pendulum medium-replay suite
python -m jaxrl.train --sweep beta=1,3,10 --seeds 3 iql    # 9 members, one compiled program
python -m jaxrl.train --steps 50000 sac                    # online SAC
python -m jaxrl.train --regime offline-to-online --online-steps 20000 iql   # IQL, then fine-tuned online
python -m jaxrl.train --init-from runs/iql-Pendulum-v1-medium-replay --regime online --buffer keep iql
python -m jaxrl.train --config experiments/demo.yaml       # a declarative experiment spec
python -m jaxrl.train --resume runs/iql-Pendulum-v1-medium-replay                 # continue a killed run
python -m jaxrl.train --resume runs/iql-Pendulum-v1-medium-replay --steps 20000   # extend a finished one
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tyro
from flax import struct

import envs
from jaxrl.agents import AGENTS, Agent, ConfigError
from jaxrl.config import TrainConfig, config_from_mapping, load_experiment
from jaxrl.data import Normalizer, load_dataset
from jaxrl.data.d4rl import d4rl_scores, d4rl_task
from jaxrl.engine import distributed, trainer
from jaxrl.engine.hooks import evaluation_keys
from jaxrl.engine.regimes import REGIMES
from jaxrl.engine.reporting import BASELINES, baselines_line
from jaxrl.engine.returns import dataset_returns_to_go
from jaxrl.engine.run_dir import RunDir
from jaxrl.engine.sweep import make_members, member_keys, parse_sweep, stack_agents
from jaxrl.protocols.corrupt import corrupt
from jaxrl.protocols.suite import LEVELS, load_level, suite_dir, suite_ready

__all__ = ["TrainConfig", "Built", "build", "train", "LoadedRun", "load_run", "main"]


def _reward_scale(dataset) -> float:
    returns = dataset.episode_returns()
    spread = float(returns.max() - returns.min())
    return 1000.0 / spread if spread > 0 else 1.0


def _load_data(cfg: TrainConfig, spec):
    if cfg.dataset in LEVELS:
        if distributed.process_count() > 1 and not suite_ready(cfg.env, cfg.suite, cfg.suite_seed):
            # Generating is a training run of its own, on one process: its processes would race to write it.
            raise ConfigError(
                f"the {cfg.suite!r} suite of {cfg.env} is not generated yet, and a multi-process run only reads it: "
                f"generate it first, in one process (python scripts/make_datasets.py --env {cfg.env} --profile {cfg.suite})"
            )
        return load_level(cfg.env, cfg.dataset, cfg.suite, cfg.suite_seed)
    dataset, metadata = load_dataset(cfg.dataset, spec)
    if _ref_scores(metadata) is None and d4rl_task(cfg.dataset):  # a D4RL file: its scores use D4RL's references
        metadata["ref_min_score"], metadata["ref_max_score"] = d4rl_scores(cfg.dataset)
    return dataset, metadata


def _ref_scores(metadata: dict) -> tuple[float, float] | None:
    if "ref_min_score" in metadata and "ref_max_score" in metadata:
        return float(metadata["ref_min_score"]), float(metadata["ref_max_score"])
    return None


def _env_params(env, values: dict[str, float], field: str, dynamics: dict[str, float], dynamics_field: str):
    """The env's params with `values` (raw) or `dynamics` (scales of the env's own, and joint_noise)
    applied; None (the env's own) when there are neither."""
    if not values and not dynamics:
        return None
    field, make = (field, env.params_with) if values else (dynamics_field, env.dynamics_params)
    try:
        return make(**(values or dynamics))
    except ValueError as err:
        raise ConfigError(f"{field}: {err}") from None


@dataclass
class Pretrained:
    """A finished run to start from: its config and its states (leading axis: members)."""

    config: TrainConfig
    states: Any
    run_dir: Path


def _pretrained(init) -> Pretrained:
    """A `Pretrained` from a run directory, a `LoadedRun` or a `RunResult` (what `train` returns)."""
    if isinstance(init, (str, Path)):
        loaded = load_run(init)
        return Pretrained(loaded.config, loaded.states, Path(init))
    if isinstance(init, LoadedRun):
        return Pretrained(init.config, init.states, init.run_dir)
    if isinstance(init, trainer.RunResult):
        run_dir = RunDir(init.run_dir)
        return Pretrained(config_from_mapping(run_dir.read_config(), run_dir.config_file), init.states, init.run_dir)
    raise ConfigError(f"init_from must be a run directory, a LoadedRun or a RunResult, got {type(init).__name__}")


def _first_difference(a, b) -> str | None:
    """Where two pytrees of arrays first differ in structure or shape, in words (None: they match)."""
    paths_a = dict(jax.tree_util.tree_flatten_with_path(a)[0])
    paths_b = dict(jax.tree_util.tree_flatten_with_path(b)[0])
    for path in paths_a.keys() | paths_b.keys():
        x, y = paths_a.get(path), paths_b.get(path)
        if x is None or y is None or x.shape != y.shape:
            where = jax.tree_util.keystr(path)
            describe = lambda v: "absent" if v is None else str(tuple(v.shape))  # noqa: E731
            return f"{where}: {describe(x)} there, {describe(y)} here"
    return None


def _warm_start(cfg: TrainConfig, source: Pretrained, spec, agent: Agent, members: list[dict]):
    """Check that `source` can start this run and return (WarmStart, its normaliser)."""
    where = f"init_from {source.run_dir}"
    theirs = source.config
    if theirs.agent.name != agent.name:
        raise ConfigError(f"{where} trained {theirs.agent.name}, not {agent.name}")
    their_spec = envs.make(theirs.env).spec
    if (their_spec.obs_dim, their_spec.action_dim) != (spec.obs_dim, spec.action_dim):
        raise ConfigError(
            f"{where} was trained on {theirs.env} (obs dim {their_spec.obs_dim}, action dim {their_spec.action_dim}); "
            f"{cfg.env} has obs dim {spec.obs_dim}, action dim {spec.action_dim}"
        )
    static = [f.name for f in dataclasses.fields(agent) if not f.metadata.get("pytree_node", True)]
    differ = [f"{n} {getattr(theirs.agent, n)!r} there, {getattr(agent, n)!r} here" for n in static
              if n not in ("obs_dim", "action_dim", "total_steps") and getattr(theirs.agent, n) != getattr(agent, n)]  # fmt: skip
    ours = jax.eval_shape(agent.init, jax.random.PRNGKey(0))
    theirs_one = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), source.states.agent)
    mismatch = _first_difference(theirs_one, ours)
    if mismatch:
        raise ConfigError(
            f"{where}: its agent state does not fit this {agent.name}: {mismatch}" + (f" ({'; '.join(differ)})" if differ else "")
        )
    count = int(jax.tree.leaves(source.states.agent)[0].shape[0])
    if count not in (1, len(members)):
        raise ConfigError(f"{where} has {count} members; this run has {len(members)} (it can start from 1 or {len(members)})")
    agent_states = jax.tree.map(lambda x: np.repeat(np.asarray(x), len(members) // count, axis=0), source.states.agent)
    normalizers = jax.tree.map(np.asarray, source.states.normalizer)
    if any(not np.all(leaf == leaf[:1]) for leaf in jax.tree.leaves(normalizers)):
        raise ConfigError(f"{where}: its members normalise data differently; start from one member's run")
    normalizer = jax.tree.map(lambda leaf: jnp.asarray(leaf[0]), normalizers)
    step = getattr(source.states.agent, "step", None)
    updates = int(np.asarray(step).reshape(-1)[0]) if step is not None else 0
    return trainer.WarmStart(agent_states, updates), normalizer


@dataclass
class Built:
    """What a config compiles to: the program over all members, and what describes the members."""

    program: trainer.Program
    members: list[dict]
    grid: dict[str, list[float]]
    metadata: dict
    normalizer: Normalizer  # how the agent sees observations and rewards, in every phase


def _phases(cfg: TrainConfig, agents, pretrained: bool) -> list:
    """The regime's phases. An online phase whose agent is pretrained (offline-to-online, or a warm
    start) trains with `agent.for_online()` and the config's `online_hparams`."""
    regime = REGIMES[cfg.resolved_regime]
    pretrained = pretrained or regime.pretrains
    if cfg.online_hparams and not pretrained:
        raise ConfigError("online_hparams set an online phase that starts pretrained (offline-to-online or init_from)")
    online_agents = None
    if pretrained and regime.online and not agents.on_policy:
        online_agents = agents.for_online().with_settings(cfg.assignments("online_hparams"), "online_hparams")
    return regime.phases(cfg, agents, online_agents)


def _agent_and_members(cfg: TrainConfig, env) -> tuple[Agent, dict[str, list[float]], list[dict]]:
    """The configured agent (before it adapts to a dataset), the sweep grid and the members."""
    base: Agent = cfg.agent.configure(env.spec, cfg.steps)
    if cfg.resolved_buffer == "mix":  # the mix's first rows are the dataset's
        base = base.with_real_share(cfg.offline_fraction)
    grid = parse_sweep(cfg.sweep, base)
    return base, grid, make_members(grid, list(range(cfg.first_seed, cfg.first_seed + cfg.seeds)))


def _eval_params(cfg: TrainConfig, env):
    raw = "eval_env_params" if cfg.eval_dynamics else "eval_params"  # with eval_dynamics, env_params are not inherited
    return _env_params(env, cfg.numbers(raw), "eval_env_params", cfg.numbers("eval_dynamics"), "eval_dynamics")


def build(cfg: TrainConfig, init_from=None) -> Built:
    """Validate `cfg`, load (and corrupt, normalise) its data and build its training program.

    `init_from` (or `cfg.init_from`): a run directory, `LoadedRun` or `RunResult` whose agent (and
    normaliser) the run starts from instead of a fresh init."""
    cfg.validate()
    env = envs.make(cfg.env)
    collect_params = _env_params(env, cfg.numbers("env_params"), "env_params", cfg.numbers("sim_dynamics"), "sim_dynamics")
    base, grid, members = _agent_and_members(cfg, env)
    init_from = init_from if init_from is not None else cfg.init_from
    warm, normalizer = None, None
    if init_from is not None:
        warm, normalizer = _warm_start(cfg, _pretrained(init_from), env.spec, base, members)

    dataset = None
    if cfg.uses_dataset:
        dataset, metadata = _load_data(cfg, env.spec)
        if cfg.real_fraction < 1.0:
            dataset = dataset.subset(cfg.real_fraction, cfg.first_seed)
        if cfg.corruption.elements:  # before any normalisation, as in the protocol
            dataset, metadata = corrupt(dataset, metadata, cfg.corruption)
        base = base.adapt_to_dataset(dataset, metadata)
        if normalizer is None:
            scale = _reward_scale(dataset) if cfg.normalize_rewards and base.normalizes_rewards else 1.0
            normalize_obs = base.normalizes_observations if cfg.normalize_obs is None else cfg.normalize_obs
            normalizer = Normalizer.from_dataset(dataset, reward_scale=scale)
            if not normalize_obs:
                normalizer = Normalizer.identity(env.spec.obs_dim).replace(reward_scale=normalizer.reward_scale)
        dataset = normalizer.apply(dataset)
        if base.uses_returns_to_go or base.for_online().uses_returns_to_go:  # in the agent's reward scale
            if "gamma" in grid:
                raise ConfigError(f"{base.name} floors Q at returns-to-go discounted by one gamma; do not sweep gamma")
            dataset = dataset_returns_to_go(dataset, float(base.gamma), where=f"dataset {cfg.dataset!r} of {cfg.env}")
    else:
        info = suite_dir(cfg.env, cfg.suite, cfg.suite_seed) / "suite.json"
        metadata = json.loads(info.read_text()) if info.exists() else {}
        normalizer = normalizer if normalizer is not None else Normalizer.identity(env.spec.obs_dim)
    agents = stack_agents(base, members).validate()
    program = trainer.build_program(
        agents,
        _phases(cfg, agents, pretrained=warm is not None),
        normalizer=normalizer,
        eval_env=env,
        eval_episodes=cfg.eval_episodes,
        final_eval_episodes=cfg.final_eval_episodes,
        dataset=dataset,
        env=env,
        collect_params=collect_params,
        eval_params=_eval_params(cfg, env),
        warm_start=warm,
    )
    return Built(program, members, grid, metadata, normalizer)


def _recorded_config(cfg: TrainConfig, init_from) -> dict:
    """`cfg` as config.json records it: data, with the paths in it resolved (so the run can be resumed
    from another working directory, or after being moved)."""
    config = dataclasses.asdict(cfg) | {"algo": cfg.agent.name}
    config["agent"] = {k: v for k, v in config["agent"].items() if k not in ("obs_dim", "action_dim", "total_steps")}
    if cfg.dataset not in LEVELS:
        config["dataset"] = str(Path(cfg.dataset).expanduser().resolve())
    if init_from is not None:
        init_dir = init_from if isinstance(init_from, (str, Path)) else init_from.run_dir
        config["init_from"] = str(Path(init_dir).expanduser().resolve())
    return config


def _extendable(cfg: TrainConfig) -> tuple[str, ...]:
    """The step count a resume may raise: the last phase's (its checkpoints stay chunk ends of the longer run)."""
    return ("online_steps",) if cfg.resolved_regime == "offline-to-online" else ("steps",)


def train(cfg: TrainConfig, stop_after_chunks: int | None = None, init_from=None) -> trainer.RunResult:
    """Run the training described by `cfg`; returns final states, per-member results and the table.

    `init_from`: start from a finished run, as `cfg.init_from` does from a run directory; here it may also
    be what an earlier `train` returned, so a notebook can pretrain, look, then fine-tune. With
    `cfg.resume`, a larger step count than the run recorded extends it: the result is the longer run
    resumed from the shorter one's last checkpoint, so schedules that span the run (IQL's cosine actor
    learning rate, DT's warm-up) follow the new length from there on."""
    init_from = init_from if init_from is not None else cfg.init_from
    recorded = _recorded_config(cfg, init_from)
    distributed.check_same("run configs", json.dumps(recorded, sort_keys=True, default=str))
    built = build(cfg, init_from)
    run_dir = RunDir(cfg.resolved_run_dir())
    primary = distributed.is_primary()  # in a multi-process run, process 0 alone writes the directory's files
    run_dir.prepare(recorded, resume=cfg.resume, overwrite=cfg.overwrite, extendable=_extendable(cfg), write=primary)
    if primary:
        run_dir.save_agents(built.program.agents)
        run_dir.save_metadata({k: float(built.metadata[k]) for k in EVALUATION_METADATA if k in built.metadata})
    distributed.barrier("run directory ready")
    return trainer.run(
        built.program,
        built.members,
        run_dir,
        eval_every=cfg.eval_every,
        checkpoint_every=cfg.checkpoint_every,
        resume=cfg.resume,
        ref_scores=_ref_scores(built.metadata),
        notes=baselines_line(built.metadata, _ref_scores(built.metadata)),
        sweep_keys=list(built.grid),
        progress=cfg.progress,
        tensorboard=cfg.tensorboard,
        wandb=cfg.wandb,
        stop_after_chunks=stop_after_chunks,
    )


# What evaluating and reporting a run needs from its data, kept in the run directory.
EVALUATION_METADATA = ("ref_min_score", "ref_max_score", *BASELINES)


@struct.dataclass
class PolicyState:
    """What acting needs of a member's training state: its agent's state and how it sees observations."""

    agent: Any
    normalizer: Normalizer


@dataclass
class LoadedRun:
    """A run's members as checkpointed: their agents, configs and policy states (leading axis: members)."""

    config: TrainConfig
    agents: Agent  # stacked over members, as trained
    members: list[dict]
    states: PolicyState  # leading axis: members
    step: int
    run_dir: Path | None = None
    metadata: dict = dataclasses.field(default_factory=dict)  # reference scores and baselines of its data

    def evaluate(self, seed: int = 0) -> np.ndarray:
        """Mean return of each member over `config.eval_episodes` fresh episodes; `seed` picks the episodes
        (0: those the run's own evaluations played), each member on its own (see `evaluation_keys`)."""
        env = envs.make(self.config.env)
        evaluate = trainer.evaluator(env, self.config.eval_episodes)
        keys = evaluation_keys(self.members)
        if seed:  # other episodes than the run's own evaluations
            keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, seed)
        returns = evaluate(self.agents, self.states, keys, _eval_params(self.config, env))
        return np.asarray(returns).mean(axis=1)

    def policy(self, member: int = 0):
        """`act(obs, key) -> action in [-1, 1]` of one member, deterministic, taking observations as the env
        gives them (normalised as in training). Sequence models (DT) act through `act_with_carry` instead."""
        agent, state = (jax.tree.map(lambda x: x[member], tree) for tree in (self.agents, self.states))
        return jax.jit(lambda obs, key: agent.act(state.agent, state.normalizer(obs), key, True))


def load_run(run_dir: str | Path, step: int | None = None) -> LoadedRun:
    """The run in `run_dir` at its checkpoint at `step` (default: the latest), from the directory alone
    (not the dataset it was trained on), e.g. to evaluate or act with a trained policy in a notebook,
    or to start another run from."""
    directory = RunDir(run_dir)
    cfg = config_from_mapping(directory.read_config(), directory.config_file)
    if not directory.has_checkpoint():
        raise ConfigError(f"{directory.path}: no checkpoint in {directory.checkpoint_dir}")
    env = envs.make(cfg.env)
    base, _, members = _agent_and_members(cfg, env)
    agents = directory.load_agents(stack_agents(base, members))
    keys = member_keys(members)
    abstract = {
        "agent": jax.eval_shape(jax.vmap(lambda agent, key: agent.init(key)), agents, keys),
        "normalizer": jax.eval_shape(jax.vmap(lambda _: Normalizer.identity(env.spec.obs_dim)), keys),
    }
    step, parts = directory.restore_parts(abstract, step)
    return LoadedRun(cfg, agents, members, PolicyState(**parts), step, directory.path, directory.read_metadata())


def _merge_repeated_lists(argv: list[str]) -> list[str]:
    """`--sweep beta=1,3 --sweep expectile=0.7,0.9` as `--sweep beta=1,3 expectile=0.7,0.9`: every list
    flag of TrainConfig (sweep, env params, dynamics, online hparams) collects the values of all its
    uses. tyro alone would keep the last use and drop the others without a word."""
    lists = {"--" + f.name.replace("_", "-") for f in dataclasses.fields(TrainConfig) if "tuple[str, ...]" in str(f.type)}
    values: dict[str, list[str]] = {}
    out: list[str] = []
    i = 0
    while i < len(argv):
        flag, eq, inline = argv[i].partition("=")
        if flag not in lists:
            out.append(argv[i])
            i += 1
            continue
        j = i + 1
        while j < len(argv) and not argv[j].startswith("--"):
            j += 1
        if flag not in values:
            out.append(flag)
            values[flag] = []
            out.append(values[flag])  # filled in place: later uses add to the first one's values
        values[flag] += ([inline] if eq else []) + argv[i + 1 : j]
        i = j
    return [token for item in out for token in (item if isinstance(item, list) else [item])]


CLI_DESCRIPTION = """Train an agent in any regime; all seeds and sweep members in one compiled program.

Two options come before the others and set their defaults: `--config FILE.yaml` (an experiment spec,
see experiments/*.yaml) and `--resume RUN_DIR` (the run's recorded config.json: continue a killed run,
or extend a finished one with a larger --steps). Flags given after them override what they set.

A run over several processes (hosts) starts every process with the same flags plus `--coordinator HOST:PORT`
(process 0's address), `--num-processes N` and `--process-id I` (or JAXRL_COORDINATOR, JAXRL_NUM_PROCESSES,
JAXRL_PROCESS_ID; `--coordinator auto` under SLURM, Open MPI or on a TPU pod slice); `--coordinator-timeout`
seconds to wait for every process (300)."""


CLUSTER_FLAGS = {"--coordinator": str, "--num-processes": int, "--process-id": int, "--coordinator-timeout": int}


def _cluster_flags(argv: list[str]) -> tuple[list[str], distributed.Cluster | None]:
    """argv without the multi-process flags, and the cluster they (or the environment) describe."""
    values, rest, i = {}, [], 0
    while i < len(argv):
        flag, eq, inline = argv[i].partition("=")
        if flag not in CLUSTER_FLAGS:
            rest.append(argv[i])
            i += 1
            continue
        value = inline if eq else (argv[i + 1] if i + 1 < len(argv) else None)
        if value is None:
            raise distributed.DistributedError(f"{flag} needs a value")
        try:
            values[flag[2:].replace("-", "_")] = CLUSTER_FLAGS[flag](value)
        except ValueError:
            raise distributed.DistributedError(f"{flag} {value!r}: not an integer") from None
        i += 1 if eq else 2
    timeout = values.pop("coordinator_timeout", 300)
    return rest, distributed.Cluster.from_settings(**values, timeout=timeout)


def parse_args(argv: list[str], connect: bool = True) -> tuple[TrainConfig, distributed.Cluster | None]:
    """The command line as `python -m jaxrl.train` reads it: the cluster flags, `--config FILE`, `--resume
    RUN_DIR`, repeated list flags, then tyro. Returns the config (not yet validated: `train` does that)
    and the cluster, or SystemExit naming the problem. With `connect` (the CLI), the process joins the
    cluster before tyro builds the config, that is before anything touches a device; without it nothing
    is joined (tests parse commands that way)."""
    try:
        argv, cluster = _cluster_flags(list(argv))
        if connect:
            distributed.initialize(cluster)  # before anything touches a device
    except distributed.DistributedError as err:
        raise SystemExit(f"error: {err}") from None
    default = None
    try:
        if "--config" in argv:
            i = argv.index("--config")
            if i + 1 >= len(argv):
                raise SystemExit("error: --config needs a YAML file")
            default = load_experiment(argv[i + 1])
            argv = argv[:i] + argv[i + 2 :]
        if "--resume" in argv:  # `--resume RUN_DIR`: the run's recorded config, which later flags override
            i = argv.index("--resume")
            if i + 1 < len(argv) and not argv[i + 1].startswith("-") and argv[i + 1] not in AGENTS:
                if default is not None:
                    raise SystemExit("error: --resume RUN_DIR continues a recorded run; it takes no --config")
                run_dir = RunDir(argv[i + 1])
                if not run_dir.path.is_dir():
                    raise SystemExit(f"error: cannot resume {argv[i + 1]}: no such directory")
                default = config_from_mapping(run_dir.read_config(), run_dir.config_file)
                argv = argv[: i + 1] + argv[i + 2 :]
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None
    argv = _merge_repeated_lists(argv)
    cfg = tyro.cli(
        TrainConfig,
        args=argv,
        default=default,
        prog="python -m jaxrl.train",
        description=CLI_DESCRIPTION,
        config=(tyro.conf.OmitSubcommandPrefixes, tyro.conf.CascadeSubcommandArgs),
    )
    return cfg, cluster


def main(argv: list[str] | None = None) -> None:
    """CLI entry; `--config experiments/X.yaml` loads a spec whose values later flags override."""
    import sys

    cfg, _ = parse_args(list(sys.argv[1:] if argv is None else argv))
    print(
        f"jaxrl: {cfg.agent.name} on {cfg.env}"
        + (f" / {cfg.dataset}" if cfg.uses_dataset else "")
        + f", {cfg.resolved_regime}, devices {jax.devices()}"
    )
    try:
        result = train(cfg)
    except (ConfigError, trainer.TrainingDiverged, ValueError, distributed.DistributedError) as err:
        raise SystemExit(f"error: {err}") from None
    if not distributed.is_primary():
        return
    print(result.table)
    print(f"\nrun directory: {result.run_dir} (metrics.jsonl, metrics.csv, curve.png, results.md, checkpoints/)")


if __name__ == "__main__":
    main()
