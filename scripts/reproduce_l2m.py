"""L2M's continual fine-tuning comparison with one command: pretrain a multi-task Decision Transformer on
PathWorld's pretraining tasks, then fine-tune it through a sequence of held-out tasks with every method,
evaluating each on every task after each task, and check the paper's claims.

  python scripts/reproduce_l2m.py                  # CPU scale: 4-task sequence (no push), a small DT (about an hour of 2 cores)
  python scripts/reproduce_l2m.py --full           # GPU scale: the 10-task sequence (every kind), the reference's model size
  python scripts/reproduce_l2m.py --methods l2m full-ft --seeds 2 --out runs/l2m-try
  python scripts/reproduce_l2m.py --pretrained runs/l2m/pretrained   # reuse a pretrained checkpoint
  python scripts/reproduce_l2m.py --help           # every setting of the protocol, with its default

Writes <out>/results.md (tables, claims), matrices.png, results.npz (every matrix) and pretrained/ (the
pretrained DT checkpoint, unless --pretrained names one). Pretraining and every method's fine-tuning are
trainer runs in <out>/runs/: run the same command again after a kill and it resumes there.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import numpy as np

from envs.pathworld import suites
from envs.pathworld.world import TASKS
from jaxrl.config import ProtocolCommand, protocol_command
from jaxrl.protocols import continual
from jaxrl.protocols import continual_report as report
from jaxrl.protocols.claims import mean_std

# The reference's MDDT: 6 layers, 12 heads, width 768, context 5, a pool of 30; steps scaled to what a GPU
# does in a few hours (the paper: 1M pretraining steps, 100k per task).
FULL = dict(
    kinds=TASKS, sequence=tuple(v.name for v in suites.suite("continual")), pretrain_tasks=40, eval_pretrain_tasks=10,
    transitions_per_task=20_000,
    embedding_dim=768, num_layers=6, num_heads=12, batch_size=256, pretrain_steps=50_000,
    pretrain_learning_rate=1e-4, steps_per_task=10_000, learning_rate=1e-4, pool_size=30, eval_episodes=16,
)  # fmt: skip


@dataclasses.dataclass
class Command(ProtocolCommand):
    protocol: continual.ContinualConfig = continual.ContinualConfig()
    pretrained: Path | None = None
    """a pretrained checkpoint directory to start from (skips pretraining)"""


def main(argv=None) -> None:
    command = protocol_command(Command, argv, name="l2m", description=__doc__, full=FULL)
    cfg, out = command.protocol, command.out
    t0 = time.perf_counter()
    env = continual.make_env(cfg)
    agent = continual.make_agent(cfg, env)
    k_data, k_pretrain, k_methods = jax.random.split(jax.random.PRNGKey(cfg.seed), 3)
    if command.pretrained:  # checked against the config before anything compiles
        backbone = continual.load_pretrained(command.pretrained, cfg, agent, k_pretrain)
    print(f"data: {cfg.pretrain_tasks} pretraining + {len(cfg.sequence)} sequence tasks x {cfg.transitions_per_task} transitions")
    data = continual.build_data(cfg, agent, env, k_data)
    print(f"  done ({time.perf_counter() - t0:.0f} s)")
    if not command.pretrained:
        print(f"pretraining a {cfg.num_layers}-layer, {cfg.embedding_dim}-wide DT for {cfg.pretrain_steps} steps")
        backbone = continual.pretrain(cfg, agent, data, k_pretrain, out / "runs" / "pretrain")
        continual.save_pretrained(out.resolve() / "pretrained", cfg, agent, backbone)
    results = {}
    for name, key in zip(cfg.methods, jax.random.split(k_methods, len(cfg.methods)), strict=True):
        print(f"{name}: {cfg.seeds} seeds, {len(cfg.sequence)} tasks x {cfg.steps_per_task} steps")
        results[name] = continual.run_method(name, cfg, agent, env, data, backbone, key, out / "runs" / name)
        m = report.metrics(results[name], cfg.eval_pretrain_tasks)
        print(f"  final {mean_std(m['final'])}, retention {mean_std(m['retention'])} "
              f"({results[name]['seconds']:.0f} s)")  # fmt: skip
    wall = time.perf_counter() - t0
    write(out, cfg, results, wall, command)
    print((out / "results.md").read_text())


def write(out: Path, cfg, results: dict, wall: float, args) -> None:
    p, sequence = cfg.eval_pretrain_tasks, list(cfg.sequence)
    command = "python scripts/reproduce_l2m.py" + (" --full" if args.full else "")
    lines = [
        f"# L2M continual fine-tuning on PathWorld ({'GPU' if args.full else 'CPU'} scale)",
        "",
        f"`{command}`: {jax.devices()[0].device_kind}, {wall / 60:.0f} min wall in all. Pretraining: {cfg.pretrain_tasks} tasks of the "
        f"`pretrain` suite; sequence: {len(sequence)} tasks of the `continual` suite (held-out layouts), "
        f"{cfg.transitions_per_task:,} scripted-expert transitions per task (noise {', '.join(map(str, cfg.noises))}). "
        f"DT {cfg.num_layers} layers x {cfg.embedding_dim}, context {cfg.context}, MSE action head; "
        f"{cfg.pretrain_steps:,} pretraining steps, {cfg.steps_per_task:,} per task, batch {cfg.batch_size}; "
        f"pool {cfg.pool_size}, rank {cfg.rank}; success over {cfg.eval_episodes} episodes per task, on every sequence "
        f"task and {p} pretraining tasks ({', '.join(cfg.kinds)} in turn); "
        f"mean ± std over {cfg.seeds} seeds.",
        "",
        report.results_table(results, p),
        "",
        "Forgetting: mean over sequence tasks (but the last) of the best score after learning it minus the final "
        "score; earlier tasks kept: final / best of those tasks; retention: pretraining success after / before.",
        "",
        "## Claims",
        "",
        report.claims_markdown(results, p),
        "",
        "## Performance matrices (mean over seeds)",
        "",
    ]
    for name, result in results.items():
        lines += [f"### {report.NAMES.get(name, name)}", "", report.matrix_table(result, p, sequence), ""]
    for name, result in results.items():
        if "claimed" in result:
            lines += [f"## Retrieval confusion: {report.NAMES[name]} (fraction of each task's windows per entry)", "",
                      report.confusion_table(result, p, sequence), ""]  # fmt: skip
    seconds = {name: round(r["seconds"]) for name, r in results.items()}
    lines += ["## Time per method (s)", "", json.dumps(seconds), ""]
    (out / "results.md").write_text("\n".join(lines))
    report.plot_matrices(results, p, sequence, out / "matrices.png")
    arrays = {f"{n}/{k}": np.asarray(v) for n, r in results.items() for k, v in r.items() if k != "seconds"}
    np.savez_compressed(out / "results.npz", **arrays)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1))


if __name__ == "__main__":
    main()
