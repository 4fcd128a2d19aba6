"""What a run writes besides checkpoints: TensorBoard event files and Weights & Biases runs that agree with
metrics.jsonl."""

import struct
import sys

import pytest
from tensorboardX.proto import event_pb2

from jaxrl.agents import IQL
from jaxrl.engine.reporting import MetricsWriter
from jaxrl.train import TrainConfig, train


def read_events(run_dir):
    """Every event of one TensorBoard run, in file order (TFRecord framing: length, crc, data, crc)."""
    events = []
    for file in sorted(run_dir.glob("events.out.tfevents.*")):
        data, pos = file.read_bytes(), 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            events.append(event_pb2.Event.FromString(data[pos + 12 : pos + 12 + length]))
            pos += 12 + length + 4
    return events


def scalars_as_tensorboard_shows_them(run_dir) -> dict:
    """{(tag, step): [values]}, applying TensorBoard's purge: a SessionLog START at step s hides earlier events
    at steps >= s (what a restarted run writes so its recomputed steps replace the old ones)."""
    shown = {}
    for event in read_events(run_dir):
        if event.HasField("session_log") and event.session_log.status == event_pb2.SessionLog.START:
            shown = {k: v for k, v in shown.items() if k[1] < event.step}
        for value in event.summary.value:
            shown.setdefault((value.tag, event.step), []).append(value.simple_value)
    return shown


def expected_scalars(rows, member: dict) -> dict:
    out = {}
    for row in rows:
        if all(row[k] == v for k, v in member.items()):
            for key, value in row.items():
                if key not in ("step", "member", "phase", *member):  # the phase is a label, not a scalar
                    tag = f"eval/{key}" if key in ("eval_return", "normalized_score") else f"train/{key}"
                    out[(tag, row["step"])] = value
    return out


def config(tmp_path, dataset, **overrides):
    return TrainConfig(**{**dict(agent=IQL(hidden_dims=(8, 8)), dataset=str(dataset), seeds=1, sweep=("beta=1,10",),
                                 steps=400, chunk_steps=100, batch_size=32, eval_every=1, eval_episodes=1,
                                 checkpoint_every=2, run_dir=str(tmp_path / "run"), tensorboard=True, progress=False),
                          **overrides})  # fmt: skip


@pytest.mark.slow(
    reason="optional TensorBoard output: a killed and resumed sweep's event files (16 s); metrics.jsonl of a resume is checked in the fast tier"
)
def test_tensorboard_runs_per_member_match_metrics(tmp_path, random_pendulum_file):
    train(config(tmp_path, random_pendulum_file), stop_after_chunks=3)  # killed after logging step 300
    # resumed from its checkpoint at 200: step 300 is logged again, and must show once
    train(config(tmp_path, random_pendulum_file, resume=True))
    rows = MetricsWriter.read(tmp_path / "run")
    runs = sorted(p.name for p in (tmp_path / "run" / "tensorboard").iterdir())
    assert runs == ["0-seed0-beta=1", "1-seed0-beta=10"]
    for name, member in zip(runs, [{"seed": 0, "beta": 1.0}, {"seed": 0, "beta": 10.0}], strict=True):
        shown = scalars_as_tensorboard_shows_them(tmp_path / "run" / "tensorboard" / name)
        expected = expected_scalars(rows, member)
        assert set(shown) == set(expected)
        assert {tag for tag, _ in shown} >= {"eval/eval_return", "eval/normalized_score", "train/critic_loss"}
        for key, value in expected.items():
            assert shown[key] == [pytest.approx(value, rel=1e-6)], key  # once, stored as float32


def test_tables_state_the_do_nothing_and_random_baselines():
    """A generated suite's zero-action and random returns are printed, normalised, beside its tables."""
    from jaxrl.engine.reporting import baselines_line

    line = baselines_line({"zero_action_return": 130.0, "random_return": 20.0, "ref_min_score": 20.0}, (20.0, 1520.0))
    assert line == (
        "Baselines of this env (return, from the suite's metadata): zero action 130.0 (normalised 7.3), "
        "uniform random 20.0 (normalised 0.0)."
    )
    assert baselines_line({"zero_action_return": -3.5}, None).endswith("zero action -3.5.")
    assert baselines_line({"ref_min_score": 1.0}, (1.0, 2.0)) == ""  # a file that records no baselines (D4RL's)


