"""HAMSTER's training programs: the high level (image + instruction -> path) and the low level (proprioception
+ image + path drawn in channels -> action), at the model sizes of `make reproduce-hamster` (CPU: CNN 16-32-32,
MLP 2x256, batch 64; the same at 64 px), 1 and 8 seeds vmapped, on random uint8 rows of the real shapes:
only the shapes matter for speed. One chunk is one chunk of the trainer's offline phase, as `hamster.train_model` runs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.timing import Result, time_program
from envs.pathworld.expert import MAX_WAYPOINTS
from jaxrl.engine.phases import Offline
from jaxrl.engine.stage import replicate_agent
from jaxrl.engine.trainer import build_program
from jaxrl.protocols import hamster, hierarchy

ROWS = 4_096


def random_rows(size: int) -> dict:
    rng = np.random.default_rng(0)
    path = np.zeros((ROWS, MAX_WAYPOINTS, 4), np.float32)
    path[:, :3, :2] = rng.uniform(0.1, 0.9, (ROWS, 3, 2))
    path[:, :3, 3] = 1.0
    return {
        "image": jnp.asarray(rng.integers(0, 256, (ROWS, size, size, 3), np.uint8)),
        "channels": jnp.asarray(rng.integers(0, 256, (ROWS, size, size, 2), np.uint8)),
        "tokens": jnp.asarray(rng.integers(0, 3, (ROWS, 4)), jnp.int32),
        "proprio": jnp.asarray(rng.standard_normal((ROWS, hierarchy.PROPRIO_DIM)), jnp.float32),
        "path": jnp.asarray(path),
        "action": jnp.asarray(rng.uniform(-1, 1, (ROWS, 3)), jnp.float32),
    }


def bench_hierarchy(level: str, size: int, members: int, chunk_steps: int, repeats: int, quiet_wait: float) -> Result:
    cfg = hamster.HamsterConfig(image_size=size)
    kind = "high" if level == "high" else "channels"
    rows = random_rows(size)
    agents = replicate_agent(hamster.learner(cfg, kind, rows), members)
    phase = Offline(chunk_steps, chunk_steps, cfg.batch_size)
    program = build_program(agents, [phase], normalizer=None, eval_env=None, eval_episodes=0, dataset=rows)
    states = program.init(jax.random.split(jax.random.PRNGKey(0), members))

    label = f"HAMSTER {'high level' if level == 'high' else 'low level (channels)'} {size} px x{members}"
    timing = time_program(program.chunk, states, repeats, label, quiet_wait)
    setting = f"CNN {cfg.channels}, MLP {cfg.hidden_dims}, batch {cfg.batch_size}, {size} px, chunk {chunk_steps}"
    return Result.of(label, setting, timing, chunk_steps, members, "updates/s")
