"""Training programs and the host loop that drives them.

A program is a sequence of phases (`jaxrl.engine.phases`: offline learning, online collecting and learning)
over the state of every sweep member at once (leading axis M). Each phase has jitted functions
    start(previous states or None, keys) -> states      # the phase's first state
    chunk(states, index in phase) -> (states, metrics)   # one `lax.scan` of many steps
and the program evaluates any phase's states with `evaluate(states, keys) -> returns [M, episodes]`.
The host loop calls chunks in turn and, between chunks only, logs, evaluates and checkpoints.
Nothing inside a chunk returns to Python. A regime (offline, online, offline-to-online, hybrid) is
just the list of phases a program is built from; a warm start is just another first state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.data.dataset import Dataset, Normalizer
from jaxrl.engine import distributed
from jaxrl.engine.checkpoint import Checkpointer
from jaxrl.engine.evaluation import evaluate_policy_with_memory
from jaxrl.engine.hooks import Checkpoints, ChunkEnd, Evaluation, Progress, Rows, timed
from jaxrl.engine.phases import Offline, OfflineState, Online, OnlineState, OnPolicy, Phase
from jaxrl.engine.reporting import (
    MetricsWriter,
    TensorBoardWriter,
    WandbWriter,
    plot_learning_curves,
    results_table,
    switch_table,
)
from jaxrl.engine.run_dir import RunDir
from jaxrl.engine.sharding import member_mesh, member_sharding, replicate, shard_members
from jaxrl.engine.sweep import member_keys

__all__ = ["Offline", "OfflineState", "Online", "OnlineState", "OnPolicy", "Program", "build_program", "run", "restore"]


class TrainingDiverged(RuntimeError):
    """A loss or statistic became NaN/Inf; the last good state is kept as a checkpoint."""


@dataclass
class ProgramPhase:
    spec: Phase
    first_chunk: int  # global index of the phase's first chunk
    first_step: int  # the run's step count when the phase starts
    start: Callable  # (previous phase's states or None, member keys) -> states
    chunk: Callable  # (states, chunk index within the phase) -> (states, metrics)
    compiled_chunk: Any  # the jitted function behind `chunk` (to inspect its compilations)

    @property
    def num_chunks(self) -> int:
        return self.spec.steps // self.spec.chunk_steps


@dataclass
class Program:
    agents: Any  # the stacked agents of all members (leaves have a leading member axis)
    phases: list[ProgramPhase]
    evaluate: Callable  # (states of any phase, keys [M] or one key for all) -> returns [M, episodes]
    mesh: Any = None  # devices the member axis is split over (None: one device)
    data: dict = field(default_factory=dict)  # what the chunks read: dataset, env params
    final_evaluate: Callable | None = None  # the run's last evaluation, over more episodes (None: `evaluate`)

    def init(self, keys):
        return self.phases[0].start(None, keys)

    @property
    def num_chunks(self) -> int:
        return sum(p.num_chunks for p in self.phases)

    @property
    def steps_per_chunk(self) -> int:  # of the first phase (the only one of single-phase programs)
        return self.phases[0].spec.chunk_steps

    @property
    def compiled_chunk(self):  # of the first phase
        return self.phases[0].compiled_chunk

    def phase_of(self, chunk: int) -> ProgramPhase:
        return next(p for p in reversed(self.phases) if chunk >= p.first_chunk)

    def step_after(self, chunk: int) -> int:
        """The run's step count after chunk `chunk` (updates offline, then environment steps online)."""
        phase = self.phase_of(chunk)
        return phase.first_step + (chunk - phase.first_chunk + 1) * phase.spec.chunk_steps

    def chunks_done(self, step: int) -> int:
        """How many chunks a checkpoint at `step` has completed."""
        done = next((c + 1 for c in range(self.num_chunks) if self.step_after(c) == step), None)
        if done is None:
            raise ValueError(f"step {step} is not at the end of a chunk of this program")
        return done

    def enter(self, states, chunk: int, keys):
        """The states chunk `chunk` runs from: the previous phase's, turned into the next phase's where it starts."""
        phase = self.phase_of(chunk)
        return phase.start(states, keys) if chunk == phase.first_chunk and chunk > 0 else states

    def chunk(self, states, chunk: int):
        phase = self.phase_of(chunk)
        return phase.chunk(states, chunk - phase.first_chunk)

    def abstract_states(self, chunks_done: int, keys):
        """Shapes and types of the states after `chunks_done` chunks (to restore a checkpoint into)."""
        states = jax.eval_shape(self.init, keys)
        for phase in self.phases[1:]:
            if chunks_done > phase.first_chunk:
                states = jax.eval_shape(phase.start, states, keys)
        return states


