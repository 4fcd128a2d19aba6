"""HAMSTER's low level alone: how well it follows the expert's (oracle) paths, per task, and how well it
generalises (action error on its demos and on new in-domain expert episodes).

  python scripts/hamster_low_level.py                          # the protocol's defaults (lookahead encoding)
  python scripts/hamster_low_level.py --encoding channels --state proprio --demo-episodes 300 --low-steps 4000 --batch-size 64

The low level trains through the trainer as in `reproduce_hamster.py` (run directories under OUT/runs, resumed
after a kill); no high level or off-domain data is made. Writes OUT/low_level.json and prints the table.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import numpy as np
import tyro

from envs.pathworld.world import TASKS
from jaxrl.agents import ConfigError
from jaxrl.engine.phases import Offline
from jaxrl.engine.stage import chunks_of, replicate_agent, run_stage
from jaxrl.protocols import hamster, hierarchy


@dataclasses.dataclass
class Command:
    protocol: hamster.HamsterConfig = hamster.HamsterConfig()
    encoding: str = "lookahead"
    """the low level's path encoding: overlay, channels, vector or lookahead"""
    out: Path = Path("runs/hamster-low-level")
    """where the low level's runs and low_level.json go"""


def parse(argv: list[str] | None = None) -> Command:
    command = tyro.cli(Command, args=argv, prog="python scripts/hamster_low_level.py", description=__doc__,
                       config=(tyro.conf.OmitArgPrefixes,))  # fmt: skip
    if command.encoding not in hierarchy.ENCODINGS:
        raise SystemExit(f"error: encoding must be one of {', '.join(hierarchy.ENCODINGS)}, got {command.encoding!r}")
    try:
        # only the in-domain demos are needed: the off-domain data is left at its minimum
        command.protocol = dataclasses.replace(command.protocol, offdomain_paths=1, pointing=0, offdomain_episodes=1)
        command.protocol.validate()
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None
    return command


def action_error(model, params, kind: str, rows: dict, n: int = 4096) -> np.ndarray:
    """Mean squared action error (summed over action dims) of every seed's params on the first n rows [seeds]."""
    part = jax.tree.map(lambda x: x[:n], rows)
    inputs = hamster.model_inputs(kind, part)
    predict = jax.jit(jax.vmap(lambda p: model.apply(p, *inputs)))
    return np.asarray(((predict(params) - part["action"][None]) ** 2).sum(-1).mean(-1))


def main(argv: list[str] | None = None) -> None:
    command = parse(argv)
    cfg, kind, out = command.protocol, command.encoding, command.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    k_data, k_model, k_new, k_eval = jax.random.split(jax.random.PRNGKey(cfg.seed), 4)
    data = hamster.build_data(cfg, k_data)
    rows = hamster.training_set(kind, ("demos", 1.0), data)
    agents = replicate_agent(hamster.learner(cfg, kind, rows), cfg.seeds)
    phase = Offline(cfg.low_steps, chunks_of(cfg.low_steps), cfg.batch_size)
    settings = {**hamster.model_settings(cfg, f"{kind}/demos/1"), "script": "hamster_low_level"}
    stage = run_stage(agents, [phase], rows, jax.random.split(k_model, cfg.seeds), out / "runs" / kind, settings)
    params = stage.states.agent.model.params

    # new in-domain expert episodes, never trained on
    rng = np.random.default_rng(cfg.seed + 2)
    new = hamster.sample_variants(hamster.IN_DOMAIN, cfg.tasks, 200, rng)
    states, actions, alive, success = hamster.expert_episodes(new.params, k_new)
    held_out = hamster.rows_of(new.params, states, actions, alive, success, cfg.image_size, cfg.state)
    held_out["channels"] = hamster.draw_channels(held_out["path"], cfg.image_size)
    model = hamster.models(cfg)[kind]
    errors = {"demos": action_error(model, params, kind, rows), "new episodes": action_error(model, params, kind, held_out)}

    variants = hamster.evaluation_variants(dataclasses.replace(cfg, splits=("in-domain",)))["in-domain"]
    episodes = hamster.evaluate_method(cfg, hamster.Method("oracle", kind), {f"{kind}/demos/1": params}, variants.params, k_eval)
    ok, task = np.asarray(episodes["success"]), np.asarray(variants.params.task)  # [seeds, n], [n]
    per_task = {TASKS[t]: ok[:, task == t].mean(1).tolist() for t in sorted(set(task.tolist()))}
    result = {"encoding": kind, "config": dataclasses.asdict(cfg), "oracle_path_success": ok.mean(1).tolist(),
              "per_task": per_task, "action_error": {k: v.tolist() for k, v in errors.items()},
              "final_loss": [float(r["loss"]) for r in stage.rows if r["step"] == cfg.low_steps],
              "seconds": time.perf_counter() - t0}  # fmt: skip
    (out / "low_level.json").write_text(json.dumps(result, indent=1, default=str))
    print(f"low level {kind}, state {cfg.state}, {data.demo_episodes} demos, {cfg.low_steps} updates of {cfg.batch_size}, "
          f"{cfg.seeds} seed(s), {cfg.eval_episodes} in-domain episodes with oracle paths ({result['seconds']:.0f} s)")  # fmt: skip
    print("| task | oracle-path success |\n|---|---|")
    for name, values in per_task.items():
        print(f"| {name} | {np.mean(values):.2f} |")
    print(f"| all | {ok.mean():.2f} |")
    print(f"action error (summed over dims): demos {errors['demos'].mean():.3f}, new in-domain episodes "
          f"{errors['new episodes'].mean():.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
