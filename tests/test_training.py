"""End-to-end behaviour of the trainer: learning, sweeps, resume, divergence, config validation."""

import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tyro

from jaxrl.agents import BC, IQL, SAC, ConfigError, make_agent
from jaxrl.data import Dataset, save_dataset
from jaxrl.engine.checkpoint import Checkpointer
from jaxrl.engine.run_dir import RunDir
from jaxrl.engine.sharding import IdleDevicesWarning, member_mesh
from jaxrl.engine.trainer import TrainingDiverged
from jaxrl.train import TrainConfig, _merge_repeated_lists, build, load_run, main, train
from tests.killing import run_killed
from tests.rounding import assert_equal_up_to_rounding, assert_trees_equal

TINY = (32, 32)


def small_offline(tmp_path, path, name, **overrides):
    kwargs = dict(
        agent=IQL(hidden_dims=TINY),
        dataset=str(path),
        seeds=2,
        steps=400,
        chunk_steps=100,
        batch_size=64,
        eval_every=2,
        eval_episodes=2,
        checkpoint_every=1,
        run_dir=str(tmp_path / name),
        progress=False,
    )
    return TrainConfig(**(kwargs | overrides))


@pytest.mark.slow(
    reason="learning run: 6,000 SAC env steps on Pendulum (16 s)",
    companion="tests/test_offline_agents.py::test_critic_targets_stop_at_terminals_and_come_from_the_target_network",
)
def test_sac_learns_pendulum(tmp_path):
    cfg = TrainConfig(
        agent=SAC(hidden_dims=(64, 64)),
        seeds=1,
        steps=6_000,
        chunk_steps=2_000,
        eval_every=3,
        eval_episodes=10,
        learning_starts=1_000,
        buffer_size=10_000,
        run_dir=str(tmp_path / "sac"),
        progress=False,
    )
    result = train(cfg)
    # A uniformly random policy scores about -1200 on Pendulum; a swing-up policy about -150. Measured
    # (2026-12-02): -187 after 6000 env steps.
    assert result.final_rows[0]["eval_return"] > -400


@pytest.mark.slow(
    reason="learning run: IQL and BC, 6,000 updates x 2 seeds each (60 s)",
    companion="tests/test_offline_agents.py::test_advantage_weighted_actors_move_towards_the_rewarded_actions",
)
def test_iql_learns_medium_replay_and_beats_bc(tmp_path):
    # Measured (2026-12-02, 2 seeds, 6000 updates of 256): IQL 2x64 48.1 and 2x128 62.6, BC 2x64 -21.3.
    common = dict(seeds=2, steps=6_000, chunk_steps=1_000, eval_every=6, eval_episodes=10, progress=False)
    iql = train(TrainConfig(agent=IQL(hidden_dims=(64, 64)), run_dir=str(tmp_path / "iql"), **common))
    bc = train(TrainConfig(agent=BC(hidden_dims=(64, 64)), run_dir=str(tmp_path / "bc"), **common))
    iql_score = np.mean([r["normalized_score"] for r in iql.final_rows])
    bc_score = np.mean([r["normalized_score"] for r in bc.final_rows])
    # medium-replay holds mostly poor episodes (mean normalised return below 0): IQL must improve on them.
    assert iql_score >= 30, iql_score
    assert iql_score > bc_score + 30, (iql_score, bc_score)
    assert (tmp_path / "iql" / "curve.png").exists() and (tmp_path / "iql" / "results.md").exists()


@pytest.fixture(scope="module")
def swept(tmp_path_factory, random_pendulum_file):
    """Two seeds x beta 1, 10: four members in one program, on one device."""
    return train(small_offline(tmp_path_factory.mktemp("sweep"), random_pendulum_file, "sweep", **SWEEP))


SWEEP = dict(sweep=("beta=1,10",), steps=200)


