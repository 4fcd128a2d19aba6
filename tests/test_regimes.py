"""Regimes from shared parts: data sources, offline-to-online with its switch, warm starts, env params,
the compiled chunks (each compiles once, none returns to the host),
and the regimes an agent is refused."""

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from jaxrl.agents import BC, DT, IQL, SAC, CalQL, ConfigError, ReBRAC
from jaxrl.data import Dataset, Normalizer
from jaxrl.engine.buffer import ReplayBuffer
from jaxrl.engine.checkpoint import Checkpointer
from jaxrl.engine.phases import OnlineState, collect
from jaxrl.engine.sources import DatasetSource, Mix
from jaxrl.engine.sweep import member_keys
from jaxrl.train import LoadedRun, TrainConfig, build, load_run, train
from tests.killing import run_killed
from tests.rounding import assert_trees_equal

TINY = (32, 32)


def transitions(n: int, reward: float) -> Dataset:
    """n transitions whose rewards all equal `reward` (to tell sources apart) and whose row index is in obs."""
    obs = jnp.stack([jnp.arange(n, dtype=jnp.float32)] * 3, axis=1)
    zeros = jnp.zeros(n)
    return Dataset(obs, jnp.zeros((n, 1)), jnp.full(n, reward), obs + 1, zeros, zeros)


# Data sources ------------------------------------------------------------------------------------


def test_dataset_source_samples_rows_of_the_dataset():
    data = transitions(50, 0.0)
    batch = DatasetSource(data).sample(jax.random.PRNGKey(0), 200)
    rows = np.asarray(batch.observations[:, 0]).astype(int)
    assert batch.rewards.shape == (200,) and rows.min() >= 0 and rows.max() < 50
    np.testing.assert_array_equal(batch.next_observations, batch.observations + 1)  # whole rows, not mixed
    assert len(set(rows)) > 30  # uniform over the dataset, not a few rows


def test_replay_buffer_samples_only_what_was_written():
    buffer = ReplayBuffer.create(100, 3, 1).add(transitions(10, 0.0))
    rows = np.asarray(buffer.sample(jax.random.PRNGKey(0), 500).observations[:, 0])
    assert set(rows.astype(int)) == set(range(10))


@pytest.mark.parametrize("fraction, expected", [(0.25, 64), (0.5, 128), (0.0, 0), (1.0, 256), (0.3, 77)])
def test_mix_draws_the_stated_share_from_each_source(fraction, expected):
    mix = Mix((DatasetSource(transitions(100, 1.0)), ReplayBuffer.create(50, 3, 1).add(transitions(50, 0.0))),
              jnp.asarray([fraction, 1 - fraction]))  # fmt: skip
    batch = mix.sample(jax.random.PRNGKey(1), 256)
    from_first = np.asarray(batch.rewards) == 1.0
    assert from_first.sum() == expected  # round(0.3 * 256) = 77
    # Rows are whole transitions of their source (observation and next observation from the same row).
    np.testing.assert_array_equal(batch.next_observations, batch.observations + 1)


def test_mix_fractions_can_be_vmapped():
    sources = (DatasetSource(transitions(100, 1.0)), DatasetSource(transitions(100, 0.0)))
    shares = jax.vmap(lambda f: (Mix(sources, jnp.stack([f, 1 - f])).sample(jax.random.PRNGKey(2), 100).rewards == 1).sum())(
        jnp.asarray([0.1, 0.5, 0.9])
    )
    np.testing.assert_array_equal(shares, [10, 50, 90])


def test_mix_refuses_sources_of_different_structure():
    with_next_actions = transitions(10, 1.0).replace(next_actions=jnp.zeros((10, 1)))
    mix = Mix((DatasetSource(with_next_actions), DatasetSource(transitions(10, 0.0))), jnp.asarray([0.5, 0.5]))
    with pytest.raises(ValueError, match="different structures"):
        mix.sample(jax.random.PRNGKey(0), 8)


# One normaliser, applied alike everywhere ---------------------------------------------------------