class FakeWandb:
    """Stands in for the wandb module: records what a WandbWriter asks of it."""

    def __init__(self):
        self.runs = []

    def init(self, **kwargs):
        run = FakeWandbRun(kwargs)
        self.runs.append(run)
        return run


class FakeWandbRun:
    def __init__(self, kwargs):
        self.kwargs, self.logged, self.step_metric, self.finished = kwargs, [], None, False

    def define_metric(self, name, step_metric):
        self.step_metric = (name, step_metric)

    def log(self, values):
        self.logged.append(values)

    def finish(self):
        self.finished = True


def test_wandb_gets_a_run_per_member_with_the_rows_tensorboard_gets(tmp_path, monkeypatch):
    from jaxrl.engine.reporting import WandbWriter

    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    members = [{"seed": 0, "beta": 1.0}, {"seed": 0, "beta": 10.0}]
    rows = [{"step": 100, "phase": "offline", "member": m, **member, "critic_loss": 0.5 + m, "normalized_score": 10.0 * m}
            for m, member in enumerate(members)]  # fmt: skip
    writer = WandbWriter(tmp_path / "run", members, "offline")
    writer.write(rows)
    writer.close()
    assert [r.kwargs["name"] for r in fake.runs] == ["0-seed0-beta=1", "1-seed0-beta=10"]
    assert {r.kwargs["group"] for r in fake.runs} == {"run"}
    assert all(r.kwargs["mode"] == "offline" and r.kwargs["dir"] == str((tmp_path / "run").resolve()) for r in fake.runs)
    assert fake.runs[1].kwargs["config"] == {"member": 1, "seed": 0, "beta": 10.0}
    assert fake.runs[1].logged == [{"step": 100, "train/critic_loss": 1.5, "eval/normalized_score": 10.0}]
    assert all(r.step_metric == ("*", "step") and r.finished for r in fake.runs)
    # the same run directory gives the same run ids, so a resumed run logs to its W&B runs
    again = WandbWriter(tmp_path / "run", members, "offline", resume=True)
    assert [r.kwargs["id"] for r in fake.runs[2:]] == [r.kwargs["id"] for r in fake.runs[:2]]
    assert len({r.kwargs["id"] for r in fake.runs[:2]}) == 2 and again._runs[0].kwargs["resume"] == "allow"
    other = WandbWriter(tmp_path / "other", members, "offline")
    assert other._runs[0].kwargs["id"] != fake.runs[0].kwargs["id"]


def test_wandb_settings_are_checked(tmp_path, monkeypatch, random_pendulum_file):
    from jaxrl.agents import ConfigError
    from jaxrl.engine.reporting import WandbWriter

    with pytest.raises(ConfigError, match="wandb must be off, offline or online, got 'yes'"):
        config(tmp_path, random_pendulum_file, wandb="yes").validate()
    monkeypatch.setitem(sys.modules, "wandb", None)  # not installed
    with pytest.raises(ImportError, match=r"pip install 'jaxrl\[wandb\]'"):
        WandbWriter(tmp_path, [{"seed": 0}], "offline")


@pytest.mark.slow(
    reason="real Weights & Biases in offline mode starts its service (~10 s); the writer's rows are checked in the fast tier",
    companion="tests/test_reporting.py::test_wandb_gets_a_run_per_member_with_the_rows_tensorboard_gets",
)
def test_a_run_logs_to_wandb_offline_without_network(tmp_path, random_pendulum_file, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    train(config(tmp_path, random_pendulum_file, tensorboard=False, wandb="offline", steps=200))
    runs = sorted((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2  # one per member
    for run in runs:
        (data,) = run.glob("run-*.wandb")
        assert data.stat().st_size > 0
    assert len(MetricsWriter.read(tmp_path / "run")) == 2 * 3  # steps 0, 100, 200 of both members


def test_plots_leave_the_callers_matplotlib_backend_alone(tmp_path):
    """A notebook's figures keep showing after a run wrote its curve (no switch of pyplot to Agg)."""
    import matplotlib

    from jaxrl.engine.reporting import plot_learning_curves

    before = matplotlib.get_backend()
    matplotlib.use("svg")  # stands in for a notebook's inline backend
    try:
        rows = [{"step": s, "member": m, "seed": m, "eval_return": float(s + m)} for s in (0, 100) for m in (0, 1)]
        plot_learning_curves(rows, tmp_path / "curve.png", "eval_return", [])
        assert matplotlib.get_backend() == "svg"
        assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        matplotlib.use(before)