def test_a_process_other_than_the_primary_trains_alike_and_writes_no_files(tmp_path, random_pendulum_file, swept, monkeypatch):
    """What a multi-process run's other processes do (tests/test_distributed.py runs them for real), here in one
    process: the same training and rows as the primary (they gather every metric, so they decide alike), and no
    file but their checkpoint shards. (The same program as `swept`: compiled once for both.)"""
    from jaxrl.engine import distributed

    monkeypatch.setattr(distributed, "is_primary", lambda: False)
    other = train(small_offline(tmp_path, random_pendulum_file, "other", **SWEEP))
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["checkpoints"]
    assert other.final_rows == swept.final_rows and other.table == swept.table
    for x, y in zip(jax.tree.leaves(other.states), jax.tree.leaves(swept.states), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.numerics
def test_sweep_member_equals_single_run(tmp_path, random_pendulum_file, swept):
    members = [(r["seed"], r["beta"]) for r in swept.final_rows]
    assert members == [(0, 1.0), (1, 1.0), (0, 10.0), (1, 10.0)]
    alone = train(small_offline(tmp_path, random_pendulum_file, "alone", agent=IQL(hidden_dims=TINY, beta=10.0), seeds=1,
                                first_seed=1, steps=200))  # fmt: skip
    member = jax.tree.map(lambda x: x[3], swept.states.agent)
    # Two different programs (vmapping batches the matmuls): equal up to float rounding (tests/rounding.py).
    assert_equal_up_to_rounding(member, jax.tree.map(lambda x: x[0], alone.states.agent))
    # And the hyperparameter really changed the result:
    other = jax.tree.map(lambda x: x[1], swept.states.agent)
    assert not np.allclose(
        other.actor.params["params"]["MLP_0"]["Dense_0"]["kernel"], member.actor.params["params"]["MLP_0"]["Dense_0"]["kernel"]
    )


@pytest.mark.numerics
@pytest.mark.slow(
    reason="a second Python process with two virtual devices compiles the sharded sweep (18 s)",
    companion="tests/test_training.py::test_sweep_member_equals_single_run",
)
def test_two_devices_match_one(tmp_path, random_pendulum_file, swept):
    """The same sweep with its members sharded over two (virtual CPU) devices, in a process that has two."""
    import os
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import jax, numpy as np
        from tests.test_training import SWEEP, small_offline
        from jaxrl.train import train
        from pathlib import Path
        assert jax.device_count() == 2
        result = train(small_offline(Path({str(tmp_path)!r}), Path({str(random_pendulum_file)!r}), "two", **SWEEP))
        leaves = jax.tree.leaves(result.states)
        assert all(len(leaf.sharding.device_set) == 2 for leaf in leaves), "members were not sharded"
        np.savez({str(tmp_path / "two.npz")!r}, *[np.asarray(leaf) for leaf in leaves])
    """)
    # Keep the caller's XLA flags (e.g. --xla_cpu_max_isa), so both sides run the same kernels.
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2".strip()
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert jax.device_count() == 1
    with np.load(tmp_path / "two.npz") as two:
        sharded = [two[f"arr_{i}"] for i in range(len(two.files))]
    # Two members per device is another program than four on one: equal up to float rounding.
    assert_equal_up_to_rounding(swept.states, jax.tree.unflatten(jax.tree.structure(swept.states), sharded))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, random_pendulum_file):
    """The 400-step runs that the resume tests compare with, trained once for the module."""
    runs = {}

    def get(online: bool):
        if online not in runs:
            tmp = tmp_path_factory.mktemp("uninterrupted")
            runs[online] = train(small_offline(tmp, random_pendulum_file, "full", **(ONLINE if online else {})))
        return runs[online]

    return get


ONLINE = dict(agent=SAC(hidden_dims=TINY), learning_starts=150, buffer_size=1_000)


@pytest.mark.numerics
# Resuming an online phase is covered by the faster offline-to-online tests (tests/test_regimes.py).
@pytest.mark.parametrize(
    "online",
    [
        False,
        pytest.param(
            True,
            marks=pytest.mark.slow(
                reason="SAC's online phase killed and resumed (23 s)",
                companion="tests/test_regimes.py::test_run_stopped_at_the_switch_or_after_it_resumes_to_the_same_state",
            ),
        ),
    ],
    ids=["offline-iql", "online-sac"],
)
def test_resumed_run_equals_uninterrupted(tmp_path, random_pendulum_file, online, uninterrupted):
    extra = ONLINE if online else {}
    killed = small_offline(tmp_path, random_pendulum_file, "killed", **extra)
    train(killed, stop_after_chunks=2)
    assert Checkpointer(tmp_path / "killed" / "checkpoints").latest_step() == 200
    resumed = train(small_offline(tmp_path, random_pendulum_file, "killed", resume=True, **extra))
    assert_trees_equal(uninterrupted(online).states, resumed.states)
    logged = [json.loads(line)["step"] for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert logged == [0, 0, 100, 100, 200, 200, 300, 300, 400, 400]


def test_existing_run_is_not_overwritten_silently(tmp_path, random_pendulum_file):
    train(small_offline(tmp_path, random_pendulum_file, "run", steps=100))
    with pytest.raises(ValueError, match="already holds a run"):
        train(small_offline(tmp_path, random_pendulum_file, "run", steps=100))
    with pytest.raises(ConfigError, match=r"config differs in batch_size \(batch_size: 64 there, 32 here\)"):
        train(small_offline(tmp_path, random_pendulum_file, "run", steps=100, batch_size=32, resume=True))


# Run directories ------------------------------------------------------------------------------


def test_killed_run_moved_elsewhere_resumes_by_its_directory_alone(
    tmp_path, random_pendulum_file, uninterrupted, monkeypatch, capsys
):
    """Made with an absolute run_dir, killed, moved, then resumed with a relative path and no other flag."""
    train(small_offline(tmp_path, random_pendulum_file, "killed"), stop_after_chunks=2)
    (tmp_path / "killed").rename(tmp_path / "moved")
    monkeypatch.chdir(tmp_path)
    main(["--resume", "moved"])
    assert "eval_return" in capsys.readouterr().out  # the results table
    resumed = load_run("moved")
    assert resumed.step == 400 and resumed.run_dir == tmp_path.resolve() / "moved"
    assert_trees_equal(uninterrupted(False).states.agent, resumed.states.agent)
    recorded = json.loads((tmp_path / "moved" / "config.json").read_text())
    assert recorded["run_dir"] == str(tmp_path.resolve() / "moved")
    assert recorded["dataset"] == str(random_pendulum_file.resolve())
    provenance = recorded["provenance"]
    assert provenance["versions"]["jax"] == jax.__version__ and provenance["devices"].startswith("1 x ")
    assert len(provenance["commit"] or "x" * 40) == 40
    with pytest.raises(SystemExit, match="cannot resume nowhere: no such directory"):
        main(["--resume", "nowhere"])
    with pytest.raises(ConfigError, match="cannot resume .*nowhere: no such directory"):
        train(small_offline(tmp_path, random_pendulum_file, "nowhere", resume=True))


def test_run_directory_resumes_its_recorded_config_and_extends_only_forward(tmp_path, monkeypatch):
    """The rules `--resume` follows, without training: run control may change, the step count may grow
    (when the caller says it is extendable), nothing else may differ; paths name one directory."""
    run = RunDir(tmp_path / "run")
    config = {"algo": "iql", "steps": 200, "batch_size": 64, "progress": False}
    run.prepare(config, resume=False, overwrite=False, extendable=("steps",))
    (run.checkpoint_dir / "200").mkdir(parents=True)  # a checkpoint marks a run
    with pytest.raises(ConfigError, match="already holds a run"):
        run.prepare(config, resume=False, overwrite=False)
    run.prepare(config | {"steps": 400, "progress": True}, resume=True, overwrite=False, extendable=("steps",))
    recorded = json.loads(run.config_file.read_text())
    assert recorded["steps"] == 400 and recorded["provenance"]["versions"]["jax"] == jax.__version__
    with pytest.raises(ConfigError, match="with steps 300: it has recorded 400; a run extends, never shortens"):
        run.prepare(config | {"steps": 300}, resume=True, overwrite=False, extendable=("steps",))
    with pytest.raises(ConfigError, match=r"differs in batch_size \(batch_size: 64 there, 32 here\)"):
        run.prepare(config | {"steps": 400, "batch_size": 32}, resume=True, overwrite=False, extendable=("steps",))
    with pytest.raises(ConfigError, match="differs in steps"):  # a step count the caller does not extend
        run.prepare(config | {"steps": 800}, resume=True, overwrite=False)
    with pytest.raises(ConfigError, match="cannot resume .*missing: no such directory"):
        RunDir(tmp_path / "missing").prepare(config, resume=True, overwrite=False)
    monkeypatch.chdir(tmp_path)
    assert RunDir("run").path == RunDir(tmp_path / "run").path == run.path
    assert RunDir("run").read_config()["run_dir"] == str(run.path)  # where it is now


@pytest.mark.slow(
    reason="trains 600 updates in two runs to compare an extended run with a longer one (11 s)",
    companion="tests/test_training.py::test_run_directory_resumes_its_recorded_config_and_extends_only_forward",
)
def test_finished_run_extends_to_more_steps_as_if_it_had_been_asked_for_them(tmp_path, random_pendulum_file):
    """200 updates, then `--resume --steps 400`: bit for bit the 400-update run (the actor's learning rate
    is constant here; a schedule over the run's length would follow the new length from step 200)."""
    agent = IQL(hidden_dims=TINY, cosine_actor_lr=False)
    full = train(small_offline(tmp_path, random_pendulum_file, "full", agent=agent))
    train(small_offline(tmp_path, random_pendulum_file, "short", agent=agent, steps=200))
    extended = train(small_offline(tmp_path, random_pendulum_file, "short", agent=agent, resume=True))
    assert_trees_equal(full.states, extended.states)
    logged = [json.loads(line)["step"] for line in (tmp_path / "short" / "metrics.jsonl").read_text().splitlines()]
    assert logged == [0, 0, 100, 100, 200, 200, 300, 300, 400, 400]
    again = train(small_offline(tmp_path, random_pendulum_file, "short", agent=agent, resume=True))  # nothing left to do
    assert again.table == extended.table
    with pytest.raises(ConfigError, match="with steps 300: it has recorded 400; a run extends, never shortens"):
        train(small_offline(tmp_path, random_pendulum_file, "short", agent=agent, steps=300, resume=True))


def test_load_run_and_warm_start_need_only_the_run_directory(tmp_path, random_pendulum_file, uninterrupted):
    """A copied run whose dataset is gone still loads, evaluates and starts another run."""
    import shutil

    source = uninterrupted(False).run_dir
    shutil.copytree(source, tmp_path / "copy")
    config = json.loads((tmp_path / "copy" / "config.json").read_text())
    (tmp_path / "copy" / "config.json").write_text(json.dumps(config | {"dataset": str(tmp_path / "gone.hdf5")}))
    loaded = load_run(tmp_path / "copy")
    assert_trees_equal(uninterrupted(False).states.agent, loaded.states.agent)
    assert_trees_equal(uninterrupted(False).states.normalizer, loaded.states.normalizer)
    assert loaded.metadata["ref_min_score"] < loaded.metadata["ref_max_score"]
    assert np.isfinite(loaded.evaluate()).all() and loaded.evaluate().shape == (2,)
    with pytest.raises(ConfigError, match="no checkpoint at step 150; it has \\[300, 400\\]"):
        load_run(tmp_path / "copy", step=150)
    warm = build(small_offline(tmp_path, random_pendulum_file, "warm", init_from=str(tmp_path / "copy")))
    first = warm.program.init(jnp.stack([jax.random.PRNGKey(i) for i in range(2)]))
    assert_trees_equal(loaded.states.agent, first.agent)


def test_divergence_stops_and_keeps_last_good_checkpoint(tmp_path, random_pendulum_file, monkeypatch):
    import jaxrl.engine.trainer as trainer

    build = trainer.build_program

    def poisoned(*args, **kwargs):
        program = build(*args, **kwargs)
        chunk = program.chunk

        def chunk_with_nan(states, index):
            states, metrics = chunk(states, index)
            if index == 2:
                metrics = {**metrics, "critic_loss": metrics["critic_loss"] * jnp.nan}
            return states, metrics

        program.chunk = chunk_with_nan
        return program

    monkeypatch.setattr(trainer, "build_program", poisoned)
    cfg = small_offline(tmp_path, random_pendulum_file, "diverge", checkpoint_every=5)
    with pytest.raises(TrainingDiverged, match=r"critic_loss became nan .* last good state is saved .* step 200"):
        train(cfg)
    assert Checkpointer(tmp_path / "diverge" / "checkpoints").latest_step() == 200


def test_real_divergence_is_detected(tmp_path):
    n = 500
    data = Dataset.from_numpy(
        observations=np.zeros((n, 3)),
        actions=np.zeros((n, 1)),
        rewards=np.full(n, 3e38),
        next_observations=np.zeros((n, 3)),
        terminals=np.zeros(n),
        timeouts=np.zeros(n),
    )
    path = save_dataset(tmp_path / "huge.npz", data)
    cfg = small_offline(tmp_path, path, "huge", normalize_rewards=False, steps=200)
    with pytest.raises(TrainingDiverged, match="diverged in the first chunk"):
        train(cfg)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(agent=IQL(actor_lr=-1.0)), "iql.actor_lr must be > 0"),
        (dict(agent=SAC(gamma=1.5)), "sac.gamma must be <= 1"),
        (dict(batch_size=0), "batch_size must be a positive integer"),
        (dict(steps=1_500, chunk_steps=1_000), "multiple of chunk_steps"),
        (dict(env="gymnax/Pendulum-v9"), "unknown environment 'gymnax/Pendulum-v9'"),
        (dict(sweep=("hidden_dims=1,2",)), "cannot be swept"),
        (dict(sweep=("betta=1,2",)), "no hyperparameter 'betta'"),
        (dict(sweep=("beta=-1,2",)), "iql.beta must be >= 0"),
        (dict(dataset="medium-replays"), "neither a suite level"),
        (dict(sweep=("beta=1,3", "beta=10")), "sweep names beta twice"),
        (dict(env_params=("g=12", "g=9")), "env_params: g is given twice"),
        (dict(agent=SAC(), regime="online", steps=1_000, chunk_steps=500), r"learning_starts \(1000\) is not below"),
        (dict(agent=SAC(), regime="online", steps=1_000, chunk_steps=500, learning_starts=999), None),
    ],
)
def test_invalid_config_is_rejected_before_compiling(tmp_path, overrides, message):
    settings = dict(agent=IQL(), run_dir=str(tmp_path / "x"), progress=False) | overrides
    if message is None:  # the valid neighbour of the case above it
        TrainConfig(**settings).validate()
        return
    with pytest.raises(ConfigError, match=message):  # when the config is made (name=value settings) or trained
        train(TrainConfig(**settings))
    assert not (tmp_path / "x").exists()