def _num_members(agents) -> int:
    return int(jax.tree.leaves(agents)[0].shape[0])


def evaluator(env, num_episodes: int):
    """`evaluate(stacked agents, states, keys [members], env params) -> returns [members, episodes]`, jitted:
    each member plays its episodes from its own key's start states."""

    def evaluate(agent, state, key, params):
        norm = state.normalizer
        return evaluate_policy_with_memory(
            env,
            lambda obs, key, carry: agent.act_with_carry(state.agent, norm(obs), key, carry, True),
            key,
            num_episodes,
            params,
            init_carry=lambda obs: agent.initial_carry(state.agent, norm(obs)),
            observe=agent.observe,
        )

    return jax.jit(jax.vmap(evaluate, in_axes=(0, 0, 0, None)))


@dataclass
class WarmStart:
    """Agent states to start from instead of `agent.init` (leading axis: members), and how many updates they had."""

    agent_states: Any
    updates: int = 0


def build_program(
    agents,
    phases: list[Phase],
    *,
    normalizer: Normalizer,
    eval_env,
    eval_episodes: int,
    dataset: Dataset | None = None,
    env=None,
    collect_params=None,
    eval_params=None,
    warm_start: WarmStart | None = None,
    final_eval_episodes: int | None = None,
) -> Program:
    """Compile `phases` in order into one program over the stacked `agents`.

    `dataset` (already normalised with `normalizer`) feeds offline phases (through the agent's training
    view of it) and online phases that keep or mix it; `env` is where online phases collect, with
    `collect_params` (None: the env's defaults); evaluation runs in `eval_env` with `eval_params`, over
    `eval_episodes` episodes, and the run's last over `final_eval_episodes` (None: the same).
    """
    mesh = member_mesh(_num_members(agents))
    data = {"view": None, "dataset": None, "collect_params": collect_params, "eval_params": eval_params}
    if dataset is not None:
        if any(p.reads_view for p in phases):
            data["view"] = agents.training_data(dataset)  # e.g. trajectory windows for sequence models
        if not all(p.reads_view for p in phases):
            # What online transitions have, so the dataset can share a buffer or a batch with them.
            data["dataset"] = dataset.replace(next_actions=None)
    data = replicate(data, mesh)
    if warm_start is not None:
        warm_start = WarmStart(shard_members(warm_start.agent_states, mesh), warm_start.updates)

    compiled, first_chunk, first_step = [], 0, 0
    updates = warm_start.updates if warm_start else 0
    for i, spec in enumerate(phases):
        pretrained = i > 0 or warm_start is not None
        phase_agents = spec.validate(agents, env, dataset)
        start, chunk = spec.start(env, normalizer, pretrained), spec.chunk(env, updates, pretrained)
        compiled.append(_compile_phase(spec, phase_agents, start, chunk, data, first_chunk, first_step, i, warm_start))
        first_chunk += spec.steps // spec.chunk_steps
        first_step += spec.steps
        updates += spec.updates(agents)

    members = _num_members(agents)

    def members_evaluator(episodes: int):
        evaluate = evaluator(eval_env, episodes)

        def evaluate_members(states, keys):
            keys = jnp.broadcast_to(keys, (members, *keys.shape[-1:])) if keys.ndim == 1 else keys
            return evaluate(agents, states, keys, data["eval_params"])

        return evaluate_members

    final = final_eval_episodes if final_eval_episodes not in (None, eval_episodes) else None
    return Program(
        agents=agents,
        phases=compiled,
        evaluate=members_evaluator(eval_episodes),
        mesh=mesh,
        data=data,
        final_evaluate=members_evaluator(final) if final else None,
    )


def _compile_phase(spec, agents, start, chunk, data, first_chunk, first_step, index, warm_start) -> ProgramPhase:
    """Vmap the per-member `start(agent, key, agent_state, data)` and `chunk(agent, state, index, data)`
    over members and jit them. `data` is an argument of the compiled functions rather than a closure,
    so the dataset is not baked into the program as a constant."""
    vstart = jax.jit(lambda keys, agent_states, data: jax.vmap(start, in_axes=(0, 0, 0, None))(agents, keys, agent_states, data))
    vchunk = jax.jit(lambda states, i, data: jax.vmap(chunk, in_axes=(0, 0, None, None))(agents, states, i, data))
    if index == 0:
        first = warm_start.agent_states if warm_start else None
        begin = lambda previous, keys: vstart(keys, first, data)  # noqa: E731
    else:
        begin = lambda previous, keys: vstart(keys, previous.agent, data)  # noqa: E731
    return ProgramPhase(spec, first_chunk, first_step, begin, lambda states, i: vchunk(states, i, data), vchunk)


