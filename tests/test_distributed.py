"""Runs over several processes (`jaxrl.engine.distributed`): launched here as local CPU processes, the
way the README launches them on several hosts (`python -m jaxrl.train ... --coordinator HOST:PORT
--num-processes N --process-id I`), and always torn down."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxrl.agents import IQL
from jaxrl.config import TrainConfig
from jaxrl.engine.distributed import Cluster, DistributedError
from jaxrl.engine.run_dir import RunDir
from jaxrl.train import _cluster_flags, load_run, train
from tests.rounding import assert_equal_up_to_rounding

ROOT = Path(__file__).resolve().parents[1]
TINY = (32, 32)
# Four members (2 seeds x 2 betas), 200 tiny IQL updates in chunks of 50, a checkpoint after every chunk.
RUN = ["iql", "--hidden-dims", "32", "32", "--seeds", "2", "--sweep", "beta=1,10", "--steps", "200", "--chunk-steps", "50",
       "--batch-size", "64", "--eval-every", "2", "--eval-episodes", "2", "--checkpoint-every", "1", "--no-progress"]  # fmt: skip


def _config(dataset: Path, run_dir: Path, **overrides) -> TrainConfig:
    """RUN as a config of this process (the single-process reference)."""
    settings = dict(agent=IQL(hidden_dims=TINY), dataset=str(dataset), seeds=2, sweep=("beta=1,10",), steps=200,
                    chunk_steps=50, batch_size=64, eval_every=2, eval_episodes=2, checkpoint_every=1, progress=False,
                    run_dir=str(run_dir))  # fmt: skip
    return TrainConfig(**(settings | overrides))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _environment() -> dict:
    # One CPU device per process, the caller's kernels (XLA_FLAGS), and no shared compilation cache: the
    # test session's is for one process at a time (tests/conftest.py).
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE") and not k.startswith("JAX_PERSISTENT")
    }
    flags = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f)
    return {**env, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}


@contextmanager
def launched(processes: int, argv: list[str], logs: Path, port: int | None = None):
    """`python -m jaxrl.train argv` as processes 0..n-1 of one run; killed on the way out, whatever happened."""
    port = port or _free_port()
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    try:
        for i in range(processes):
            cluster = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", str(processes), "--process-id", str(i)]
            out = (logs / f"process{i}.log").open("w")
            procs.append(subprocess.Popen([sys.executable, "-m", "jaxrl.train", *argv, *cluster], cwd=ROOT,
                                          env=_environment(), stdout=out, stderr=subprocess.STDOUT))  # fmt: skip
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def _finish(procs, logs: Path, timeout: float = 300) -> list[str]:
    """Every process's exit code must be 0; returns their outputs."""
    deadline = time.monotonic() + timeout
    for p in procs:
        p.wait(timeout=max(deadline - time.monotonic(), 1))
    outputs = [(logs / f"process{i}.log").read_text() for i in range(len(procs))]
    for i, (p, text) in enumerate(zip(procs, outputs, strict=True)):
        assert p.returncode == 0, f"process {i} exited with {p.returncode}:\n{text[-3000:]}"
    return outputs


def _states(run_dir: Path):
    run = load_run(run_dir)
    return run.step, run.states


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, random_pendulum_file):
    """The reference: RUN in this one process."""
    return train(_config(random_pendulum_file, tmp_path_factory.mktemp("one") / "run"))


@pytest.mark.numerics
@pytest.mark.slow(
    reason="two (and four) Python processes each start JAX and compile the sweep (~40 s each launch)",
    companion="tests/test_training.py::test_a_process_other_than_the_primary_trains_alike_and_writes_no_files",
)
@pytest.mark.parametrize("processes", [2, 4])
def test_a_sweep_over_processes_equals_it_in_one(processes, tmp_path, random_pendulum_file, one_process):
    run_dir = tmp_path / "run"
    with launched(processes, [*RUN, "--dataset", str(random_pendulum_file), "--run-dir", str(run_dir)], tmp_path) as procs:
        outputs = _finish(procs, tmp_path)
    assert "| setting | seeds |" in outputs[0]  # the primary prints the results table
    assert all("| setting | seeds |" not in text for text in outputs[1:])  # the others print none
    assert f"over {processes} processes" in RunDir(run_dir).read_provenance()["devices"]
    # Every member's rows, written once: 4 members x (the untrained evaluation + 4 chunks).
    rows = [r for r in (run_dir / "metrics.jsonl").read_text().splitlines() if r]
    assert len(rows) == 4 * 5
    step, states = _states(run_dir)
    assert step == 200
    # Members split over processes is another program than all of them in one (tests/rounding.py): equal
    # to float rounding, at that module's tolerance.
    assert_equal_up_to_rounding(jax.tree.map(np.asarray, one_process.states.agent), states.agent)