def test_repeated_list_flags_add_up_instead_of_the_last_one_winning():
    args = ["iql", "--sweep", "beta=1,3", "--seeds", "2", "--sweep=expectile=0.7,0.9", "--env-params", "g=12"]
    merged = _merge_repeated_lists(args)
    assert merged == ["iql", "--sweep", "beta=1,3", "expectile=0.7,0.9", "--seeds", "2", "--env-params", "g=12"]
    cfg = tyro.cli(TrainConfig, args=merged, config=(tyro.conf.OmitSubcommandPrefixes, tyro.conf.CascadeSubcommandArgs))
    assert cfg.sweep == ("beta=1,3", "expectile=0.7,0.9") and cfg.seeds == 2


def test_members_that_leave_devices_idle_are_reported():
    four = [jax.devices()[0]] * 4  # member_mesh only counts them where no mesh is built
    with pytest.warns(IdleDevicesWarning, match="5 members run on 1 of the 4 devices.*multiple of 4"):
        assert member_mesh(5, four) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert member_mesh(1, four) is None  # one member cannot be split: nothing to report


def test_unknown_algorithm():
    with pytest.raises(
        ConfigError,
        match="unknown algorithm 'xql'; available: awac, bc, calql, cql, darc, dt, edac, h2o, iql, ppo, rebrac, riql, ro2o, sac, sac-n, td3, td3bc, wsrl",
    ):
        make_agent("xql")


