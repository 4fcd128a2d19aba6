"""Paper-style result tables: algorithms x datasets, each cell one vmapped program over seeds.

A table spec (YAML, see experiments/tables/offline_pendulum.yaml) names the environment, the dataset levels,
the algorithms with their settings, the seeds and the steps. `run_table` trains every cell, writes
`table.md` (mean +- std of the final normalised score over seeds), `table.png` and `cells.jsonl`
under the output directory, and reuses finished cells when run again.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import yaml

from jaxrl.agents import ConfigError, make_agent
from jaxrl.trainer import TrainingDiverged


@dataclasses.dataclass
class TableSpec:
    name: str
    env: str
    levels: list[str]
    algorithms: dict[str, dict]  # algo -> {"agent": {...hyperparameters}, other TrainConfig fields}
    seeds: int = 5
    steps: int = 10_000
    suite: str = "default"  # a generated suite profile, or a directory holding <level>.hdf5 files
    common: dict = dataclasses.field(default_factory=dict)  # TrainConfig fields shared by every cell

    @classmethod
    def load(cls, path: str | Path) -> "TableSpec":
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{path}: cannot read table spec ({e})") from None
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw or {}) - fields)
        if unknown or not raw:
            raise ConfigError(f"{path}: unknown or missing keys {unknown}; a table spec has {', '.join(sorted(fields))}")
        try:
            return cls(**raw)
        except TypeError as e:
            raise ConfigError(f"{path}: {e}") from None


def _cell_config(spec: TableSpec, algo: str, level: str, out: Path):
    from jaxrl.train import TrainConfig

    settings = dict(spec.algorithms[algo] or {})
    hyperparameters = dict(settings.pop("agent", {}) or {})
    if "hidden_dims" in hyperparameters:
        hyperparameters["hidden_dims"] = tuple(hyperparameters["hidden_dims"])
    suite_dir = Path(spec.suite)
    dataset = str(suite_dir / f"{level}.hdf5") if suite_dir.is_dir() else level
    suite = spec.suite if not suite_dir.is_dir() else "default"
    fields = {"progress": False, **spec.common, **settings}
    return TrainConfig(agent=make_agent(algo, **hyperparameters), env=spec.env, dataset=dataset, suite=suite,
                       seeds=spec.seeds, steps=spec.steps, run_dir=str(out / "runs" / f"{algo}-{level}"), **fields)  # fmt: skip


def run_table(spec: TableSpec, out: Path, only: list[str] | None = None, log=print) -> str:
    """Train every (algorithm, level) cell not yet in `out/cells.jsonl`; returns the markdown table."""
    from jaxrl.train import train

    out.mkdir(parents=True, exist_ok=True)
    cells_path = out / "cells.jsonl"
    done = {}
    if cells_path.exists():
        for line in cells_path.read_text().splitlines():
            cell = json.loads(line)
            done[(cell["algo"], cell["level"])] = cell
    algos = [a for a in spec.algorithms if not only or a in only]
    configs = {(a, lv): _cell_config(spec, a, lv, out) for a in algos for lv in spec.levels}
    for cfg in configs.values():
        cfg.validate()  # every cell is checked before the first one trains
    for (algo, level), cfg in configs.items():
        if (algo, level) in done:
            continue
        start = time.perf_counter()
        try:
            result = train(dataclasses.replace(cfg, overwrite=True))
        except TrainingDiverged as err:  # a diverged cell is a result too: record it and go on
            log(f"{algo:>8} {level:>14}: {err}")
            done[(algo, level)] = cell = {"algo": algo, "level": level, "diverged": str(err)}
            with cells_path.open("a") as f:
                f.write(json.dumps(cell) + "\n")
            continue
        scores = [row.get("normalized_score", row["eval_return"]) for row in result.final_rows]
        cell = {"algo": algo, "level": level, "scores": scores, "mean": float(np.mean(scores)),
                "std": float(np.std(scores)), "seconds": time.perf_counter() - start}  # fmt: skip
        done[(algo, level)] = cell
        with cells_path.open("a") as f:
            f.write(json.dumps(cell) + "\n")
        log(f"{algo:>8} {level:>14}: {cell['mean']:6.1f} +- {cell['std']:4.1f}  ({cell['seconds']:.0f} s)")
    table = format_table(spec, done, algos)
    (out / "table.md").write_text(table + "\n")
    plot_table(spec, done, algos, out / "table.png")
    return table


def format_table(spec: TableSpec, cells: dict, algos: list[str]) -> str:
    """Rows are dataset levels (+ average), columns algorithms; the best mean per row is bold."""
    ok = {key: cell for key, cell in cells.items() if "mean" in cell}

    def text(a, level):
        if (a, level) in ok:
            return f"{ok[(a, level)]['mean']:.1f} +- {ok[(a, level)]['std']:.1f}"
        return "diverged" if (a, level) in cells else "-"

    lines = [f"| {spec.env.split('/')[-1]} | " + " | ".join(algos) + " |", "|---" * (len(algos) + 1) + "|"]
    for level in [*spec.levels, "average"]:
        if level == "average":
            complete = [all((a, lv) in ok for lv in spec.levels) for a in algos]
            means = [
                np.mean([ok[(a, lv)]["mean"] for lv in spec.levels]) if c else None for a, c in zip(algos, complete, strict=True)
            ]
            texts = [f"{m:.1f}" if m is not None else "-" for m in means]
        else:
            means = [ok[(a, level)]["mean"] if (a, level) in ok else None for a in algos]
            texts = [text(a, level) for a in algos]
        known = [m for m in means if m is not None]
        best = max(known) if known else None
        texts = [f"**{t}**" if m is not None and m == best else t for t, m in zip(texts, means, strict=True)]
        lines.append(f"| {level} | " + " | ".join(texts) + " |")
    lines.append("")
    lines.append(f"Normalised score (mean +- std over {spec.seeds} seeds) after {spec.steps} updates; suite `{spec.suite}`.")
    return "\n".join(lines)


def plot_table(spec: TableSpec, cells: dict, algos: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(algos) * len(spec.levels) / 2), 4))
    width = 0.8 / max(len(algos), 1)
    x = np.arange(len(spec.levels))
    for i, algo in enumerate(algos):
        means = [cells.get((algo, lv), {}).get("mean", np.nan) for lv in spec.levels]
        stds = [cells.get((algo, lv), {}).get("std", 0.0) for lv in spec.levels]
        ax.bar(x + (i - (len(algos) - 1) / 2) * width, means, width, yerr=stds, label=algo, capsize=2)
    ax.set_xticks(x, spec.levels)
    ax.set_ylabel("normalised score")
    ax.set_title(f"{spec.name}: {spec.env}")
    ax.legend(fontsize=7, ncol=min(len(algos), 5))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
