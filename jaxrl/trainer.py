"""Training programs and the host loop that drives them.

A program holds three jitted functions over the state of every sweep member at once (leading axis M):
    init(keys) -> states
    chunk(states, chunk_index) -> (states, metrics)    # one `lax.scan` of many steps
    evaluate(states, key) -> returns [M, episodes]
The host loop calls `chunk` repeatedly and, between chunks only, logs, evaluates and checkpoints.
Nothing inside a chunk returns to Python.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl.buffer import ReplayBuffer
from jaxrl.checkpoint import Checkpointer
from jaxrl.data.dataset import Dataset, Normalizer
from jaxrl.evaluation import evaluate_policy_with_memory, normalized_score
from jaxrl.reporting import MetricsWriter, plot_learning_curves, results_table
from jaxrl.sharding import member_mesh, replicate, shard_members
from jaxrl.sweep import member_keys


class TrainingDiverged(RuntimeError):
    """A loss or statistic became NaN/Inf; the last good state is kept as a checkpoint."""


@dataclass
class Program:
    agents: Any  # the stacked agents of all members (leaves have a leading member axis)
    init: Callable
    chunk: Callable
    evaluate: Callable
    steps_per_chunk: int
    compiled_chunk: Any = None  # the jitted function behind `chunk` (to inspect its compilations)
    mesh: Any = None  # devices the member axis is split over (None: one device)


@struct.dataclass
class OfflineState:
    agent: Any
    normalizer: Normalizer
    key: jax.Array


@struct.dataclass
class OnlineState:
    agent: Any
    normalizer: Normalizer
    buffer: ReplayBuffer
    env_state: Any
    obs: jax.Array
    key: jax.Array


def _num_members(agents) -> int:
    return int(jax.tree.leaves(agents)[0].shape[0])


def _mean_metrics(metrics: dict) -> dict:
    return {k: jnp.mean(v) for k, v in metrics.items()}


def _evaluator(env, num_episodes: int):
    def evaluate(agent, state, key):
        norm = state.normalizer
        return evaluate_policy_with_memory(
            env,
            lambda obs, key, carry: agent.act_with_carry(state.agent, norm(obs), key, carry, True),
            key,
            num_episodes,
            init_carry=lambda obs: agent.initial_carry(state.agent, norm(obs)),
            observe=agent.observe,
        )

    return jax.jit(jax.vmap(evaluate, in_axes=(0, 0, None)))


def build_offline_program(
    agents, dataset: Dataset, normalizer: Normalizer, eval_env, *, chunk_steps: int, batch_size: int, eval_episodes: int
) -> Program:
    """Offline training: each chunk is `chunk_steps` updates on batches drawn by `agent.sample`.

    The dataset must already be normalised with `normalizer`; the normaliser is kept in the state so
    that evaluation sees observations the same way the agent was trained on them.
    """
    dataset = agents.training_data(dataset)  # e.g. trajectory windows for sequence models
    mesh = member_mesh(_num_members(agents))
    dataset = replicate(dataset, mesh)

    def init(agent, key):
        init_key, key = jax.random.split(key)
        return OfflineState(agent.init(init_key), normalizer, key)

    def chunk(agent, state, index, data):
        def update(carry, step):
            agent_state, key = carry
            key, batch_key, update_key = jax.random.split(key, 3)
            batch = agent.sample(data, batch_key, batch_size)
            agent_state, metrics = agent.update_at(agent_state, batch, update_key, step)
            return (agent_state, key), metrics

        # The global update index, unbatched under the member vmap: a lax.cond on it is a real branch.
        steps = index * chunk_steps + jnp.arange(chunk_steps)
        (agent_state, key), metrics = jax.lax.scan(update, (state.agent, state.key), steps)
        return state.replace(agent=agent_state, key=key), _mean_metrics(metrics)

    return _assemble(agents, init, chunk, dataset, eval_env, eval_episodes, chunk_steps, mesh)


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
) -> Program:
    """Online training: each iteration steps `num_envs` environments, stores the transitions, then
    makes `utd * num_envs` updates (none before `learning_starts` env steps, when actions are uniform).

    `chunk_steps` counts environment steps over all envs; `utd` (updates per env step) may be
    fractional as long as `utd * num_envs` is a whole number.
    """
    spec = env.spec
    mesh = member_mesh(_num_members(agents))
    iterations = chunk_steps // num_envs
    updates_per_iteration = round(utd * num_envs)
    if chunk_steps % num_envs or updates_per_iteration < 1 or abs(updates_per_iteration - utd * num_envs) > 1e-9:
        raise ValueError(
            f"chunk_steps ({chunk_steps}) must be a multiple of num_envs ({num_envs}) and utd * num_envs ({utd} * {num_envs}) a positive integer"
        )
    vstep = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def init(agent, key):
        init_key, reset_key, key = jax.random.split(key, 3)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, num_envs), None)
        buffer = ReplayBuffer.create(buffer_size, spec.obs_dim, spec.action_dim)
        return OnlineState(agent.init(init_key), Normalizer.identity(spec.obs_dim), buffer, env_state, obs, key)

    def chunk(agent, state, chunk_index):
        def iteration(state, i):
            env_steps = (chunk_index * iterations + i) * num_envs  # unbatched: keeps lax.cond a real branch
            key, act_key, random_key, env_key, update_key = jax.random.split(state.key, 5)
            action = agent.act(state.agent, state.obs, act_key, False)
            random_action = jax.random.uniform(random_key, action.shape, minval=-1.0, maxval=1.0)
            action = jnp.where(env_steps < learning_starts, random_action, action)
            obs, env_state, reward, terminated, truncated, info = vstep(
                jax.random.split(env_key, num_envs), state.env_state, action, None
            )
            buffer = state.buffer.add(
                Dataset(
                    state.obs, action, reward, info["final_obs"], terminated.astype(jnp.float32), truncated.astype(jnp.float32)
                )
            )

            def updates(agent_state):
                def one(agent_state, key):
                    sample_key, key = jax.random.split(key)
                    return agent.update(agent_state, buffer.sample(sample_key, batch_size), key)

                agent_state, metrics = jax.lax.scan(one, agent_state, jax.random.split(update_key, updates_per_iteration))
                return agent_state, _mean_metrics(metrics)

            _, metric_shapes = jax.eval_shape(updates, state.agent)
            skip = lambda agent_state: (agent_state, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metric_shapes))  # noqa: E731
            learning = env_steps + num_envs > learning_starts
            agent_state, metrics = jax.lax.cond(learning, updates, skip, state.agent)
            metrics["updates"] = learning * updates_per_iteration
            done = info["episode_done"]
            episodes = (jnp.sum(jnp.where(done, info["episode_return"], 0.0)), jnp.sum(done))
            state = state.replace(agent=agent_state, buffer=buffer, env_state=env_state, obs=obs, key=key)
            return state, (metrics, episodes)

        state, (metrics, (return_sums, counts)) = jax.lax.scan(iteration, state, jnp.arange(iterations))
        # Average over the iterations that made updates; NaN (not a fake 0) when none did. A NaN
        # produced by a real update still propagates, so divergence is never averaged away.
        updates = metrics.pop("updates")
        made = jnp.sum(updates > 0)
        metrics = {
            k: jnp.where(made > 0, jnp.sum(jnp.where(updates > 0, v, 0.0)) / jnp.maximum(made, 1), jnp.nan)
            for k, v in metrics.items()
        }
        metrics["updates"] = jnp.sum(updates)
        metrics["episode_return"] = return_sums.sum() / counts.sum()  # NaN when no episode ended
        return state, metrics

    return _assemble(agents, init, lambda agent, state, index, data: chunk(agent, state, index), None, env,
                     eval_episodes, chunk_steps, mesh)  # fmt: skip


def _assemble(agents, init, chunk, data, eval_env, eval_episodes: int, chunk_steps: int, mesh) -> Program:
    """Vmap the per-member `init(agent, key)` and `chunk(agent, state, index, data)` over members and jit them.

    `data` (the dataset, or None) is an argument of the compiled chunk rather than a closure, so it is
    not baked into the program as a constant.
    """
    members = jax.jit(lambda states, index, data: jax.vmap(chunk, in_axes=(0, 0, None, None))(agents, states, index, data))
    evaluate = _evaluator(eval_env, eval_episodes)
    return Program(
        agents=agents,
        init=jax.jit(lambda keys: jax.vmap(init)(agents, keys)),
        chunk=lambda states, index: members(states, index, data),
        evaluate=lambda states, key: evaluate(agents, states, key),
        steps_per_chunk=chunk_steps,
        compiled_chunk=members,
        mesh=mesh,
    )


def restore(program: Program, members: list[dict], checkpointer: Checkpointer, step: int | None = None):
    """(step, states) from a checkpoint of `program`'s run (the latest unless `step`), sharded like a fresh init."""
    step, states = checkpointer.restore(jax.eval_shape(program.init, member_keys(members)), step)
    return step, shard_members(states, program.mesh)


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
    run_dir: str | Path,
    *,
    num_chunks: int,
    eval_every: int,
    checkpoint_every: int,
    resume: bool = False,
    overwrite: bool = False,
    ref_scores: tuple[float, float] | None = None,
    sweep_keys: list[str] | None = None,
    config: dict | None = None,
    progress: bool = True,
    tensorboard: bool = False,
    stop_after_chunks: int | None = None,
) -> RunResult:
    """Drive `program` for `num_chunks` chunks; `members[i]` describes member i (seed, hyperparameters).

    Writes under `run_dir`: config.json, metrics.jsonl/csv, checkpoints/, curve.png, results.md, and
    with `tensorboard` event files in tensorboard/<member>/ (flushed every chunk).
    `stop_after_chunks` ends the call early (as if killed) after that many chunks of this call.
    """
    from tqdm.auto import tqdm

    run_dir = Path(run_dir)
    if overwrite and not resume and run_dir.exists():
        shutil.rmtree(run_dir)
    if not resume and (run_dir / "checkpoints").exists() and any((run_dir / "checkpoints").iterdir()):
        raise ValueError(
            f"{run_dir} already holds a run; pass resume=True (--resume) to continue it, overwrite=True (--overwrite) to replace it, or choose another run_dir"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    sweep_keys = sweep_keys or []
    config_path = run_dir / "config.json"
    if config is not None:
        config = json.loads(json.dumps(config, default=str))  # compare as stored (tuples become lists)
        if resume and config_path.exists():
            saved = json.loads(config_path.read_text())
            changed = sorted(
                k
                for k in set(saved) | set(config)
                if k not in ("resume", "overwrite", "progress", "tensorboard") and saved.get(k) != config.get(k)
            )
            if changed:
                raise ValueError(f"cannot resume {run_dir}: its config differs in {', '.join(changed)}")
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True, default=str))

    checkpointer = Checkpointer(run_dir / "checkpoints")
    start_chunk, states = 0, None
    if resume and checkpointer.latest_step() is not None:
        step, states = restore(program, members, checkpointer)
        start_chunk = step // program.steps_per_chunk
    elif resume:
        print(f"no checkpoint in {run_dir / 'checkpoints'}; starting from scratch")
    if states is None:
        states = shard_members(program.init(member_keys(members)), program.mesh)
    writer = MetricsWriter(
        run_dir,
        resume_step=start_chunk * program.steps_per_chunk if start_chunk else None,
        tensorboard_members=members if tensorboard else None,
    )
    eval_key = jax.random.PRNGKey(10_000)

    def eval_rows(states, step):
        returns = np.asarray(program.evaluate(states, jax.random.fold_in(eval_key, step))).mean(axis=1)
        out = {"eval_return": returns}
        if ref_scores is not None:
            out["normalized_score"] = normalized_score(returns, *ref_scores)
        return out

    if start_chunk == 0:  # the untrained policy's score: the start of every learning curve
        writer.write([{"step": 0, "member": m, **member, **{k: float(v[m]) for k, v in eval_rows(states, 0).items()}}
                      for m, member in enumerate(members)])  # fmt: skip
    bar = tqdm(total=num_chunks, initial=start_chunk, disable=not progress, desc=run_dir.name, unit="chunk")
    last_saved = start_chunk if start_chunk else None
    final_rows: list[dict] = []
    t0 = time.perf_counter()
    chunks_done = 0
    for c in range(start_chunk, num_chunks):
        new_states, metrics = program.chunk(states, c)
        metrics = {k: np.asarray(v) for k, v in jax.device_get(metrics).items()}
        step = (c + 1) * program.steps_per_chunk
        try:
            _check_finite(metrics, step, members)
        except TrainingDiverged as err:
            good_step = c * program.steps_per_chunk
            if c > 0 and last_saved != c:
                checkpointer.save(good_step, states)
            checkpointer.wait()
            where = f"{run_dir / 'checkpoints'} at step {good_step}" if c > 0 else "nowhere (it diverged in the first chunk)"
            raise TrainingDiverged(f"training diverged: {err}. The last good state is saved in {where}.") from None
        states = new_states
        is_last = c + 1 == num_chunks
        evals = eval_rows(states, step) if (c + 1) % eval_every == 0 or is_last else {}
        rows = []
        for m, member in enumerate(members):
            row = {"step": step, "member": m, **member, **{k: float(v[m]) for k, v in metrics.items()}}
            row.update({k: float(v[m]) for k, v in evals.items()})
            rows.append(row)
        writer.write(rows)
        if is_last:
            final_rows = rows
        if (c + 1) % checkpoint_every == 0 or is_last:
            checkpointer.save(step, states)
            last_saved = c + 1
        if evals:
            score = evals.get("normalized_score", evals["eval_return"])
            bar.set_postfix({"score" if "normalized_score" in evals else "return": f"{np.mean(score):.1f}"})
        bar.update(1)
        chunks_done += 1
        if stop_after_chunks is not None and chunks_done >= stop_after_chunks:
            break
    bar.close()
    writer.close()
    checkpointer.wait()
    checkpointer.close()
    elapsed = time.perf_counter() - t0
    metric = "normalized_score" if ref_scores is not None else "eval_return"
    table = ""
    if final_rows:
        table = results_table(final_rows, sweep_keys, metric)
        (run_dir / "results.md").write_text(table + f"\n\nwall time of training loop: {elapsed:.1f} s\n")
        plot_learning_curves(writer.rows, run_dir / "curve.png", metric, sweep_keys, title=run_dir.name)
    return RunResult(states, final_rows, table, run_dir)


def chunks_for(steps: int, chunk_steps: int) -> int:
    if chunk_steps <= 0 or steps <= 0:
        raise ValueError("steps and chunk_steps must be positive")
    return math.ceil(steps / chunk_steps)