def test_collect_acts_on_and_stores_normalised_observations_and_scaled_rewards(pendulum):
    agent = IQL(hidden_dims=(8, 8)).configure(pendulum.spec, 100)
    agent_state = agent.init(jax.random.PRNGKey(0))
    norm = Normalizer(jnp.asarray([0.5, -0.2, 1.0]), jnp.asarray([2.0, 0.5, 4.0]), jnp.asarray(0.1, jnp.float32))
    obs, env_state = jax.vmap(pendulum.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(1), 4), None)
    state = OnlineState(agent_state, norm, ReplayBuffer.create(10, 3, 1), env_state, obs, jax.random.PRNGKey(2))
    keys = tuple(jax.random.split(jax.random.PRNGKey(3), 3))
    _, next_obs, stored, _, _ = jax.jit(lambda state, keys: collect(pendulum, agent, state, keys, None, None))(state, keys)

    expected_action = jax.jit(agent.act, static_argnums=3)(agent_state, (obs - norm.mean) / norm.std, keys[0], False)
    np.testing.assert_allclose(stored.actions, expected_action, rtol=1e-5)  # the same sample: same key, same input
    np.testing.assert_allclose(stored.observations, (obs - norm.mean) / norm.std, rtol=1e-6)
    np.testing.assert_allclose(stored.next_observations, (next_obs - norm.mean) / norm.std, rtol=1e-6)  # no episode ended
    raw = jax.vmap(pendulum.step, in_axes=(0, 0, 0, None))(jax.random.split(keys[2], 4), env_state, expected_action, None)
    np.testing.assert_allclose(stored.rewards, raw[2] * 0.1, rtol=1e-6)


# Offline-to-online -------------------------------------------------------------------------------


def o2o(tmp_path, data, name, **overrides):
    kwargs = dict(agent=IQL(hidden_dims=TINY), dataset=str(data), regime="offline-to-online", seeds=2, steps=200,
                  online_steps=200, chunk_steps=100, batch_size=64, num_envs=2, learning_starts=50, buffer_size=500,
                  eval_every=1, eval_episodes=2, checkpoint_every=1, run_dir=str(tmp_path / name), progress=False)  # fmt: skip
    return TrainConfig(**(kwargs | overrides))


@pytest.fixture(scope="module")
def switched(tmp_path_factory, random_pendulum_file):
    """An uninterrupted offline-to-online run: 200 IQL updates, then 200 environment steps."""
    return train(o2o(tmp_path_factory.mktemp("o2o"), random_pendulum_file, "full"))


def test_offline_to_online_switches_phase_and_reports_it(switched):
    rows = [json.loads(line) for line in (switched.run_dir / "metrics.jsonl").read_text().splitlines()]
    phases = [(r["step"], r["phase"]) for r in rows if r["member"] == 0]
    assert phases == [(0, "offline"), (100, "offline"), (200, "offline"), (300, "online"), (400, "online")]
    online = [r for r in rows if r["phase"] == "online"]
    assert all(r["updates"] > 0 for r in online)  # 50 warm-up steps, then one update per env step
    assert "critic_loss" in online[0] and "episode_return" in online[0]
    assert "around the switch to online at step 200" in switched.table
    assert "| offline | first online | dip | final |" in switched.table
    offline_score = next(r["normalized_score"] for r in rows if r["step"] == 200 and r["member"] == 0)
    member0 = next(
        line
        for line in switched.table.splitlines()[
            switched.table.splitlines().index("| member | seed | offline | first online | dip | final |") + 2 :
        ]
    )
    assert member0.startswith(f"| 0 | 0 | {offline_score:.1f} |")
    assert (switched.run_dir / "curve.png").stat().st_size > 0
    # The online phase starts from the offline phase's final agent: its buffer holds the dataset first.
    buffer = switched.states.buffer
    assert buffer.data.rewards.shape[1] == 2_000 + 500 and int(buffer.size[0]) == 2_000 + 200  # [members, capacity]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, random_pendulum_file):
    """The offline phase of `switched` as a run of its own (the same program: compiled once for both)."""
    return train(o2o(tmp_path_factory.mktemp("pretrained"), random_pendulum_file, "pretrained", regime="offline", online_steps=0))


