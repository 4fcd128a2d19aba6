"""What the host loop does between chunks, as hooks: evaluate, log, checkpoint, show progress.

`trainer.run` only steps the program; after each chunk it hands every hook a `ChunkEnd` in order
(evaluation adds its columns before the metrics are written, so one row holds both). A hook is any
object with `after_chunk(end)` and `close()`; a new one (a W&B logger, an early stop) is one more class.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from jaxrl.engine.distributed import to_host
from jaxrl.engine.evaluation import normalized_score
from jaxrl.engine.reporting import MetricsWriter
from jaxrl.engine.sharding import shard_members


@dataclass
class ChunkEnd:
    """A finished chunk, as the hooks see it."""

    index: int  # the chunk's global index
    step: int  # the run's step count after it
    phase: str
    states: Any
    columns: dict[str, np.ndarray]  # per-member values: the chunk's metrics, then what hooks add
    evaluate: bool  # an evaluation is due (the schedule, a phase's first or last chunk, the run's end)
    last: bool
    seconds: float  # wall time of the chunk, compilation included on a phase's first chunk in this process
    steps: int  # steps the chunk made
    phase_index: int = 0  # the phase's position in the program
    phase_end: bool = False  # the chunk is its phase's last


EVALUATION_KEY = 10_000  # the stream of evaluation episodes, apart from every training key


def evaluation_keys(members: list[dict]) -> jax.Array:
    """The key of each member's evaluation episodes [M]: a function of its seed alone. So seeds meet
    independent start states; every method, sweep value and run at the same seed meets the same ones
    (common random numbers: paired comparisons); and so does every evaluation of a run, before and after
    a phase switch or a resume."""
    return jnp.stack([jax.random.fold_in(jax.random.PRNGKey(EVALUATION_KEY), m["seed"]) for m in members])


class Evaluation:
    """Adds eval_return (and normalized_score, with `ref_scores`) where an evaluation is due, each member
    on its own start states (`evaluation_keys`)."""

    def __init__(self, program, ref_scores: tuple[float, float] | None, members: list[dict]):
        self.program, self.ref_scores = program, ref_scores
        self.keys = shard_members(evaluation_keys(members), program.mesh)

    def columns(self, states, step: int, last: bool = False) -> dict[str, np.ndarray]:
        evaluate = self.program.final_evaluate if last and self.program.final_evaluate else self.program.evaluate
        returns = to_host(evaluate(states, self.keys)).mean(axis=1)
        out = {"eval_return": returns}
        if self.ref_scores is not None:
            out["normalized_score"] = normalized_score(returns, *self.ref_scores)
        return out

    def after_chunk(self, end: ChunkEnd) -> None:
        if end.evaluate:
            end.columns.update(self.columns(end.states, end.step, end.last))

    def close(self) -> None:
        pass


class Rows:
    """One row per member per chunk into metrics.jsonl/csv (and TensorBoard): step, phase, member, its
    seed and hyperparameters, then the chunk's columns."""

    def __init__(self, writer: MetricsWriter, members: list[dict]):
        self.writer, self.members = writer, members
        self.last: list[dict] = []

    def of(self, step: int, phase: str, columns: dict) -> list[dict]:
        return [{"step": step, "phase": phase, "member": m, **member, **{k: float(v[m]) for k, v in columns.items()}}
                for m, member in enumerate(self.members)]  # fmt: skip

    def write(self, rows: list[dict]) -> None:
        self.writer.write(rows)
        self.last = rows

    def after_chunk(self, end: ChunkEnd) -> None:
        self.write(self.of(end.step, end.phase, end.columns))

    def close(self) -> None:
        self.writer.close()


