"""What a training run is: `TrainConfig`, from the command line or from a YAML experiment spec.

    algo: iql
    agent: {hidden_dims: [128, 128], beta: 3.0}
    dataset: medium-replay
    seeds: 5

`config_from_mapping` is the one place that turns a mapping (a YAML spec, or the config.json a run
stores) into a config; command-line flags given after `--config FILE` override the file.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Union

import tyro
import yaml

import envs
from jaxrl.agents import AGENTS, ConfigError, make_agent
from jaxrl.data.d4rl import D4RL_LEVELS as LEVELS
from jaxrl.data.d4rl import d4rl_env
from jaxrl.engine.regimes import REGIMES
from jaxrl.engine.reporting import WANDB_MODES
from jaxrl.engine.sweep import parse_sweep
from jaxrl.protocols.corruption import Corruption

DEFAULT_ENV = "gymnax/Pendulum-v1"
# The name=value fields (parsed when a config is made) and those of them whose values are numbers.
ASSIGNMENTS = ("online_hparams", "env_params", "eval_env_params", "sim_dynamics", "eval_dynamics")
NUMERIC_ASSIGNMENTS = ("env_params", "eval_env_params", "sim_dynamics", "eval_dynamics")

# One CLI subcommand per registered algorithm, with its hyperparameters as flags.
AgentConfig = Union[
    tuple(Annotated[cls, tyro.conf.subcommand(name, description=cls.description)] for name, cls in AGENTS.items())
]  # noqa: UP007


@dataclass
class TrainConfig:
    agent: AgentConfig
    """the algorithm and its hyperparameters"""
    env: str | None = None
    """registered environment name (see envs.registered()); default: the task of a D4RL-named dataset file
    (hopper-medium-replay-v2.hdf5: brax/hopper), else gymnax/Pendulum-v1"""
    regime: Literal["offline", "online", "offline-to-online", "hybrid"] | None = None
    """offline: learn from the dataset; online: collect in env and learn from a replay buffer;
    offline-to-online: offline, then online from where the offline phase ended; hybrid: collect in env
    (a simulator: see env_params) and learn from a mix of the dataset and the buffer.
    Default: the algorithm's usual regime (online for sac, td3 and ppo; hybrid for h2o and darc; offline for the others)"""
    dataset: str = "medium-replay"
    """regimes with data: a level of the generated suite for `env`, or a path to a D4RL-layout .hdf5/.npz file"""
    suite: str = "default"
    """profile of the generated dataset suite"""
    suite_seed: int = 0
    """seed of the generated dataset suite"""
    seeds: int = 5
    """independent seeds, trained together in one vmapped program"""
    first_seed: int = 0
    """the first seed: seeds are first_seed, first_seed + 1, ... (a seed sets a member's keys and its evaluation episodes)"""
    steps: int = 10_000
    """gradient updates (offline, and the offline phase of offline-to-online) or environment steps (online, hybrid)"""
    online_steps: int = 0
    """offline-to-online: environment steps of the online phase"""
    chunk_steps: int = 1_000
    """steps per compiled chunk; the host logs, evaluates and checkpoints between chunks"""
    batch_size: int = 256
    """rows per gradient update"""
    eval_every: int = 2
    """chunks between evaluations"""
    eval_episodes: int = 10
    """episodes per evaluation and seed (each seed on its own start states, the same at every evaluation)"""
    final_eval_episodes: int | None = None
    """episodes of the run's last evaluation, the score tables report (default: eval_episodes); its first
    eval_episodes episodes are those every other evaluation of the seed plays"""
    checkpoint_every: int = 5
    """chunks between checkpoints (the final state is always saved)"""
    normalize_obs: bool | None = None
    """standardise observations with dataset statistics, which evaluation shares (default: the agent's choice)"""
    normalize_rewards: bool = True
    """with a dataset: scale rewards (the dataset's and collected ones) by 1000 / (max - min episode
    return of the dataset), IQL's locomotion setting"""
    corruption: Corruption = Corruption()
    """offline: corrupt the dataset before training (RIQL's protocol); no elements means clean data"""
    num_envs: int = 1
    """online: environments stepped in parallel"""
    utd: float = 1.0
    """online: gradient updates per environment step"""
    learning_starts: int = 1_000
    """online: uniform random actions and no updates for this many environment steps"""
    buffer_size: int = 100_000
    """online: replay buffer capacity (with buffer=keep, on top of the dataset's copy)"""
    buffer: Literal["keep", "mix", "discard"] | None = None
    """online phase with a dataset: keep (the buffer starts with a copy of the dataset), mix
    (offline_fraction of every batch from the dataset, the rest from a new buffer), discard (a new buffer
    only). Default: keep for offline-to-online, mix for hybrid, discard for online"""
    offline_fraction: float = 0.5
    """buffer=mix: the share of every batch drawn from the dataset"""
    real_fraction: float = 1.0
    """keep this share of the dataset's rows, drawn at random given first_seed (the same rows for every
    member): scarce real data, H2O's real_residual_ratio"""
    online_hparams: tuple[str, ...] = ()
    """an online phase of a pretrained agent (offline-to-online, init_from): hyperparameters it trains
    with instead, e.g. actor_lr=1e-4"""
    init_from: str | None = None
    """start from the agent (and normaliser) of an earlier run's latest checkpoint: its run directory"""
    env_params: tuple[str, ...] = ()
    """parameters of the env transitions are collected in, e.g. g=12 (Pendulum's gravity); default: the env's own"""
    eval_env_params: tuple[str, ...] | None = None
    """parameters of the env policies are evaluated in; default: env_params"""
    sim_dynamics: tuple[str, ...] = ()
    """the simulator transitions are collected in, as scales of the env's own dynamics, e.g. gravity=2
    friction=0.3, plus joint_noise=1.0 (the sigma of noise on the actions); default: the env's own"""
    eval_dynamics: tuple[str, ...] = ()
    """the dynamics policies are evaluated in, as sim_dynamics; default: the env's own (the "real" env)"""
    sweep: tuple[str, ...] = ()
    """hyperparameter grid such as beta=1,3,10; every value x every seed is one member of one program"""
    run_dir: str | None = None
    """where checkpoints, metrics, the plot and the table go (default runs/<algo>-<env>-<dataset>)"""
    resume: bool = False
    """continue the run in run_dir from its latest checkpoint; a larger steps (online_steps for
    offline-to-online) extends a finished run. `--resume RUN_DIR` alone reads the run's config.json"""
    overwrite: bool = False
    """delete an existing run in run_dir and start again"""
    progress: bool = True
    tensorboard: bool = False
    """also write TensorBoard event files to run_dir/tensorboard/, one run per member (tensorboard --logdir RUN_DIR)"""
    wandb: Literal["off", "offline", "online"] = "off"
    """also log to Weights & Biases, a run per member (pip install 'jaxrl[wandb]'): offline writes
    run_dir/wandb/ with no network or account (wandb sync uploads it later), online after wandb login"""

    def __post_init__(self):
        named = d4rl_env(self.dataset) if self.dataset not in LEVELS else None
        if self.env is None:
            self.env = named or DEFAULT_ENV
        elif named and named != self.env:
            raise ConfigError(f"dataset {self.dataset!r} is named as D4RL's {named.split('/')[-1]} data, but env is {self.env!r}")
        if isinstance(self.corruption, dict):  # from a YAML spec
            unknown = sorted(set(self.corruption) - {f.name for f in dataclasses.fields(Corruption)})
            if unknown:
                allowed = ", ".join(f.name for f in dataclasses.fields(Corruption))
                raise ConfigError(f"corruption has no setting {unknown[0]!r}; it has: {allowed}")
            self.corruption = Corruption(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.corruption.items()})

        for field in ASSIGNMENTS:  # name=value settings are read when the config is made
            self.numbers(field) if field in NUMERIC_ASSIGNMENTS else self.assignments(field)

    def assignments(self, field: str) -> dict[str, str]:
        """name -> value of a name=value field (`ASSIGNMENTS`, or the property eval_params); ConfigError
        naming the field when one is malformed or a name is given twice."""
        return parse_assignments(getattr(self, field) or (), field)

    def numbers(self, field: str) -> dict[str, float]:
        """`assignments` of a field whose values are numbers (env params, dynamics scales)."""
        values = {}
        for name, text in self.assignments(field).items():
            try:
                values[name] = float(text)
            except ValueError:
                raise ConfigError(f"{field}: {name} must be a number, got {text!r}") from None
        return values

    @property
    def resolved_regime(self) -> str:
        return self.regime or self.agent.default_regime

    @property
    def uses_dataset(self) -> bool:
        return REGIMES[self.resolved_regime].reads_dataset(self.resolved_buffer)

    @property
    def resolved_buffer(self) -> str:
        return self.buffer or (REGIMES[self.resolved_regime].buffers or ("discard",))[0]

    @property
    def eval_params(self) -> tuple[str, ...]:
        return self.env_params if self.eval_env_params is None else self.eval_env_params

    def resolved_run_dir(self) -> Path:
        if self.run_dir:
            return Path(self.run_dir)
        source = Path(self.dataset).stem if self.uses_dataset else "online"
        suffix = REGIMES[self.resolved_regime].run_dir_suffix
        return Path("runs") / f"{self.agent.name}-{self.env.split('/')[-1]}-{source}{suffix}"

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
        if self.final_eval_episodes is not None and (
            not isinstance(self.final_eval_episodes, int) or self.final_eval_episodes <= 0
        ):
            raise ConfigError(f"final_eval_episodes must be a positive integer, got {self.final_eval_episodes!r}")
        if self.wandb not in WANDB_MODES:
            raise ConfigError(f"wandb must be off, offline or online, got {self.wandb!r}")
        if self.first_seed < 0 or self.learning_starts < 0:
            raise ConfigError("first_seed and learning_starts must be >= 0")
        if self.steps % self.chunk_steps:
            raise ConfigError(f"steps ({self.steps}) must be a multiple of chunk_steps ({self.chunk_steps})")
        if not self.utd > 0:
            raise ConfigError(f"utd must be > 0, got {self.utd}")
        if self.env not in envs.REGISTRY:
            raise ConfigError(f"unknown environment {self.env!r}; registered: {', '.join(envs.registered())}")
        regime = self.resolved_regime
        if regime not in REGIMES:
            raise ConfigError(f"unknown regime {regime!r}; regimes: {', '.join(REGIMES)}")
        refusal = REGIMES[regime].check(self.agent)
        if refusal:
            raise ConfigError(f"{self.agent.name} cannot run the {regime} regime: {refusal}")
        if regime == "offline-to-online":
            if not isinstance(self.online_steps, int) or self.online_steps <= 0 or self.online_steps % self.chunk_steps:
                raise ConfigError(
                    f"offline-to-online needs online_steps, a positive multiple of chunk_steps ({self.chunk_steps}), got {self.online_steps!r}"
                )
        elif self.online_steps:
            raise ConfigError(f"online_steps is the online phase of offline-to-online; the {regime} regime counts steps only")
        if REGIMES[regime].online and not self.agent.on_policy:
            env_steps = self.online_steps if regime == "offline-to-online" else self.steps
            if self.learning_starts >= env_steps:
                raise ConfigError(
                    f"learning_starts ({self.learning_starts}) is not below the online phase's {env_steps} env steps, "
                    "so it would make no update; lower learning_starts or give more steps"
                )
        buffers = REGIMES[regime].buffers
        if not buffers and self.online_hparams:
            raise ConfigError(f"online_hparams set an online phase; the {regime} regime has none")
        if not buffers and self.buffer is not None:
            raise ConfigError(f"buffer is a setting of an online phase; the {regime} regime has none")
        if buffers and self.resolved_buffer not in buffers:
            raise ConfigError(
                f"the {regime} regime takes buffer={' or '.join(buffers)} ({REGIMES[regime].description}), got buffer={self.buffer}"
            )
        if not 0.0 <= self.offline_fraction <= 1.0:
            raise ConfigError(f"offline_fraction must be in [0, 1], got {self.offline_fraction}")
        if not 0.0 < self.real_fraction <= 1.0:
            raise ConfigError(f"real_fraction must be in (0, 1], got {self.real_fraction}")
        if self.real_fraction < 1.0 and not self.uses_dataset:
            raise ConfigError(f"real_fraction keeps a share of the dataset; this {regime} run reads none")
        if self.resolved_buffer == "mix" and self.offline_fraction == 0.0:
            raise ConfigError("buffer=mix with offline_fraction=0 draws no offline data; use buffer=discard for that")
        if self.uses_dataset and self.dataset not in LEVELS and not Path(self.dataset).suffix and not Path(self.dataset).is_dir():
            raise ConfigError(
                f"dataset {self.dataset!r} is neither a suite level ({', '.join(LEVELS)}), a .hdf5/.npz path nor a Minari directory"
            )
        if self.env_params and self.sim_dynamics:
            raise ConfigError("set env_params (raw values) or sim_dynamics (scales), not both")
        if self.eval_env_params and self.eval_dynamics:
            raise ConfigError("set eval_env_params (raw values) or eval_dynamics (scales), not both")
        if self.online_hparams:
            self.agent.for_online().with_settings(self.assignments("online_hparams"), "online_hparams")
        parse_sweep(self.sweep, self.agent)
        if self.corruption.elements:
            if not self.uses_dataset:
                raise ConfigError("corruption applies to offline datasets only")
            self.corruption.validate()
        self.agent.validate()
        return self