@pytest.mark.numerics
def test_warm_start_equals_continuing_the_earlier_run(tmp_path, random_pendulum_file, switched, pretrained):
    """Pretrain offline as one run, then fine-tune it online as another: the same as one offline-to-online run."""
    finetuned = train(o2o(tmp_path, random_pendulum_file, "finetuned", regime="online", buffer="keep", online_steps=0),
                      init_from=pretrained)  # fmt: skip
    assert_trees_equal(switched.states, finetuned.states)
    # ... and from the run directory, as --init-from does
    again = train(o2o(tmp_path, random_pendulum_file, "again", regime="online", buffer="keep", online_steps=0,
                      init_from=str(pretrained.run_dir)))  # fmt: skip
    assert_trees_equal(switched.states, again.states)


@pytest.mark.numerics
def test_run_stopped_at_the_switch_or_after_it_resumes_to_the_same_state(tmp_path, random_pendulum_file, switched):
    # Stopped right after the offline phase's last checkpoint (between the phases).
    train(o2o(tmp_path, random_pendulum_file, "at-switch"), stop_after_chunks=2)
    assert Checkpointer(tmp_path / "at-switch" / "checkpoints").latest_step() == 200
    resumed = train(o2o(tmp_path, random_pendulum_file, "at-switch", resume=True))
    assert_trees_equal(switched.states, resumed.states)

    # Stopped inside the online phase, after its first chunk.
    train(o2o(tmp_path, random_pendulum_file, "stopped"), stop_after_chunks=3)
    assert Checkpointer(tmp_path / "stopped" / "checkpoints").latest_step() == 300
    resumed = train(o2o(tmp_path, random_pendulum_file, "stopped", resume=True))
    assert_trees_equal(switched.states, resumed.states)


@pytest.mark.numerics
@pytest.mark.slow(
    reason="a training process of its own, SIGKILLed, then resumed (a new process compiles everything: ~20 s)",
    companion="tests/test_regimes.py::test_run_stopped_at_the_switch_or_after_it_resumes_to_the_same_state",
)
def test_run_killed_at_the_switch_resumes_to_the_same_state(tmp_path, random_pendulum_file, switched):
    # SIGKILL right after the offline phase's last checkpoint (between the phases).
    args = ["--regime", "offline-to-online", "--dataset", str(random_pendulum_file), "--seeds", "2", "--steps", "200",
            "--online-steps", "200", "--chunk-steps", "100", "--batch-size", "64", "--num-envs", "2",
            "--learning-starts", "50", "--buffer-size", "500", "--eval-every", "1", "--eval-episodes", "2",
            "--checkpoint-every", "1", "--run-dir", str(tmp_path / "killed"), "--no-progress",
            "iql", "--hidden-dims", "32", "32"]  # fmt: skip
    # the offline phase's last state is on disk; the online phase never starts
    run_killed(f"from jaxrl.train import main\nmain({args!r})", step=200)
    assert Checkpointer(tmp_path / "killed" / "checkpoints").latest_step() == 200
    resumed = train(o2o(tmp_path, random_pendulum_file, "killed", resume=True))
    assert_trees_equal(switched.states, resumed.states)


def test_online_phase_hyperparameters_and_buffer_policies(tmp_path, random_pendulum_file):
    cfg = o2o(tmp_path, random_pendulum_file, "mix", buffer="mix", offline_fraction=0.25,
              online_hparams=("actor_lr=1e-4", "expectile=0.9"))  # fmt: skip
    online = build(cfg).program.phases[1]
    assert online.spec.buffer == "mix" and online.spec.offline_fraction == 0.25
    np.testing.assert_allclose(online.spec.agents.actor_lr, [1e-4, 1e-4])
    np.testing.assert_allclose(online.spec.agents.expectile, [0.9, 0.9])
    assert online.spec.agents.cosine_actor_lr is False  # IQL fine-tunes at a constant rate (IQL.for_online)
    with pytest.raises(ConfigError, match="online_hparams: iql has no hyperparameter 'nope'"):
        build(o2o(tmp_path, random_pendulum_file, "x", online_hparams=("nope=1",)))
    discard = build(o2o(tmp_path, random_pendulum_file, "discard", buffer="discard")).program
    states = discard.phases[1].start(discard.init(jnp.stack([jax.random.PRNGKey(0)] * 2)), jnp.stack([jax.random.PRNGKey(0)] * 2))
    assert int(states.buffer.size[0]) == 0 and states.buffer.data.rewards.shape[1] == 500