def build_offline_program(
    agents, dataset: Dataset, normalizer: Normalizer, eval_env, *, chunk_steps: int, batch_size: int, eval_episodes: int
) -> Program:
    """Offline training, one phase whose chunks make `chunk_steps` updates on batches drawn by `agent.sample`.

    The dataset must already be normalised with `normalizer`; the normaliser is kept in the state so
    that evaluation sees observations the same way the agent was trained on them. (The program's
    length is set by the host loop; a single-phase program's chunks run on for any index.)
    """
    return build_program(agents, [Offline(chunk_steps, chunk_steps, batch_size)], normalizer=normalizer,
                         eval_env=eval_env, eval_episodes=eval_episodes, dataset=dataset)  # fmt: skip


def build_online_program(
    agents,
    env,
    *,
    chunk_steps: int,
    num_envs: int,
    batch_size: int,
    utd: float,
    learning_starts: int,
    buffer_size: int,
    eval_episodes: int,
    steps: int | None = None,
) -> Program:
    """Online training from scratch, one phase: each iteration steps `num_envs` environments, stores the
    transitions, then makes `utd * num_envs` updates (none before `learning_starts` env steps, when
    actions are uniform). `chunk_steps` counts environment steps over all envs; `steps` the phase's (default: one
    chunk; the chunks run on for any index when a caller drives them)."""
    spec = Online(steps or chunk_steps, chunk_steps, batch_size, num_envs, utd, learning_starts, buffer_size)
    return build_program(agents, [spec], normalizer=Normalizer.identity(env.spec.obs_dim), eval_env=env,
                         eval_episodes=eval_episodes, env=env)  # fmt: skip


def build_on_policy_program(
    agents, env, *, chunk_steps: int, num_envs: int, eval_episodes: int, steps: int | None = None, record_envs: int = 0
) -> Program:
    """On-policy training from scratch (PPO), one phase: each iteration rolls `num_envs` envs for the agent's
    `rollout_length` steps, then updates once from the rollout; `record_envs` of them are kept in the
    state's buffer (see `OnPolicy`). `steps` sizes that buffer (default: one chunk)."""
    spec = OnPolicy(steps or chunk_steps, chunk_steps, num_envs, record_envs)
    return build_program(agents, [spec], normalizer=Normalizer.identity(env.spec.obs_dim), eval_env=env,
                         eval_episodes=eval_episodes, env=env)  # fmt: skip


def restore(program: Program, members: list[dict], checkpointer: Checkpointer, step: int | None = None):
    """(step, states) from a checkpoint of `program`'s run (the latest unless `step`), sharded like a fresh init."""
    step = checkpointer.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"no checkpoint in {checkpointer.directory}")
    target = program.abstract_states(program.chunks_done(step), member_keys(members))
    # Straight into the members' sharding: in a multi-process run each process reads its own shards.
    step, states = checkpointer.restore(target, step, member_sharding(program.mesh))
    return step, states


@dataclass
class RunResult:
    states: Any
    final_rows: list[dict]
    table: str
    run_dir: Path


def _check_finite(metrics: dict, step: int, members: list[dict]) -> None:
    """Training metrics may be NaN only where nothing was computed (e.g. before learning starts)."""
    computed = metrics.get("updates", 1) > 0
    for name, values in metrics.items():
        if name == "episode_return":
            continue
        bad = ~np.isfinite(values) & computed
        if bad.any():
            m = int(np.argmax(bad))
            raise TrainingDiverged(f"{name} became {values[m]} for member {m} ({members[m]}) in the chunk ending at step {step}")


