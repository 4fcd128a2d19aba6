"""End-to-end behaviour of the trainer: learning, sweeps, resume, divergence, config validation."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.agents import BC, IQL, SAC, ConfigError, make_agent
from jaxrl.checkpoint import Checkpointer
from jaxrl.data import Dataset, save_dataset
from jaxrl.train import TrainConfig, main, train
from jaxrl.trainer import TrainingDiverged

TINY = (32, 32)


def assert_trees_equal(a, b, rtol=0.0):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=rtol * 1e-2)


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


def test_sac_learns_pendulum(tmp_path):
    cfg = TrainConfig(
        agent=SAC(hidden_dims=(64, 64)),
        seeds=1,
        steps=10_000,
        chunk_steps=2_000,
        eval_every=5,
        eval_episodes=10,
        learning_starts=1_000,
        buffer_size=10_000,
        run_dir=str(tmp_path / "sac"),
        progress=False,
    )
    result = train(cfg)
    # A uniformly random policy scores about -1200 on Pendulum; a swing-up policy about -150.
    assert result.final_rows[0]["eval_return"] > -400


def test_iql_learns_medium_replay_and_beats_bc(tmp_path):
    common = dict(seeds=3, steps=6_000, chunk_steps=1_000, eval_every=6, eval_episodes=10, progress=False)
    iql = train(TrainConfig(agent=IQL(hidden_dims=(128, 128)), run_dir=str(tmp_path / "iql"), **common))
    bc = train(TrainConfig(agent=BC(hidden_dims=(128, 128)), run_dir=str(tmp_path / "bc"), **common))
    iql_score = np.mean([r["normalized_score"] for r in iql.final_rows])
    bc_score = np.mean([r["normalized_score"] for r in bc.final_rows])
    # medium-replay holds mostly poor episodes (mean normalised return below 0): IQL must improve on them.
    assert iql_score >= 60, iql_score
    assert iql_score > bc_score + 30, (iql_score, bc_score)
    assert (tmp_path / "iql" / "curve.png").exists() and (tmp_path / "iql" / "results.md").exists()


def test_sweep_member_equals_single_run(tmp_path, random_pendulum_file):
    swept = train(small_offline(tmp_path, random_pendulum_file, "sweep", sweep=("beta=1,10",)))
    members = [(r["seed"], r["beta"]) for r in swept.final_rows]
    assert members == [(0, 1.0), (1, 1.0), (0, 10.0), (1, 10.0)]
    alone = train(
        small_offline(tmp_path, random_pendulum_file, "alone", agent=IQL(hidden_dims=TINY, beta=10.0), seeds=1, first_seed=1)
    )
    member = jax.tree.map(lambda x: x[3], swept.states.agent)
    assert_trees_equal(member, jax.tree.map(lambda x: x[0], alone.states.agent), rtol=1e-4)
    # vmapping batches the matmuls, which may reorder float sums: equal to float tolerance, not bitwise.
    # And the hyperparameter really changed the result:
    other = jax.tree.map(lambda x: x[1], swept.states.agent)
    assert not np.allclose(
        other.actor.params["params"]["MLP_0"]["Dense_0"]["kernel"], member.actor.params["params"]["MLP_0"]["Dense_0"]["kernel"]
    )


@pytest.mark.parametrize("online", [False, True], ids=["offline-iql", "online-sac"])
def test_resumed_run_equals_uninterrupted(tmp_path, random_pendulum_file, online):
    extra = dict(agent=SAC(hidden_dims=TINY), learning_starts=150, buffer_size=1_000) if online else {}
    full = train(small_offline(tmp_path, random_pendulum_file, "full", **extra))
    killed = small_offline(tmp_path, random_pendulum_file, "killed", **extra)
    train(killed, stop_after_chunks=2)
    assert Checkpointer(tmp_path / "killed" / "checkpoints").latest_step() == 200
    resumed = train(small_offline(tmp_path, random_pendulum_file, "killed", resume=True, **extra))
    assert_trees_equal(full.states, resumed.states)
    logged = [json.loads(line)["step"] for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert logged == [0, 0, 100, 100, 200, 200, 300, 300, 400, 400]


def test_existing_run_is_not_overwritten_silently(tmp_path, random_pendulum_file):
    train(small_offline(tmp_path, random_pendulum_file, "run", steps=100))
    with pytest.raises(ValueError, match="already holds a run"):
        train(small_offline(tmp_path, random_pendulum_file, "run", steps=100))
    with pytest.raises(ValueError, match="config differs in steps"):
        train(small_offline(tmp_path, random_pendulum_file, "run", steps=200, resume=True))


def test_divergence_stops_and_keeps_last_good_checkpoint(tmp_path, random_pendulum_file, monkeypatch):
    import jaxrl.trainer as trainer

    build = trainer.build_offline_program

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

    monkeypatch.setattr(trainer, "build_offline_program", poisoned)
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
    ],
)
def test_invalid_config_is_rejected_before_compiling(tmp_path, overrides, message):
    cfg = TrainConfig(**(dict(agent=IQL(), run_dir=str(tmp_path / "x"), progress=False) | overrides))
    with pytest.raises(ConfigError, match=message):
        train(cfg)
    assert not (tmp_path / "x").exists()


def test_unknown_algorithm():
    with pytest.raises(
        ConfigError, match="unknown algorithm 'xql'; available: awac, bc, cql, dt, edac, iql, rebrac, riql, sac, sac-n, td3bc"
    ):
        make_agent("xql")


def test_cli_help_lists_algorithms(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "iql" in out and "sac" in out and "--sweep" in out


def test_killed_process_resumes_to_the_same_result(tmp_path, random_pendulum_file):
    """SIGKILL the training process while it writes its third checkpoint, then resume it."""
    import subprocess
    import sys
    import textwrap

    args = ["--dataset", str(random_pendulum_file), "--seeds", "2", "--steps", "600", "--chunk-steps", "100",
            "--batch-size", "64", "--eval-every", "2", "--eval-episodes", "2", "--checkpoint-every", "1",
            "--run-dir", str(tmp_path / "killed"), "--no-progress", "iql", "--hidden-dims", "32", "32"]  # fmt: skip
    script = textwrap.dedent(f"""
        import os, signal
        import jaxrl.checkpoint as checkpoint
        save, saves = checkpoint.Checkpointer.save, []
        def save_then_die(self, step, state):
            save(self, step, state)
            saves.append(step)
            if len(saves) == 3:  # no wait(): the process dies while Orbax may still be writing
                os.kill(os.getpid(), signal.SIGKILL)
        checkpoint.Checkpointer.save = save_then_die
        from jaxrl.train import main
        main({args!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert Checkpointer(tmp_path / "killed" / "checkpoints").latest_step() in (200, 300)
    resumed = train(small_offline(tmp_path, random_pendulum_file, "killed", steps=600, resume=True))
    full = train(small_offline(tmp_path, random_pendulum_file, "full", steps=600))
    assert_trees_equal(full.states, resumed.states)


@pytest.mark.parametrize("online", [False, True], ids=["offline", "online"])
def test_chunks_compile_once(random_pendulum_file, pendulum, online):
    """The state a chunk returns has exactly the types it takes: the host loop never recompiles."""
    from jaxrl.data import ObsNormalizer, load_dataset
    from jaxrl.sweep import stack_agents
    from jaxrl.trainer import build_offline_program, build_online_program

    agent = (SAC if online else IQL)(hidden_dims=(8, 8)).configure(pendulum.spec, 300)
    agents = stack_agents(agent, [{"seed": 0}, {"seed": 1}])
    if online:
        program = build_online_program(agents, pendulum, chunk_steps=100, num_envs=2, batch_size=16, utd=1,
                                       learning_starts=50, buffer_size=500, eval_episodes=1)  # fmt: skip
    else:
        dataset, _ = load_dataset(random_pendulum_file)
        program = build_offline_program(agents, dataset, ObsNormalizer.identity(3), pendulum, chunk_steps=100,
                                        batch_size=16, eval_episodes=1)  # fmt: skip
    states = program.init(jnp.stack([jax.random.PRNGKey(0), jax.random.PRNGKey(1)]))
    before = jax.tree.map(lambda x: (x.shape, x.dtype, x.weak_type), states)
    for index in range(3):
        states, _ = program.chunk(states, index)
    assert jax.tree.map(lambda x: (x.shape, x.dtype, x.weak_type), states) == before
    assert program.compiled_chunk._cache_size() == 1