def test_hybrid_learns_from_the_dataset_and_the_simulator(tmp_path, random_pendulum_file):
    cfg = o2o(tmp_path, random_pendulum_file, "hybrid", agent=BC(hidden_dims=(8, 8)), regime="hybrid",
              online_steps=0, env_params=("g=12",), seeds=1, steps=200)  # fmt: skip
    result = train(cfg)
    assert result.final_rows[0]["phase"] == "online" and result.final_rows[0]["updates"] == 100
    assert int(result.states.buffer.size[0]) == 200  # a new buffer for the simulator's transitions
    program = build(cfg).program
    assert float(program.data["collect_params"].g) == 12.0 and float(program.data["eval_params"].g) == 12.0


def test_real_fraction_keeps_a_seeded_share_of_the_dataset(tmp_path, random_pendulum_file):
    def rows(**overrides):
        # raw observations: standardised ones would differ with the statistics of each share
        cfg = o2o(tmp_path, random_pendulum_file, "scarce", agent=BC(hidden_dims=(8, 8)), regime="hybrid", online_steps=0,
                  seeds=1, steps=200, normalize_obs=False, **overrides)  # fmt: skip
        return np.asarray(build(cfg).program.data["dataset"].observations)

    everything, scarce = rows(), rows(real_fraction=0.3)
    assert scarce.shape[0] == round(0.3 * everything.shape[0])
    np.testing.assert_array_equal(scarce, rows(real_fraction=0.3))  # the same rows given the same seed
    assert not np.array_equal(scarce, rows(real_fraction=0.3, first_seed=1))
    assert np.isin(scarce[:, 0], everything[:, 0]).all()  # rows of the dataset, not new ones


# Environment parameters --------------------------------------------------------------------------


def test_env_params_reach_collecting_and_evaluation(tmp_path, random_pendulum_file):
    def returns(**overrides):
        # BC online: the cheapest agent to compile that acts and updates; the plumbing is the agent's.
        cfg = TrainConfig(agent=BC(hidden_dims=(8, 8)), regime="online", seeds=1, steps=100, chunk_steps=100, learning_starts=50,
                          eval_episodes=4, run_dir=str(tmp_path / "x"), progress=False, **overrides)  # fmt: skip
        program = build(cfg).program
        keys = jnp.stack([jax.random.PRNGKey(0)])
        states = program.init(keys)
        collected, _ = program.chunk(states, 0)
        return np.asarray(program.evaluate(states, jax.random.PRNGKey(1))), np.asarray(collected.buffer.data.next_observations)

    default_eval, default_collected = returns()
    heavy_eval, heavy_collected = returns(env_params=("g=20",))
    assert not np.allclose(heavy_collected, default_collected) and not np.allclose(heavy_eval, default_eval)
    collect_only = build(TrainConfig(agent=BC(hidden_dims=(8, 8)), regime="online", env_params=("g=20",),
                                     eval_env_params=(), run_dir=str(tmp_path / "y"))).program  # fmt: skip
    assert float(collect_only.data["collect_params"].g) == 20.0
    assert collect_only.data["eval_params"] is None  # evaluated in the env's own dynamics