def run(
    program: Program,
    members: list[dict],
    run_dir: RunDir,
    *,
    eval_every: int,
    checkpoint_every: int,
    resume: bool = False,
    ref_scores: tuple[float, float] | None = None,
    notes: str = "",
    sweep_keys: list[str] | None = None,
    progress: bool = True,
    progress_name: str | None = None,
    tensorboard: bool = False,
    wandb: str = "off",
    stop_after_chunks: int | None = None,
    keys=None,
    hooks: tuple = (),
    evaluate: bool = True,
) -> RunResult:
    """Drive `program` through all its chunks; `members[i]` describes member i (seed, hyperparameters).

    `run_dir` is prepared (`RunDir.prepare`) by the caller. Writes under it metrics.jsonl/csv (a `phase`
    column says which phase a row is from), checkpoints/, curve.png, results.md, and with `tensorboard`
    event files in tensorboard/<member>/ (flushed every chunk), with `wandb` ("offline" or "online") a
    Weights & Biases run per member. Every phase's last chunk is evaluated,
    and so is the first chunk of a phase that follows another. With `resume`, it continues from the
    latest checkpoint (a program longer than the checkpointed run extends it). `stop_after_chunks` ends
    the call early (as if killed) after that many chunks of this call; `progress_name` labels the bar
    (default: the run directory's name). `keys`: the members' PRNG keys
    (default: from their seeds); `hooks` run after evaluation and logging, before the checkpoint. Without
    `evaluate` no episode is played (a caller that scores the policies itself).
    """
    sweep_keys = sweep_keys or []
    keys = shard_members(member_keys(members) if keys is None else keys, program.mesh)
    num_chunks = program.num_chunks
    checkpointer = run_dir.checkpointer()
    start_chunk, states = 0, None
    if resume and checkpointer.latest_step() is not None:
        step, states = restore(program, members, checkpointer)
        start_chunk = program.chunks_done(step)
    elif resume:
        print(f"no checkpoint in {run_dir.checkpoint_dir}; starting from scratch")
    if states is None:
        states = shard_members(program.init(keys), program.mesh)
    primary = distributed.is_primary()  # the one process that writes files (all of them, in a single-process run)
    resume_step = program.step_after(start_chunk - 1) if start_chunk else None
    evaluation = Evaluation(program, ref_scores, members)
    sinks = []  # where the rows go besides metrics.jsonl/csv: the primary process's loggers
    if primary and tensorboard:
        purge = 0 if resume_step is None else resume_step + 1
        sinks.append(TensorBoardWriter(run_dir.path / "tensorboard", members, purge_step=purge))
    if primary and wandb != "off":
        sinks.append(WandbWriter(run_dir.path, members, wandb, resume=resume_step is not None))
    rows = Rows(MetricsWriter(run_dir.path, resume_step, sinks, primary), members)
    checkpoints = Checkpoints(checkpointer, checkpoint_every, start_chunk)
    # What a chunk leaves behind (rows, a caller's files) is written before the checkpoint that marks the
    # chunk done: a run killed in between redoes the chunk and rewrites them the same.
    hooks = [evaluation] * evaluate + [
        rows,
        *hooks,
        checkpoints,
        Progress(num_chunks, start_chunk, progress_name or run_dir.path.name, progress and primary),
    ]
    if start_chunk == 0 and evaluate:  # the untrained policy's score: the start of every learning curve
        rows.write(rows.of(0, program.phases[0].spec.name, evaluation.columns(states, 0)))
    t0 = time.perf_counter()
    try:
        for c in range(start_chunk, min(num_chunks, start_chunk + (stop_after_chunks or num_chunks))):
            phase = program.phase_of(c)
            states = program.enter(states, c, keys)
            new_states, metrics, seconds = timed(program.chunk, states, c)
            step = program.step_after(c)
            try:
                _check_finite(metrics, step, members)
            except TrainingDiverged as err:
                if c == 0:
                    raise TrainingDiverged(
                        f"training diverged: {err}. It diverged in the first chunk, so no state is saved."
                    ) from None
                checkpoints.keep(c, program.step_after(c - 1), states)
                raise TrainingDiverged(
                    f"training diverged: {err}. The last good state is saved in {run_dir.checkpoint_dir} at step {program.step_after(c - 1)}."
                ) from None
            states = new_states
            last = c + 1 == num_chunks
            phase_end = c + 1 == phase.first_chunk + phase.num_chunks
            edge = phase_end or (c == phase.first_chunk and c > 0)
            end = ChunkEnd(c, step, phase.spec.name, states, metrics, (c + 1) % eval_every == 0 or last or edge, last,
                           seconds, phase.spec.chunk_steps, program.phases.index(phase), phase_end)  # fmt: skip
            for hook in hooks:
                hook.after_chunk(end)
    finally:
        for hook in hooks:
            hook.close()
    elapsed = time.perf_counter() - t0
    metric = "normalized_score" if ref_scores is not None else "eval_return"
    finished_before = start_chunk == num_chunks  # a finished run resumed as it was: report, rewrite nothing
    last_step = program.step_after(num_chunks - 1)
    final_rows = [r for r in rows.writer.rows if r["step"] == last_step and "eval_return" in r][-len(members) :]
    table = ""
    if final_rows:
        table = results_table(final_rows, sweep_keys, metric) + (f"\n\n{notes}" if notes else "")
        switches = {p.first_step: p.spec.steps for p in program.phases[1:]}
        for switch, online_steps in switches.items():
            table += "\n\n" + switch_table(rows.writer.rows, sweep_keys, metric, switch, online_steps)
        if not finished_before and primary:
            (run_dir.path / "results.md").write_text(table + f"\n\nwall time of training loop: {elapsed:.1f} s\n")
            plot_learning_curves(rows.writer.rows, run_dir.path / "curve.png", metric, sweep_keys, title=run_dir.path.name,
                                 marks=list(switches))  # fmt: skip
    return RunResult(states, final_rows, table, run_dir.path)