class Checkpoints:
    """Saves every `every` chunks and at the end; on divergence, the last good state."""

    def __init__(self, checkpointer, every: int, saved_chunks: int):
        self.checkpointer, self.every = checkpointer, every
        self.saved = saved_chunks  # chunks done by the newest checkpoint

    def after_chunk(self, end: ChunkEnd) -> None:
        if (end.index + 1) % self.every == 0 or end.last:
            self.checkpointer.save(end.step, end.states)
            self.saved = end.index + 1

    def keep(self, chunks_done: int, step: int, states) -> None:
        """Make sure the state after `chunks_done` chunks (at `step`) is saved."""
        if self.saved != chunks_done:
            self.checkpointer.save(step, states)
            self.saved = chunks_done
        self.checkpointer.wait()

    def close(self) -> None:
        self.checkpointer.wait()
        self.checkpointer.close()


class AgentSnapshots:
    """Keeps member 0's agent state after every chunk as `directory/<chunk>.msgpack` (written atomically),
    so a killed run that needs every snapshot (a dataset suite's generator) resumes with them."""

    def __init__(self, directory: Path, log=None):
        self.directory, self.log = Path(directory), log
        self.directory.mkdir(parents=True, exist_ok=True)

    def after_chunk(self, end: ChunkEnd) -> None:
        agent = jax.tree.map(lambda x: np.asarray(x[0]), end.states.agent)
        tmp = self.directory / f"{end.index}.msgpack.tmp"
        tmp.write_bytes(serialization.to_bytes(agent))
        os.replace(tmp, self.directory / f"{end.index}.msgpack")
        if self.log is not None:
            self.log(end)

    def load(self, count: int, template) -> list:
        """The snapshots of chunks 0..count-1, into the structure of `template` (one member's agent state)."""
        missing = [c for c in range(count) if not (self.directory / f"{c}.msgpack").is_file()]
        if missing:
            raise FileNotFoundError(f"{self.directory}: no snapshot of chunk(s) {missing}")
        return [serialization.from_bytes(template, (self.directory / f"{c}.msgpack").read_bytes()) for c in range(count)]

    def close(self) -> None:
        pass


@dataclass
class Progress:
    """A tqdm bar over chunks showing the latest score, steps per second of the chunks that compiled
    nothing, and the compile time of each phase's first chunk apart (its time minus a steady chunk's)."""

    total: int
    initial: int
    name: str
    enabled: bool = True
    first_seconds: dict = field(default_factory=dict)  # phase -> first chunk's wall time
    compile_seconds: float = 0.0

    def __post_init__(self):
        # tqdm.auto picks a notebook's widget bar; a disabled bar needs none (and no warning that ipywidgets is missing)
        if self.enabled:
            from tqdm.auto import tqdm
        else:
            from tqdm import tqdm

        self.bar = tqdm(total=self.total, initial=self.initial, disable=not self.enabled, desc=self.name, unit="chunk")
        self.postfix: dict[str, str] = {}

    def after_chunk(self, end: ChunkEnd) -> None:
        if end.phase not in self.first_seconds:
            self.first_seconds[end.phase] = end.seconds
        else:
            if self.first_seconds[end.phase] is not None:
                self.compile_seconds += max(self.first_seconds[end.phase] - end.seconds, 0.0)
                self.first_seconds[end.phase] = None  # counted
                self.postfix["compile"] = f"{self.compile_seconds:.1f}s"
            self.postfix["steps/s"] = f"{end.steps / end.seconds:,.0f}"
        if "normalized_score" in end.columns or "eval_return" in end.columns:
            scored = "normalized_score" in end.columns
            self.postfix["score" if scored else "return"] = (
                f"{np.mean(end.columns['normalized_score' if scored else 'eval_return']):.1f}"
            )
        self.bar.set_postfix(self.postfix)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def timed(chunk, *args):
    """(states, metrics on the host, seconds) of `chunk(*args)`; fetching the metrics waits for the chunk."""
    t0 = time.perf_counter()
    states, metrics = chunk(*args)
    metrics = to_host(metrics)
    return states, metrics, time.perf_counter() - t0