def test_sim_dynamics_shift_collecting_only_and_bad_ones_are_refused_before_compiling(tmp_path, random_pendulum_file):
    """H2O's protocol: the simulator is the env with scaled dynamics (and joint noise); policies are
    evaluated in the env's own dynamics unless eval_dynamics says otherwise."""
    cfg = o2o(tmp_path, random_pendulum_file, "sim", agent=BC(hidden_dims=(8, 8)), regime="hybrid", online_steps=0,
              seeds=1, sim_dynamics=("gravity=2", "joint_noise=0.5"))  # fmt: skip
    data = build(cfg).program.data
    assert float(data["collect_params"].g) == 20.0 and float(data["collect_params"].joint_noise) == 0.5
    assert data["eval_params"] is None  # the real env
    shifted = build(cfg.__class__(**{**cfg.__dict__, "eval_dynamics": ("length=1.5",)})).program.data["eval_params"]
    assert float(shifted.l) == 1.5 and float(shifted.g) == 10.0
    for bad, message in [
        (
            dict(sim_dynamics=("friction=2",)),
            "sim_dynamics: gymnax/Pendulum-v1 has no dynamics 'friction'; its dynamics: gravity",
        ),
        (dict(sim_dynamics=("gravity=0",)), "gravity must be a finite number > 0"),
        (dict(env_params=("g=3",)), r"set env_params \(raw values\) or sim_dynamics \(scales\), not both"),
    ]:
        with pytest.raises(ConfigError, match=message):
            build(cfg.__class__(**{**cfg.__dict__, **bad}))


def test_gravity_makes_the_pendulum_fall_faster():
    """From upright-but-tilted at rest with no torque, the angular speed after a step grows with g."""
    from gymnax.environments.classic_control.pendulum import EnvState

    env = envs.make("gymnax/Pendulum-v1", wrappers=False)
    state = EnvState(theta=jnp.float32(0.3), theta_dot=jnp.float32(0.0), last_u=jnp.float32(0.0), time=0)
    theta_dot = [
        float(env.step(jax.random.PRNGKey(0), state, jnp.zeros(1), env.params_with(g=g))[1].theta_dot) for g in (5.0, 10.0, 20.0)
    ]
    assert 0 < theta_dot[0] < theta_dot[1] < theta_dot[2]
    np.testing.assert_allclose(theta_dot[2], 2 * theta_dot[1], rtol=1e-5)  # theta_dot' = 3g/(2l) sin(theta) dt
    # The env's own value given explicitly steps exactly as the default params do.
    default = env.step(jax.random.PRNGKey(0), state, jnp.zeros(1), None)[1]
    explicit = env.step(jax.random.PRNGKey(0), state, jnp.zeros(1), env.params_with(g=10.0))[1]
    assert_trees_equal(default, explicit)


def test_unknown_env_parameter_lists_the_env_parameters(tmp_path):
    cfg = TrainConfig(agent=SAC(hidden_dims=(8, 8)), env_params=("gravity=2",), run_dir=str(tmp_path / "x"))
    with pytest.raises(ConfigError, match=r"env_params: gymnax/Pendulum-v1 has no parameter 'gravity'; its parameters .*g=10.0"):
        build(cfg)
    # name=value settings are read when the config is made, before anything is loaded or built
    with pytest.raises(ConfigError, match="env_params: 'g' must look like name=value"):
        TrainConfig(agent=SAC(hidden_dims=(8, 8)), env_params=("g",))
    with pytest.raises(ConfigError, match="sim_dynamics: gravity must be a number, got 'high'"):
        TrainConfig(agent=SAC(hidden_dims=(8, 8)), sim_dynamics=("gravity=high",))
    with pytest.raises(ConfigError, match="eval_dynamics: length is given twice"):
        TrainConfig(agent=SAC(hidden_dims=(8, 8)), eval_dynamics=("length=2", "length=3"))
    o2o_iql = dict(agent=IQL(), regime="offline-to-online", online_steps=2000)
    with pytest.raises(ConfigError, match="online_hparams: iql.actor_lr must be float, got 'fast'"):
        TrainConfig(**o2o_iql, online_hparams=("actor_lr=fast",)).validate()
    with pytest.raises(ConfigError, match="online_hparams: iql.cosine_actor_lr must be true or false, got 'maybe'"):
        TrainConfig(**o2o_iql, online_hparams=("cosine_actor_lr=maybe",)).validate()


