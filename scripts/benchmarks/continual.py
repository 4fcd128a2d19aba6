"""The continual regime's two training programs: multi-task DT pretraining and L2M's pool fine-tuning
(retrieval, LoRA-modulated forward, pull term, usage counts), 1 and 8 seeds vmapped, at the CPU scale of
`make reproduce-l2m` (3 layers x 64, context 5, batch 128, a pool of 12 rank-8 entries) on random rows of
PathWorld's shapes (85-d states, 3-d actions, 150-step episodes): only the shapes matter for speed."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import envs
from benchmarks.timing import Result, time_program
from jaxrl.data.dataset import Dataset
from jaxrl.protocols.continual import METHODS, PRETRAIN, ContinualConfig, ContinualLearner, TaskData, make_agent

ROWS = 30_000


def bench_continual(method: str, members: int, chunk_steps: int, repeats: int, quiet_wait: float) -> Result:
    cfg = ContinualConfig()
    env = envs.make("pathworld/reach")
    agent = make_agent(cfg, env)
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((ROWS, env.spec.obs_dim)).astype(np.float32)
    timeouts = (np.arange(ROWS) % 150 == 149).astype(np.float32)
    rows = Dataset.from_numpy(observations=obs, actions=rng.uniform(-1, 1, (ROWS, env.spec.action_dim)).astype(np.float32),
                              rewards=rng.standard_normal(ROWS).astype(np.float32), next_observations=obs,
                              terminals=np.zeros(ROWS, np.float32), timeouts=timeouts)  # fmt: skip
    data = TaskData(agent.training_data(rows), jnp.zeros(2), None, ROWS // 2, 1)
    learner = ContinualLearner(agent, PRETRAIN if method == "pretrain" else METHODS[method], cfg)
    backbone = agent.init(jax.random.PRNGKey(0)).model.params
    state = jax.vmap(lambda k: learner.init(backbone, k))(jax.random.split(jax.random.PRNGKey(1), members))
    # the pool methods train on the second task with the usage penalty on: every term of their update runs
    lo, entry, penalise = (0, 0, False) if method == "pretrain" else (ROWS // 2, 1, True)

    @jax.jit
    def chunk(state, index):
        keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(2), index), members)
        return jax.vmap(lambda s, k: learner.train(s, data, lo, lo + ROWS // 2, entry, penalise, k, chunk_steps, 1e-3))(
            state, keys
        )

    label = f"{'DT multi-task pretraining' if method == 'pretrain' else method + ' fine-tuning'} x{members}"
    timing = time_program(chunk, state, repeats, label, quiet_wait)
    pool = "" if method == "pretrain" else f", pool {cfg.pool_size} x rank {cfg.rank}"
    setting = (f"DT {cfg.num_layers}x{cfg.embedding_dim}, context {cfg.context}, batch {cfg.batch_size}{pool}, "
               f"PathWorld shapes, chunk {chunk_steps}")  # fmt: skip
    return Result.of(label, setting, timing, chunk_steps, members, "updates/s")
