"""Protocol stages through the trainer (`jaxrl.engine.stage`): a supervised agent learns; a stage whose
process is killed part-way resumes to the uninterrupted result bit for bit; a finished stage is restored,
not retrained; other settings start afresh."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.agents.supervised import Supervised
from jaxrl.engine.phases import Offline
from jaxrl.engine.stage import chunks_of, replicate_agent, run_stage
from tests.killing import run_killed
from tests.rounding import assert_trees_equal

W = jnp.asarray([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.0]])


def regression_data():
    x = jax.random.normal(jax.random.PRNGKey(0), (512, 3))
    return {"x": x, "y": x @ W}


def agents(members: int = 2):
    def init(key):
        return {"w": 0.1 * jax.random.normal(key, (3, 2))}

    def loss(params, batch):
        return jnp.mean(jnp.sum((batch["x"] @ params["w"] - batch["y"]) ** 2, -1))

    return replicate_agent(Supervised(init_params=init, loss=loss, learning_rate=0.05), members)


KEYS = jax.random.split(jax.random.PRNGKey(3), 2)
PHASES = [Offline(400, 50, 32)]


def test_a_supervised_stage_fits_its_examples_and_logs_its_losses(tmp_path):
    stage = run_stage(agents(), PHASES, regression_data(), KEYS, tmp_path / "fit", {"stage": "fit"})
    np.testing.assert_allclose(stage.states.agent.model.params["w"], np.stack([W, W]), atol=0.05)
    losses = [[r["loss"] for r in stage.rows if r["seed"] == s] for s in (0, 1)]
    assert all(len(seed) == 8 and seed[-1] < 0.01 * seed[0] for seed in losses)
    assert not stage.resumed


class Crash(Exception):
    pass


class CrashAfter:
    def __init__(self, chunk: int):
        self.chunk = chunk

    def after_chunk(self, end):
        if end.index == self.chunk:
            raise Crash

    def close(self):
        pass


@pytest.mark.numerics
def test_a_killed_stage_resumes_to_the_same_result_and_a_finished_one_is_restored(tmp_path):
    """SIGKILL a stage's process while it writes its third checkpoint; the same call resumes it."""

    data, settings = regression_data(), {"stage": "fit"}
    whole = run_stage(agents(), PHASES, data, KEYS, tmp_path / "whole", settings)
    run_killed(f"""
        from jaxrl.engine.stage import run_stage
        from tests.test_stage import KEYS, PHASES, agents, regression_data
        run_stage(agents(), PHASES, regression_data(), KEYS, {str(tmp_path / "killed")!r}, {settings!r})
    """, saves=3)  # fmt: skip
    resumed = run_stage(agents(), PHASES, data, KEYS, tmp_path / "killed", settings)
    assert resumed.resumed
    assert_trees_equal(whole.states, resumed.states)
    assert [r["loss"] for r in resumed.rows] == [r["loss"] for r in whole.rows]  # every chunk's rows once

    again = run_stage(agents(), PHASES, data, KEYS, tmp_path / "whole", settings, hooks=(CrashAfter(0),))
    assert again.resumed  # finished: restored, no chunk ran (the hook would have raised)
    assert_trees_equal(whole.states, again.states)

    other = run_stage(agents(), PHASES, data, KEYS, tmp_path / "whole", {"stage": "other"})
    assert not other.resumed  # recorded with other settings: trained afresh


def test_chunks_split_a_stage_into_about_eight():
    assert [chunks_of(n) for n in (4000, 6000, 30, 7, 101)] == [500, 750, 3, 1, 1]
