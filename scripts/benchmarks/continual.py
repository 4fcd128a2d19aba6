"""The continual regime's two training programs: multi-task DT pretraining and L2M's pool fine-tuning
(retrieval, LoRA-modulated forward, pull term, usage counts), 1 and 8 seeds vmapped, at the CPU scale of
`make reproduce-l2m` (3 layers x 64, context 5, batch 128, a pool of 12 rank-8 entries) on random rows of
PathWorld's shapes (85-d states, 3-d actions, 150-step episodes): only the shapes matter for speed. One chunk
is one chunk of the trainer's offline phase over the method's agent, as the protocol's stages run."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.timing import Result, time_program
from jaxrl.data.dataset import Dataset
from jaxrl.engine.phases import Offline
from jaxrl.engine.stage import replicate_agent
from jaxrl.engine.trainer import build_program
from jaxrl.protocols.continual import METHODS, PRETRAIN, ContinualConfig, TaskData, continual_agent, make_agent, make_env

ROWS = 30_000


def bench_continual(method: str, members: int, chunk_steps: int, repeats: int, quiet_wait: float) -> Result:
    cfg = ContinualConfig()
    env = make_env(cfg)
    agent = make_agent(cfg, env)
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((ROWS, env.spec.obs_dim)).astype(np.float32)
    timeouts = (np.arange(ROWS) % 150 == 149).astype(np.float32)
    rows = Dataset.from_numpy(observations=obs, actions=rng.uniform(-1, 1, (ROWS, env.spec.action_dim)).astype(np.float32),
                              rewards=rng.standard_normal(ROWS).astype(np.float32), next_observations=obs,
                              terminals=np.zeros(ROWS, np.float32), timeouts=timeouts)  # fmt: skip
    data = TaskData(agent.training_data(rows), jnp.zeros(2), None, ROWS // 2, 1)
    # the pool methods train on the second task with the usage penalty on: every term of their update runs
    if method == "pretrain":
        learner = continual_agent(cfg, agent, PRETRAIN, data, span="pretrain")
    else:
        learner = continual_agent(cfg, agent, METHODS[method], data).replace(task=1)
    phase = Offline(chunk_steps, chunk_steps, cfg.batch_size)
    program = build_program(replicate_agent(learner, members), [phase], normalizer=None, eval_env=None, eval_episodes=0,
                            dataset=data.trajectory)  # fmt: skip
    state = program.init(jax.random.split(jax.random.PRNGKey(1), members))

    label = f"{'DT multi-task pretraining' if method == 'pretrain' else method + ' fine-tuning'} x{members}"
    timing = time_program(program.chunk, state, repeats, label, quiet_wait)
    pool = "" if method == "pretrain" else f", pool {cfg.pool_size} x rank {cfg.rank}"
    setting = (f"DT {cfg.num_layers}x{cfg.embedding_dim}, context {cfg.context}, batch {cfg.batch_size}{pool}, "
               f"PathWorld shapes, chunk {chunk_steps}")  # fmt: skip
    return Result.of(label, setting, timing, chunk_steps, members, "updates/s")
