"""HAMSTER's hierarchical-vs-flat comparison with one command: generate in-domain demos and off-domain data
on PathWorld, train the high levels, low levels and the flat and monolithic comparators for every seed,
evaluate every method on every split, and check the paper's claims.

  python scripts/reproduce_hamster.py                    # CPU scale: 32 px, 3 seeds
  python scripts/reproduce_hamster.py --full             # GPU scale: 64 px, more data and steps
  python scripts/reproduce_hamster.py --methods hamster flat --seeds 2 --out runs/hamster-try
  python scripts/reproduce_hamster.py --help             # every setting of the protocol, with its default

Writes <out>/results.md (tables, claims), episodes.png (rendered episodes with the followed path and the
executed trajectory per method and split), results.npz (every metric) and config.json. Every model is a
trainer run in <out>/runs/<model>: run the same command again after a kill and it resumes there.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import numpy as np

from jaxrl.config import ProtocolCommand, protocol_command
from jaxrl.protocols import hamster
from jaxrl.protocols import hamster_report as report

# 64 px images, HAMSTER's 300 in-domain demos, ten times the off-domain data, longer training, wider CNN
FULL = dict(image_size=64, demo_episodes=300, offdomain_paths=300_000, pointing=60_000, offdomain_episodes=4_000,
            channels=(32, 64, 64), high_steps=30_000, low_steps=20_000, batch_size=256, eval_episodes=64, seeds=5)  # fmt: skip


@dataclasses.dataclass
class Command(ProtocolCommand):
    protocol: hamster.HamsterConfig = hamster.HamsterConfig()


def main(argv=None) -> None:
    command = protocol_command(Command, argv, name="hamster", description=__doc__, full=FULL)
    cfg, out = command.protocol, command.out
    t0 = time.perf_counter()
    result = hamster.run(cfg, jax.random.PRNGKey(cfg.seed), out / "runs")
    wall = time.perf_counter() - t0
    write(out, cfg, result, wall, command)
    print((out / "results.md").read_text())


def write(out: Path, cfg: hamster.HamsterConfig, result: dict, wall: float, args) -> None:
    methods, splits = result["methods"], list(cfg.splits)
    command = "python scripts/reproduce_hamster.py" + (" --full" if args.full else "")
    path_methods = [m for m in ("hamster", "hamster-no-off") if m in methods]
    lines = [
        f"# HAMSTER: hierarchical vs flat on PathWorld ({'GPU' if args.full else 'CPU'} scale)",
        "",
        f"`{command}`: {jax.devices()[0].device_kind}, {wall / 60:.0f} min wall in all. Tasks {', '.join(cfg.tasks)}; "
        f"{cfg.image_size} px images. In-domain: {result['demo_episodes']} successful scripted-expert demos "
        f"({result['demo_rows']:,} rows; expert success {result['expert_success']['in-domain']:.2f}) on "
        f"{len(hamster.IN_DOMAIN.layouts)} layouts and {len(hamster.IN_DOMAIN.palettes)} palettes, plain camera, default "
        f"embodiment. Off-domain: {cfg.offdomain_paths:,} first frames with path labels and no actions, "
        f"{cfg.pointing:,} pointing examples, {cfg.offdomain_episodes} expert episodes under gain x1.5, damping x0.6 "
        f"(expert success {result['expert_success']['off-domain']:.2f}), on other layouts and palettes and random cameras. "
        f"High levels {cfg.high_steps:,} steps, low levels and action models {cfg.low_steps:,}, batch {cfg.batch_size}, "
        f"CNN {cfg.channels}, MLP {cfg.hidden_dims}. {cfg.eval_episodes} episodes per split and seed (the same start "
        f"states for every method); mean ± std over {cfg.seeds} seeds.",
        "",
        "Splits: `in-domain` (the demos' layouts and palettes: a reference), and held-out layouts (`layouts`) alone and "
        "with unseen palettes, the `camera-warp` camera, the `unseen-dynamics` embodiment (gain x0.6, damping x1.6, "
        "radius x1.2) and unseen object-task combinations (pick-place of the blue object, two touch orders). No model's "
        "training data has a held-out split's layouts, palettes or camera.",
        "",
        "## Success rate",
        "",
        report.metric_table(methods, splits, "success"),
        "",
        "## Path quality: discrete Frechet distance of the high level's path to the expert's (image units, lower is better)",
        "",
        report.metric_table(methods, splits, "frechet", path_methods) if path_methods else "(no high level run)",
        "",
        "## Adherence: mean distance of the executed trajectory to the followed path (image units)",
        "",
        report.metric_table(methods, splits, "adherence"),
        "",
        f"## Failure attribution (held-out splits; bad path: Frechet > {hamster.PATH_OK}; did not follow: adherence > "
        f"{hamster.FOLLOW_OK})",
        "",
        report.attribution_table(methods, splits),
        "",
        "## Claims",
        "",
        report.claims_markdown(methods, splits),
        "",
        "## Time (s)",
        "",
        json.dumps({k: round(v) for k, v in result["seconds"].items()}),
        "",
    ]
    (out / "results.md").write_text("\n".join(lines))
    report.plot_episodes(methods, splits, result["variants"], out / "episodes.png")
    arrays = {f"{m}/{k}": np.asarray(v) for m, r in methods.items() for k, v in r.items() if k != "example"}
    arrays.update({f"loss/{k}": v for k, v in result["losses"].items()})
    np.savez_compressed(out / "results.npz", **arrays)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1))


if __name__ == "__main__":
    main()
