"""What a run writes besides checkpoints: TensorBoard event files that agree with metrics.jsonl."""

import struct

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