def test_cli_help_lists_algorithms(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "iql" in out and "sac" in out and "--sweep" in out
    # the two options handled before tyro, and a usage line a user can type
    assert "--config FILE.yaml" in out and "--resume RUN_DIR" in out and "usage: python -m jaxrl.train" in out


@pytest.mark.numerics
def test_killed_process_resumes_to_the_same_result(tmp_path, random_pendulum_file, uninterrupted):
    """SIGKILL the training process while it writes its third checkpoint, then resume it."""

    args = ["--dataset", str(random_pendulum_file), "--seeds", "2", "--steps", "400", "--chunk-steps", "100",
            "--batch-size", "64", "--eval-every", "2", "--eval-episodes", "2", "--checkpoint-every", "1",
            "--run-dir", str(tmp_path / "killed"), "--no-progress", "iql", "--hidden-dims", "32", "32"]  # fmt: skip
    run_killed(f"from jaxrl.train import main\nmain({args!r})", saves=3)  # while it writes its third checkpoint
    assert Checkpointer(tmp_path / "killed" / "checkpoints").latest_step() in (200, 300)
    resumed = train(small_offline(tmp_path, random_pendulum_file, "killed", resume=True))
    assert_trees_equal(uninterrupted(False).states, resumed.states)


def test_load_run_names_a_directory_that_is_not_a_run(tmp_path):
    from jaxrl.train import load_run

    with pytest.raises(ConfigError, match=f"{tmp_path}: no config.json, so not a run directory"):
        load_run(tmp_path)


def test_checkpoints_keep_arrays_with_no_elements(tmp_path):
    """Brax's MuJoCo-physics env states hold empty arrays, which Orbax refuses to write: they are left
    out and rebuilt from the target, so an online brax run checkpoints and resumes."""
    state = {"empty": np.zeros((2, 0), np.float32), "w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": None}
    checkpointer = Checkpointer(tmp_path / "ckpt")
    checkpointer.save(1, state)
    checkpointer.wait()
    step, restored = checkpointer.restore(state)
    checkpointer.close()
    assert step == 1 and restored["empty"].shape == (2, 0) and restored["empty"].dtype == np.float32
    np.testing.assert_array_equal(np.asarray(restored["w"]), state["w"])


def test_each_seed_has_its_own_evaluation_start_states_and_every_method_shares_them(tmp_path, random_pendulum_file):
    """Two members that act identically but have seeds 0 and 1 score differently (other start states); a
    different method acting identically at the same seeds scores the same, episode for episode."""
    from jaxrl.agents import TD3BC
    from jaxrl.engine.hooks import evaluation_keys
    from jaxrl.engine.sweep import member_keys

    def returns_acting_with_zero(agent, name, evaluate="evaluate"):
        cfg = TrainConfig(agent=agent, dataset=str(random_pendulum_file), seeds=2, steps=100, chunk_steps=100,
                          eval_episodes=3, final_eval_episodes=7, run_dir=str(tmp_path / name), progress=False)  # fmt: skip
        built = build(cfg)
        states = built.program.init(member_keys(built.members))
        states = states.replace(agent=jax.tree.map(jnp.zeros_like, states.agent))  # every actor outputs tanh(0) = 0
        keys = evaluation_keys(built.members)
        return np.asarray(built.program.evaluate(states, keys)), np.asarray(built.program.final_evaluate(states, keys))

    bc, bc_final = returns_acting_with_zero(BC(hidden_dims=(8, 8), deterministic_actor=True), "bc")
    assert bc.shape == (2, 3) and not np.allclose(bc[0], bc[1])
    np.testing.assert_array_equal(bc, returns_acting_with_zero(TD3BC(hidden_dims=(16, 16)), "td3bc")[0])
    # the final evaluation plays more episodes, the others' first among them
    assert bc_final.shape == (2, 7)
    np.testing.assert_array_equal(bc_final[:, :3], bc)
