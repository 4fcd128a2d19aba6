"""Train an agent: offline from a dataset, or online in an environment; all seeds in one program.

python -m jaxrl.train --help
python -m jaxrl.train iql --beta 3                         # IQL on the Pendulum medium-replay suite
python -m jaxrl.train --sweep beta=1,3,10 --seeds 3 iql    # 9 members, one compiled program
python -m jaxrl.train --steps 50000 sac                    # online SAC
python -m jaxrl.train --config experiments/demo.yaml       # a declarative experiment spec
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union

import jax
import numpy as np
import tyro

import envs
from jaxrl import trainer
from jaxrl.agents import AGENTS, OFFLINE_AGENTS, Agent, ConfigError
from jaxrl.checkpoint import Checkpointer
from jaxrl.data import Normalizer, load_dataset
from jaxrl.data.corruption import Corruption, corrupt
from jaxrl.data.suite import LEVELS, load_level, suite_dir
from jaxrl.experiment import config_from_mapping, load_experiment
from jaxrl.sweep import make_members, parse_sweep, stack_agents

# One CLI subcommand per registered algorithm, with its hyperparameters as flags.
AgentConfig = Union[
    tuple(Annotated[cls, tyro.conf.subcommand(name, description=cls.description)] for name, cls in AGENTS.items())
]  # noqa: UP007


@dataclass
class TrainConfig:
    agent: AgentConfig
    """the algorithm and its hyperparameters"""
    env: str = "gymnax/Pendulum-v1"
    """registered environment name (see envs.registered())"""
    dataset: str = "medium-replay"
    """offline only: a level of the generated suite for `env`, or a path to a D4RL-layout .hdf5/.npz file"""
    suite: str = "default"
    """profile of the generated dataset suite"""
    suite_seed: int = 0
    """seed of the generated dataset suite"""
    seeds: int = 5
    """independent seeds, trained together in one vmapped program"""
    first_seed: int = 0
    steps: int = 10_000
    """gradient updates (offline) or environment steps (online)"""
    chunk_steps: int = 1_000
    """steps per compiled chunk; the host logs, evaluates and checkpoints between chunks"""
    batch_size: int = 256
    eval_every: int = 2
    """chunks between evaluations"""
    eval_episodes: int = 10
    checkpoint_every: int = 5
    """chunks between checkpoints (the final state is always saved)"""
    normalize_obs: bool | None = None
    """standardise observations with dataset statistics, which evaluation shares (default: the agent's choice)"""
    normalize_rewards: bool = True
    """offline: scale rewards by 1000 / (max - min episode return), IQL's locomotion setting"""
    corruption: Corruption = Corruption()
    """offline: corrupt the dataset before training (RIQL's protocol); no elements means clean data"""
    num_envs: int = 1
    """online: environments stepped in parallel"""
    utd: float = 1.0
    """online: gradient updates per environment step"""
    learning_starts: int = 1_000
    """online: uniform random actions and no updates for this many environment steps"""
    buffer_size: int = 100_000
    """online: replay buffer capacity"""
    sweep: tuple[str, ...] = ()
    """hyperparameter grid such as beta=1,3,10; every value x every seed is one member of one program"""
    run_dir: str | None = None
    """where checkpoints, metrics, the plot and the table go (default runs/<algo>-<env>-<dataset>)"""
    resume: bool = False
    """continue from the latest checkpoint in run_dir"""
    overwrite: bool = False
    """delete an existing run in run_dir and start again"""
    progress: bool = True
    tensorboard: bool = False
    """also write TensorBoard event files to run_dir/tensorboard/, one run per member (tensorboard --logdir RUN_DIR)"""

    def __post_init__(self):
        if isinstance(self.corruption, dict):  # from a YAML spec
            unknown = sorted(set(self.corruption) - {f.name for f in dataclasses.fields(Corruption)})
            if unknown:
                allowed = ", ".join(f.name for f in dataclasses.fields(Corruption))
                raise ConfigError(f"corruption has no setting {unknown[0]!r}; it has: {allowed}")
            self.corruption = Corruption(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.corruption.items()})

    @property
    def offline(self) -> bool:
        return self.agent.name in OFFLINE_AGENTS

    def resolved_run_dir(self) -> Path:
        if self.run_dir:
            return Path(self.run_dir)
        source = Path(self.dataset).stem if self.offline else "online"
        return Path("runs") / f"{self.agent.name}-{self.env.split('/')[-1]}-{source}"

    def validate(self) -> "TrainConfig":
        """Reject invalid values before anything is compiled; raises ConfigError naming the field."""
        for name in (
            "seeds",
            "steps",
            "chunk_steps",
            "batch_size",
            "eval_every",
            "eval_episodes",
            "checkpoint_every",
            "num_envs",
            "buffer_size",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.first_seed < 0 or self.learning_starts < 0:
            raise ConfigError("first_seed and learning_starts must be >= 0")
        if self.steps % self.chunk_steps:
            raise ConfigError(f"steps ({self.steps}) must be a multiple of chunk_steps ({self.chunk_steps})")
        if not self.utd > 0:
            raise ConfigError(f"utd must be > 0, got {self.utd}")
        if self.env not in envs.REGISTRY:
            raise ConfigError(f"unknown environment {self.env!r}; registered: {', '.join(envs.registered())}")
        if self.offline and self.dataset not in LEVELS and not Path(self.dataset).suffix and not Path(self.dataset).is_dir():
            raise ConfigError(
                f"dataset {self.dataset!r} is neither a suite level ({', '.join(LEVELS)}), a .hdf5/.npz path nor a Minari directory"
            )
        if self.corruption.elements:
            if not self.offline:
                raise ConfigError("corruption applies to offline datasets only")
            self.corruption.validate()
        self.agent.validate()
        return self


def _reward_scale(dataset) -> float:
    returns = dataset.episode_returns()
    spread = float(returns.max() - returns.min())
    return 1000.0 / spread if spread > 0 else 1.0


def _load_offline(cfg: TrainConfig, spec):
    if cfg.dataset in LEVELS:
        return load_level(cfg.env, cfg.dataset, cfg.suite, cfg.suite_seed)
    return load_dataset(cfg.dataset, spec)


def _ref_scores(metadata: dict) -> tuple[float, float] | None:
    if "ref_min_score" in metadata and "ref_max_score" in metadata:
        return float(metadata["ref_min_score"]), float(metadata["ref_max_score"])
    return None


@dataclass
class Built:
    """What a config compiles to: the program over all members, and what describes the members."""

    program: trainer.Program
    members: list[dict]
    grid: dict[str, list[float]]
    metadata: dict
    normalizer: Normalizer | None = None  # offline: how observations are standardised (shared by evaluation)


def build(cfg: TrainConfig) -> Built:
    """Validate `cfg`, load (and corrupt, normalise) its data and build its training program."""
    cfg.validate()
    env = envs.make(cfg.env)
    base: Agent = cfg.agent.configure(env.spec, cfg.steps)
    grid = parse_sweep(cfg.sweep, base)
    members = make_members(grid, list(range(cfg.first_seed, cfg.first_seed + cfg.seeds)))

    if cfg.offline:
        dataset, metadata = _load_offline(cfg, env.spec)
        if cfg.corruption.elements:  # before any normalisation, as in the protocol
            dataset, metadata = corrupt(dataset, metadata, cfg.corruption)
        base = base.adapt_to_dataset(dataset, metadata)
        agents = stack_agents(base, members).validate()
        scale = _reward_scale(dataset) if cfg.normalize_rewards and base.normalizes_rewards else 1.0
        normalize_obs = base.normalizes_observations if cfg.normalize_obs is None else cfg.normalize_obs
        normalizer = Normalizer.from_dataset(dataset, reward_scale=scale)
        if not normalize_obs:
            normalizer = Normalizer.identity(env.spec.obs_dim).replace(reward_scale=normalizer.reward_scale)
        dataset = normalizer.apply(dataset)
        program = trainer.build_offline_program(
            agents,
            dataset,
            normalizer,
            env,
            chunk_steps=cfg.chunk_steps,
            batch_size=cfg.batch_size,
            eval_episodes=cfg.eval_episodes,
        )
    else:
        normalizer = None
        info = suite_dir(cfg.env, cfg.suite, cfg.suite_seed) / "suite.json"
        metadata = json.loads(info.read_text()) if info.exists() else {}
        agents = stack_agents(base, members).validate()
        program = trainer.build_online_program(
            agents,
            env,
            chunk_steps=cfg.chunk_steps,
            num_envs=cfg.num_envs,
            batch_size=cfg.batch_size,
            utd=cfg.utd,
            learning_starts=cfg.learning_starts,
            buffer_size=cfg.buffer_size,
            eval_episodes=cfg.eval_episodes,
        )
    return Built(program, members, grid, metadata, normalizer)


def train(cfg: TrainConfig, stop_after_chunks: int | None = None) -> trainer.RunResult:
    """Run the training described by `cfg`; returns final states, per-member results and the table."""
    built = build(cfg)
    config = dataclasses.asdict(cfg) | {"algo": cfg.agent.name}
    config["agent"] = {k: v for k, v in config["agent"].items() if k not in ("obs_dim", "action_dim", "total_steps")}
    return trainer.run(
        built.program,
        built.members,
        cfg.resolved_run_dir(),
        num_chunks=cfg.steps // cfg.chunk_steps,
        eval_every=cfg.eval_every,
        checkpoint_every=cfg.checkpoint_every,
        resume=cfg.resume,
        overwrite=cfg.overwrite,
        ref_scores=_ref_scores(built.metadata),
        sweep_keys=list(built.grid),
        config=config,
        progress=cfg.progress,
        tensorboard=cfg.tensorboard,
        stop_after_chunks=stop_after_chunks,
    )


@dataclass
class LoadedRun:
    """A run rebuilt from its directory, with the training state of every member from one checkpoint."""

    config: TrainConfig
    program: trainer.Program
    members: list[dict]
    states: Any  # leading axis: members
    step: int

    def evaluate(self, seed: int = 0) -> np.ndarray:
        """Mean return of each member over `config.eval_episodes` fresh episodes."""
        return np.asarray(self.program.evaluate(self.states, jax.random.PRNGKey(seed))).mean(axis=1)

    def policy(self, member: int = 0):
        """`act(obs, key) -> action in [-1, 1]` of one member, deterministic, taking observations as the env
        gives them (normalised as in training). Sequence models (DT) act through `act_with_carry` instead."""
        agent, state = (jax.tree.map(lambda x: x[member], tree) for tree in (self.program.agents, self.states))
        return jax.jit(lambda obs, key: agent.act(state.agent, state.normalizer(obs), key, True))


def load_run(run_dir: str | Path, step: int | None = None) -> LoadedRun:
    """Rebuild the run in `run_dir` from its config.json and restore its checkpoint at `step` (default: the
    latest), e.g. to evaluate or act with a trained policy in a notebook."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise ConfigError(f"{run_dir}: no config.json, so not a run directory")
    cfg = config_from_mapping(json.loads(config_path.read_text()), config_path)
    built = build(cfg)
    checkpointer = Checkpointer(run_dir / "checkpoints")
    try:
        step, states = trainer.restore(built.program, built.members, checkpointer, step)
    finally:
        checkpointer.close()
    return LoadedRun(cfg, built.program, built.members, states, step)


def main(argv: list[str] | None = None) -> None:
    """CLI entry; `--config experiments/X.yaml` loads a spec whose values later flags override."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    default = None
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise SystemExit("error: --config needs a YAML file")
        try:
            default = load_experiment(argv[i + 1])
        except ConfigError as err:
            raise SystemExit(f"error: {err}") from None
        argv = argv[:i] + argv[i + 2 :]
    cfg = tyro.cli(
        TrainConfig, args=argv, default=default, config=(tyro.conf.OmitSubcommandPrefixes, tyro.conf.CascadeSubcommandArgs)
    )
    print(
        f"jaxrl: {cfg.agent.name} on {cfg.env}"
        + (f" / {cfg.dataset}" if cfg.offline else " (online)")
        + f", devices {jax.devices()}"
    )
    try:
        result = train(cfg)
    except (ConfigError, trainer.TrainingDiverged, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    print(result.table)
    print(f"\nrun directory: {result.run_dir} (metrics.jsonl, metrics.csv, curve.png, results.md, checkpoints/)")


if __name__ == "__main__":
    main()
