"""A protocol's training stage as a run of the one engine.

Protocols (L2M's pretraining and fine-tuning sequences, HAMSTER's models) train through the trainer: each
stage is a program of offline phases in its own run directory under the protocol's output, so it
resumes after a kill, stops on divergence keeping its last good checkpoint, writes its losses to
metrics.jsonl, and vmaps its members (the seeds). A directory that holds a finished stage of the same
settings is restored, not trained again; one of other settings is started afresh. The protocol scores
the states itself (hooks, or after the stage): no evaluation episodes are played by the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.engine import trainer
from jaxrl.engine.reporting import MetricsWriter
from jaxrl.engine.run_dir import RunDir


@dataclass
class StageResult:
    states: Any  # the final phase states of every member (leading axis: members)
    rows: list[dict]  # metrics.jsonl: every chunk's mean metrics per member
    resumed: bool  # the directory held this stage's run (finished or not)


def replicate_agent(agent, members: int):
    """`agent` as the stacked agents of `members` identical members (every leaf gets the member axis)."""
    return jax.tree.map(lambda x: jnp.asarray(np.stack([np.asarray(x)] * members)), agent)


def chunks_of(steps: int, most: int = 8) -> int:
    """The chunk length splitting `steps` into about `most` chunks: the longest divisor of `steps` that
    gives at least `most` chunks (or one update per chunk when `steps` < `most`)."""
    return steps // next(n for n in range(min(most, steps), steps + 1) if steps % n == 0)


def run_stage(
    agents,
    phases: list,
    dataset,
    keys,
    run_dir: str | Path,
    settings: dict,
    *,
    warm_start: trainer.WarmStart | None = None,
    hooks: tuple | Callable[[Path], tuple] = (),
    checkpoints: int = 8,
) -> StageResult:
    """Train the stacked `agents` (one member per row of `keys`) through `phases` on `dataset` (any
    pytree the agents' `training_data` and `sample` read) in `run_dir`. `settings` (JSON data) is what
    makes the stage what it is: a directory recorded with other settings is trained afresh. `hooks` that
    keep files in the directory are given as a function of it, called once it is ready."""
    program = trainer.build_program(
        agents, phases, normalizer=None, eval_env=None, eval_episodes=0, dataset=dataset, warm_start=warm_start
    )
    directory = RunDir(run_dir)
    resume = directory.open(settings)
    if callable(hooks):
        hooks = hooks(directory.path)
    members = [{"seed": i} for i in range(keys.shape[0])]
    result = trainer.run(
        program,
        members,
        directory,
        keys=keys,
        eval_every=program.num_chunks,
        checkpoint_every=max(1, program.num_chunks // checkpoints),
        resume=resume,
        progress=False,
        hooks=hooks,
        evaluate=False,
    )
    return StageResult(result.states, MetricsWriter.read(directory.path), resume)