# Refusals and warm-start errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(agent=DT(), regime="online"), "dt cannot run the online regime: it learns from whole trajectory windows"),
        (
            dict(agent=ReBRAC(), regime="offline-to-online", online_steps=1000),
            "rebrac cannot run the offline-to-online regime: its critic penalty",
        ),
        (dict(agent=IQL(), regime="offline-to-online"), "offline-to-online needs online_steps"),
        (dict(agent=IQL(), online_steps=1000), "online_steps is the online phase of offline-to-online"),
        (
            dict(agent=SAC(), regime="hybrid", buffer="discard"),
            r"the hybrid regime takes buffer=mix \(collect in a simulator and learn from a mix",
        ),
        (dict(agent=IQL(), buffer="keep"), "the offline regime has none"),
        (dict(agent=IQL(), regime="online", offline_fraction=1.5), "offline_fraction must be in"),
        (dict(agent=SAC(), regime="online", buffer="mix", offline_fraction=0.0), "mix with offline_fraction=0 draws no"),
        (dict(agent=SAC(), regime="hybrid", real_fraction=0.0), r"real_fraction must be in \(0, 1\], got 0.0"),
        (dict(agent=SAC(), regime="online", real_fraction=0.5), "real_fraction keeps a share of the dataset; this online run"),
    ],
)
def test_refused_regimes_say_why_before_compiling(overrides, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**overrides).validate()


def test_online_hparams_need_a_pretrained_agent(tmp_path):
    with pytest.raises(ConfigError, match="online_hparams set an online phase that starts pretrained"):
        build(TrainConfig(agent=SAC(hidden_dims=(8, 8)), online_hparams=("actor_lr=1e-4",), run_dir=str(tmp_path)))