@pytest.mark.slow(
    reason="three launches of two processes, one of them killed (~2 min)",
    companion="tests/test_training.py::test_a_process_other_than_the_primary_trains_alike_and_writes_no_files",
)
def test_a_killed_process_resumes_with_the_other_to_the_same_result(tmp_path, random_pendulum_file):
    argv = [*RUN, "--dataset", str(random_pendulum_file)]
    whole = tmp_path / "whole"
    with launched(2, [*argv, "--run-dir", str(whole)], tmp_path / "whole-logs") as procs:
        _finish(procs, tmp_path / "whole-logs")

    killed = tmp_path / "killed"
    with launched(2, [*argv, "--run-dir", str(killed)], tmp_path / "killed-logs") as procs:
        checkpoint = killed / "checkpoints" / "100"
        deadline = time.monotonic() + 300
        while not checkpoint.is_dir() and time.monotonic() < deadline and procs[1].poll() is None:
            time.sleep(0.05)
        assert checkpoint.is_dir(), "the run never wrote its checkpoint of step 100"
        procs[1].send_signal(signal.SIGKILL)  # process 1 dies; process 0 is torn down on the way out
        procs[1].wait()
    assert RunDir(killed).checkpointer().latest_step() < 200, "the run finished before it was killed"

    with launched(2, ["--resume", str(killed), "--no-progress"], tmp_path / "resumed-logs") as procs:
        _finish(procs, tmp_path / "resumed-logs")
    # The same program on the same machine: bit for bit.
    (step_a, a), (step_b, b) = _states(whole), _states(killed)
    assert step_a == step_b == 200
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert (whole / "metrics.jsonl").read_text() == (killed / "metrics.jsonl").read_text()


@pytest.mark.slow(
    reason="launches processes that must fail (~15 s each)",
    companion="tests/test_distributed.py::test_cluster_settings_are_checked_before_anything_starts",
)
def test_errors_name_the_problem(tmp_path, random_pendulum_file):
    argv = [*RUN, "--dataset", str(random_pendulum_file)]
    # Members that do not split evenly over the processes (3 seeds x 2 betas over 4 processes).
    with launched(4, [*argv, "--seeds", "3", "--run-dir", str(tmp_path / "uneven")], tmp_path / "uneven") as procs:
        for p in procs:
            p.wait(timeout=300)
    assert "6 members cannot be split evenly over 4 processes" in (tmp_path / "uneven" / "process0.log").read_text()
    # Processes given different configs (process 1 another step count).
    with _two_with_different_configs(argv, tmp_path) as outputs:
        assert all("the processes were given different run configs" in text for text in outputs)
    # A coordinator nobody runs: process 1 gives up after its timeout, saying where it looked.
    proc = subprocess.run([sys.executable, "-m", "jaxrl.train", *argv, "--run-dir", str(tmp_path / "alone"),
                           "--coordinator", f"127.0.0.1:{_free_port()}", "--num-processes", "2", "--process-id", "1",
                           "--coordinator-timeout", "3"], cwd=ROOT, env=_environment(), capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode != 0
    assert "process 1 of 2 could not reach coordinator 127.0.0.1:" in proc.stderr
    assert "within 3 s" in proc.stderr


@contextmanager
def _two_with_different_configs(argv, tmp_path):
    port, procs = _free_port(), []
    try:
        for i, steps in enumerate(("200", "400")):
            cluster = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)]
            procs.append(subprocess.Popen([sys.executable, "-m", "jaxrl.train", *argv, "--steps", steps, "--run-dir",
                                           str(tmp_path / "mismatch-run"), *cluster], cwd=ROOT, env=_environment(),
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))  # fmt: skip
        yield [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def test_cluster_settings_are_checked_before_anything_starts():
    assert Cluster.from_settings(environ={}) is None  # nothing given: one process
    env = {"JAXRL_COORDINATOR": "10.0.0.1:1234", "JAXRL_NUM_PROCESSES": "2", "JAXRL_PROCESS_ID": "1"}
    assert Cluster.from_settings(environ=env) == Cluster("10.0.0.1:1234", 2, 1)
    assert Cluster.from_settings(process_id=0, environ=env) == Cluster("10.0.0.1:1234", 2, 0)  # flags win
    assert Cluster.from_settings("auto", environ={}) == Cluster("auto")  # SLURM, Open MPI, TPU: JAX detects
    bad = [
        ({"coordinator": "10.0.0.1"}, "is not HOST:PORT"),
        ({"coordinator": "10.0.0.1:1234", "num_processes": 2}, "needs the process count and this process's id"),
        ({"coordinator": "10.0.0.1:1234", "num_processes": 2, "process_id": 2}, "ids run from 0 to num_processes - 1"),
        ({"num_processes": 2, "process_id": 1}, "no coordinator"),
        ({"coordinator": "10.0.0.1:1234", "num_processes": 2, "process_id": 0, "timeout": 0}, "timeout must be positive"),
    ]
    for settings, message in bad:
        with pytest.raises(DistributedError, match=message):
            Cluster.from_settings(**settings, environ={})
    with pytest.raises(DistributedError, match="JAXRL_NUM_PROCESSES='two' is not an integer"):
        Cluster.from_settings(environ={**env, "JAXRL_NUM_PROCESSES": "two"})
    # The CLI takes the flags out before the run's own flags are parsed.
    argv, cluster = _cluster_flags(["iql", "--coordinator=h:1", "--num-processes", "3", "--process-id", "2", "--steps", "5"])
    assert argv == ["iql", "--steps", "5"] and cluster == Cluster("h:1", 3, 2)
    with pytest.raises(DistributedError, match="--num-processes 'x': not an integer"):
        _cluster_flags(["--coordinator", "h:1", "--num-processes", "x"])