def read_yaml(path: str | Path, what: str):
    """The YAML document at `path` ({} when empty); ConfigError naming the file and `what` it should be."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {what} file not found")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None


def load_experiment(path: str | Path):
    return config_from_mapping(read_yaml(path, "experiment"), Path(path))


def config_from_mapping(spec, source: str | Path):
    """A `TrainConfig` from {algo, agent: {...}, <TrainConfig fields>}: an experiment spec, or the
    config.json a run stores (JSON lists become the tuples the fields hold). Errors name `source`."""
    if not isinstance(spec, dict) or "algo" not in spec:
        raise ConfigError(f"{source}: an experiment is a mapping with at least an 'algo' key")
    spec = dict(spec)
    hyperparameters = spec.pop("agent", None) or {}
    if not isinstance(hyperparameters, dict):
        raise ConfigError(f"{source}: 'agent' must be a mapping of hyperparameters")
    hyperparameters = {k: tuple(v) if isinstance(v, list) else v for k, v in hyperparameters.items()}
    try:
        agent = make_agent(spec.pop("algo"), **hyperparameters)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"agent"}
    unknown = sorted(set(spec) - fields)
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}; allowed: algo, agent, {', '.join(sorted(fields))}")
    spec = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()}  # JSON/YAML lists: the tuple fields
    try:
        return TrainConfig(agent=agent, **spec)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def parse_assignments(specs: tuple[str, ...], what: str) -> dict[str, str]:
    """{"g": "12"} from ("g=12",); raises ConfigError naming `what` (the field) when one is malformed."""
    out = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ConfigError(f"{what}: {spec!r} must look like name=value")
        name = name.strip().replace("-", "_")
        if name in out:
            raise ConfigError(f"{what}: {name} is given twice ({out[name]} and {value.strip()}); give it once")
        out[name] = value.strip()
    return out


@dataclass
class ProtocolCommand:
    """A reproduce script's own options; its command subclasses this with a `protocol` field, the config."""

    full: bool = False
    """GPU scale: the protocol's `FULL` preset (settings after it override it)"""
    config: Path | None = None
    """a YAML file of protocol settings (later flags override it)"""
    out: Path | None = None
    """output directory (default experiments/results/<protocol>, or <protocol>-full with --full)"""