def test_warm_start_mismatches_name_the_run_and_the_difference(tmp_path, random_pendulum_file, pretrained):
    run = str(pretrained.run_dir)

    def start(**overrides):
        return build(o2o(tmp_path, random_pendulum_file, "new", regime="online", online_steps=0, **overrides))

    with pytest.raises(ConfigError, match=f"{tmp_path / 'nowhere'}: no config.json"):
        start(init_from=str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text((pretrained.run_dir / "config.json").read_text())
    with pytest.raises(ConfigError, match=f"{tmp_path / 'empty'}: no checkpoint"):
        start(init_from=str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match=f"init_from {run} trained iql, not sac"):
        start(init_from=run, agent=SAC(hidden_dims=TINY))
    with pytest.raises(
        ConfigError, match=r"its agent state does not fit this iql: .* \(hidden_dims \(32, 32\) there, \(64, 64\) here\)"
    ):
        start(init_from=run, agent=IQL(hidden_dims=(64, 64)))
    with pytest.raises(
        ConfigError, match=f"init_from {run} was trained on gymnax/Pendulum-v1 .*MountainCarContinuous-v0 has obs dim 2"
    ):
        start(init_from=run, env="gymnax/MountainCarContinuous-v0", buffer="discard")
    with pytest.raises(ConfigError, match=f"init_from {run} has 2 members; this run has 3"):
        start(init_from=run, seeds=3)
    # One pretrained member starts every member of a new sweep.
    loaded = load_run(run)
    one = LoadedRun(
        loaded.config,
        loaded.agents,
        loaded.members[:1],
        jax.tree.map(lambda x: x[:1], loaded.states),
        loaded.step,
        loaded.run_dir,
    )
    built = start(init_from=one, seeds=3)
    states = built.program.init(jnp.stack([jax.random.PRNGKey(i) for i in range(3)]))
    assert all(leaf.shape[0] == 3 for leaf in jax.tree.leaves(states))
    for leaf in jax.tree.leaves(states.agent):
        np.testing.assert_array_equal(leaf[0], leaf[2])
    np.testing.assert_array_equal(built.normalizer.mean, loaded.states.normalizer.mean[0])


# Compiled chunks -----------------------------------------------------------------------------


HOST_PATTERNS = ("callback", "outfeed", "infeed", "host", "send", "recv")


def opcodes(hlo_text: str) -> list[str]:
    """The opcode of every instruction (`%name = type opcode(operands), ...`) of an HLO text."""
    found = []
    for line in hlo_text.splitlines():
        m = re.match(r"\s*(?:ROOT\s+)?%\S+\s*=\s*(.*)", line)
        if m and (op := re.search(r"([a-z][a-z0-9-]*)\(", m.group(1))):
            found.append(op.group(1))
    return found


def host_transfers(hlo_text: str) -> list[str]:
    """The instructions of a compiled program's HLO text that call back into or talk to the host:
    host callbacks (custom calls such as xla_python_cpu_callback), infeed/outfeed, send/recv."""
    targets = set(re.findall(r'custom_call_target="([^"]+)"', hlo_text))
    return sorted(x for x in set(opcodes(hlo_text)) | targets if any(p in x.lower() for p in HOST_PATTERNS))


def while_loops(hlo_text: str) -> int:
    return opcodes(hlo_text).count("while")


@pytest.fixture(scope="module")
def programs(tmp_path_factory, random_pendulum_file):
    """IQL offline then online: both kinds of phase, each chunk run twice. (An online phase from scratch is
    the same chunk but for the uniform actions of its first steps.) Cal-QL's online phase also writes
    returns-to-go back into its buffer as episodes end, and mixes the dataset in."""
    out = {}
    for name, overrides in (
        ("offline-to-online", {}),
        ("calql", dict(agent=CalQL(hidden_dims=(8, 8), num_sampled_actions=2), buffer="mix", online_steps=400)),
    ):
        # The config of `switched`: its chunks are already compiled (the persistent cache) when that ran first.
        program = build(o2o(tmp_path_factory.mktemp("compiled"), random_pendulum_file, "compiled", **overrides)).program
        keys = member_keys([{"seed": 0}, {"seed": 1}])
        states, types = program.init(keys), []
        for index in range(program.num_chunks):
            states = program.enter(states, index, keys)
            before = jax.tree.map(lambda x: (x.shape, x.dtype, x.weak_type), states)
            states, _ = program.chunk(states, index)
            types.append((before, jax.tree.map(lambda x: (x.shape, x.dtype, x.weak_type), states)))
        out[name] = program, types
    return out


PHASES = [("offline-to-online", 0), ("offline-to-online", 1), ("calql", 1)]
IDS = ["offline", "online", "calql-online"]


@pytest.mark.parametrize("regime, phase", PHASES, ids=IDS)
def test_chunks_compile_once(programs, regime, phase):
    """The state a chunk returns has exactly the types it takes: the host loop never recompiles (each
    phase of a regime compiles its chunk once)."""
    program, types = programs[regime]
    for before, after in types:
        assert after == before
    assert program.phases[phase].compiled_chunk._cache_size() == 1


@pytest.mark.parametrize("regime, phase", PHASES, ids=IDS)
def test_chunk_makes_no_host_round_trip(programs, regime, phase):
    """A chunk is one device program: no host callback, infeed/outfeed or send/recv inside its loop."""
    program, _ = programs[regime]
    keys = member_keys([{"seed": 0}, {"seed": 1}])
    states = program.abstract_states(program.phases[phase].first_chunk + 1, keys)
    text = program.phases[phase].compiled_chunk.lower(states, 0, program.data).compile().as_text()
    assert while_loops(text) >= 1, "expected the chunk's lax.scan as a while loop: is this the chunk's HLO?"
    assert host_transfers(text) == []


def test_host_transfers_sees_a_callback():
    """The check can fail: a `jax.debug.callback` inside a scan shows up in the compiled program."""

    def body(carry, x):
        jax.debug.callback(lambda v: None, x)
        return carry + x, None

    text = jax.jit(lambda xs: jax.lax.scan(body, 0.0, xs)[0]).lower(jnp.arange(3.0)).compile().as_text()
    assert while_loops(text) >= 1
    assert any("callback" in x for x in host_transfers(text)), host_transfers(text)