def protocol_command(command_cls, argv: list[str] | None, *, name: str, description: str, full: dict):
    """The reproduce scripts' front end, the same as `jaxrl.train`'s: tyro over `command_cls`, a dataclass
    whose `protocol` field is the protocol's config (its settings are flags without a prefix, e.g.
    `--seeds 2`) beside the script's own options, among them `config` (a YAML file of protocol settings)
    and `full` (the GPU-scale preset `full`), which set defaults that the other flags override. Returns
    the command with its protocol config validated and `out` set and created (default
    experiments/results/<name>, or <name>-full with --full), or SystemExit naming the problem."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    protocol_cls = typing.get_type_hints(command_cls)["protocol"]
    settings = dict(full) if "--full" in argv else {}
    try:
        if "--config" in argv:
            i = argv.index("--config")
            if i + 1 >= len(argv):
                raise ConfigError("--config needs a YAML file")
            settings.update(_protocol_settings(Path(argv[i + 1]), protocol_cls))
        default = command_cls(protocol=protocol_cls(**settings))
    except (ConfigError, TypeError) as err:
        raise SystemExit(f"error: {err}") from None
    command = tyro.cli(command_cls, args=argv, default=default, prog=f"python scripts/reproduce_{name}.py",
                       description=description, config=(tyro.conf.OmitArgPrefixes,))  # fmt: skip
    try:
        command.protocol.validate()
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None
    command.out = Path(command.out or Path("experiments/results") / (f"{name}-full" if command.full else name))
    command.out.mkdir(parents=True, exist_ok=True)
    return command


def _protocol_settings(path: Path, protocol_cls) -> dict:
    """A protocol config's settings from a YAML mapping (lists become the tuples the fields hold)."""
    spec = read_yaml(path, "protocol config")
    fields = {f.name for f in dataclasses.fields(protocol_cls)}
    if not isinstance(spec, dict) or set(spec) - fields:
        unknown = sorted(set(spec) - fields) if isinstance(spec, dict) else spec
        raise ConfigError(f"{path}: unknown setting(s) {unknown}; {protocol_cls.__name__} has: {', '.join(sorted(fields))}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()}
