"""Paper-style result tables: algorithms x rows, each cell one vmapped program over seeds.

A table spec (YAML, see experiments/tables/) names the environment, the rows (dataset levels, or named
rows of TrainConfig overrides such as a corruption), the algorithms with their settings (optionally per
row), the seeds, the steps and the paper claims to check. `run_table` trains every cell, writes
`table.md` (mean +- std of the final normalised score over seeds), `table.png` and `cells.jsonl`
under the output directory, and reuses finished cells when run again.
"""

from __future__ import annotations

import dataclasses
import hashlib
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
    algorithms: dict[str, dict]  # algo -> {"agent": {...}, "rows": {row: overrides}, other TrainConfig fields}
    levels: list[str] = dataclasses.field(default_factory=list)  # rows that are plain dataset levels
    rows: dict[str, dict] = dataclasses.field(default_factory=dict)  # row name -> TrainConfig overrides
    seeds: int = 5
    steps: int = 10_000
    suite: str = "default"  # a generated suite profile, or a directory holding <level>.hdf5 files
    common: dict = dataclasses.field(default_factory=dict)  # TrainConfig fields shared by every cell
    claims: list[dict] = dataclasses.field(default_factory=list)  # {claim, best, among}: see `check_claims`

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
            spec = cls(**raw)
        except TypeError as e:
            raise ConfigError(f"{path}: {e}") from None
        if not spec.row_settings():
            raise ConfigError(f"{path}: a table spec needs 'levels' or 'rows'")
        for algo, settings in spec.algorithms.items():
            unknown_rows = sorted(set((settings or {}).get("rows", {})) - set(spec.row_settings()))
            if unknown_rows:
                raise ConfigError(f"{path}: algorithms.{algo}.rows names unknown rows {unknown_rows}")
        return spec

    def row_settings(self) -> dict[str, dict]:
        """Every row's TrainConfig overrides; a plain level is a row that only picks the dataset."""
        return {**{level: {"dataset": level} for level in self.levels}, **self.rows}


def _merge(base: dict, extra: dict) -> dict:
    """Overrides on top of `base`, merging the nested `agent` and `corruption` mappings."""
    out = {**base, **extra}
    for key in ("agent", "corruption"):
        if key in base or key in extra:
            out[key] = {**(base.get(key) or {}), **(extra.get(key) or {})}
    return out


def _cell_config(spec: TableSpec, algo: str, row: str, out: Path):
    from jaxrl.config import TrainConfig

    settings = dict(spec.algorithms[algo] or {})
    per_row = settings.pop("rows", {}) or {}
    fields = _merge(_merge(_merge({"env": spec.env, "suite": spec.suite}, spec.common), spec.row_settings()[row]), settings)
    fields = _merge(fields, per_row.get(row, {}))
    hyperparameters = dict(fields.pop("agent", {}) or {})
    if "hidden_dims" in hyperparameters:
        hyperparameters["hidden_dims"] = tuple(hyperparameters["hidden_dims"])
    suite_dir = Path(fields["suite"])
    if suite_dir.is_dir():  # a directory of D4RL-layout files: the row's level names the file
        fields["dataset"] = str(suite_dir / f"{fields.get('dataset', row)}.hdf5")
        fields["suite"] = "default"
    run_dir = out / "runs" / f"{algo}-{row}".replace(" ", "_").replace("/", "_")
    return TrainConfig(agent=make_agent(algo, **hyperparameters), seeds=spec.seeds, steps=spec.steps,
                       run_dir=str(run_dir), **{"progress": False, **fields})  # fmt: skip


def _digest(cfg) -> str:
    """Hash of everything that decides a cell's result (not where it is written or how it reports)."""
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("run_dir", "progress", "overwrite", "resume")}
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_table(spec: TableSpec, out: Path, only: list[str] | None = None, log=print) -> str:
    """Train every (algorithm, row) cell not yet in `out/cells.jsonl`; returns the markdown table."""
    from jaxrl.train import train

    out.mkdir(parents=True, exist_ok=True)
    cells_path = out / "cells.jsonl"
    algos = [a for a in spec.algorithms if not only or a in only]
    configs = {(a, row): _cell_config(spec, a, row, out) for a in algos for row in spec.row_settings()}
    for cfg in configs.values():
        cfg.validate()  # every cell is checked before the first one trains
    done = {}
    if cells_path.exists():
        for line in cells_path.read_text().splitlines():
            cell = json.loads(line)
            key = (cell["algo"], cell["row"])
            # a cell trained under other settings (the spec was edited) is not this table's result
            if key in configs and cell.get("config") == _digest(configs[key]):
                done[key] = cell
    for (algo, row), cfg in configs.items():
        if (algo, row) in done:
            continue
        start = time.perf_counter()
        try:
            result = train(dataclasses.replace(cfg, overwrite=True))
        except TrainingDiverged as err:  # a diverged cell is a result too: record it and go on
            log(f"{algo:>8} {row:>20}: {err}")
            done[(algo, row)] = cell = {"algo": algo, "row": row, "diverged": str(err), "config": _digest(cfg)}
            with cells_path.open("a") as f:
                f.write(json.dumps(cell) + "\n")
            continue
        scores = [r.get("normalized_score", r["eval_return"]) for r in result.final_rows]
        cell = {"algo": algo, "row": row, "scores": scores, "mean": float(np.mean(scores)),
                "std": float(np.std(scores)), "seconds": time.perf_counter() - start, "config": _digest(cfg)}  # fmt: skip
        done[(algo, row)] = cell
        with cells_path.open("a") as f:
            f.write(json.dumps(cell) + "\n")
        log(f"{algo:>8} {row:>20}: {cell['mean']:6.1f} +- {cell['std']:4.1f}  ({cell['seconds']:.0f} s)")
    table = format_table(spec, done, algos)
    claims = check_claims(spec, done)
    (out / "table.md").write_text(table + "\n" + ("\n" + claims + "\n" if claims else ""))
    plot_table(spec, done, algos, out / "table.png")
    return table + ("\n\n" + claims if claims else "")


def row_averages(spec: TableSpec, cells: dict, algos) -> dict[str, float | None]:
    """Each algorithm's mean over rows, or None where a row is missing or diverged."""
    rows = list(spec.row_settings())
    ok = {key for key, cell in cells.items() if "mean" in cell}
    return {a: float(np.mean([cells[(a, r)]["mean"] for r in rows])) if all((a, r) in ok for r in rows) else None for a in algos}


def check_claims(spec: TableSpec, cells: dict) -> str:
    """State, for each claim `{claim, best, among}`, whether `best` has the highest row average of `among`."""
    lines = []
    for claim in spec.claims:
        among = [a for a in claim["among"] if a in spec.algorithms]
        averages = row_averages(spec, cells, among)
        if any(v is None for v in averages.values()):
            verdict = "undecided (cells missing or diverged: " + ", ".join(a for a, v in averages.items() if v is None) + ")"
        else:
            runner_up = max((a for a in among if a != claim["best"]), key=lambda a: averages[a])
            holds = averages[claim["best"]] > averages[runner_up]
            verdict = (f"{'holds' if holds else 'does not hold'}: {claim['best']} averages {averages[claim['best']]:.1f}, "
                       f"best other {runner_up} {averages[runner_up]:.1f}")  # fmt: skip
        lines.append(f"- {claim['claim']}: {verdict}")
    return ("Paper claims on this run:\n" + "\n".join(lines)) if lines else ""


def format_table(spec: TableSpec, cells: dict, algos: list[str]) -> str:
    """Rows (+ their average), columns algorithms; the best mean per row is bold."""
    ok = {key: cell for key, cell in cells.items() if "mean" in cell}

    def text(a, row):
        if (a, row) in ok:
            return f"{ok[(a, row)]['mean']:.1f} +- {ok[(a, row)]['std']:.1f}"
        return "diverged" if (a, row) in cells else "-"

    averages = row_averages(spec, cells, algos)
    lines = [f"| {spec.env.split('/')[-1]} | " + " | ".join(algos) + " |", "|---" * (len(algos) + 1) + "|"]
    for row in [*spec.row_settings(), "average"]:
        if row == "average":
            means = [averages[a] for a in algos]
            texts = [f"{m:.1f}" if m is not None else "-" for m in means]
        else:
            means = [ok[(a, row)]["mean"] if (a, row) in ok else None for a in algos]
            texts = [text(a, row) for a in algos]
        known = [m for m in means if m is not None]
        best = max(known) if known else None
        texts = [f"**{t}**" if m is not None and m == best else t for t, m in zip(texts, means, strict=True)]
        lines.append(f"| {row} | " + " | ".join(texts) + " |")
    lines.append("")
    lines.append(f"Normalised score (mean +- std over {spec.seeds} seeds) after {spec.steps} updates; suite `{spec.suite}`.")
    return "\n".join(lines)


def plot_table(spec: TableSpec, cells: dict, algos: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(spec.row_settings())
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(algos) * len(rows) / 2), 4))
    width = 0.8 / max(len(algos), 1)
    x = np.arange(len(rows))
    for i, algo in enumerate(algos):
        means = [cells.get((algo, row), {}).get("mean", np.nan) for row in rows]
        stds = [cells.get((algo, row), {}).get("std", 0.0) for row in rows]
        ax.bar(x + (i - (len(algos) - 1) / 2) * width, means, width, yerr=stds, label=algo, capsize=2)
    ax.set_xticks(x, rows, rotation=20 if len(rows) > 4 else 0, fontsize=8)
    ax.set_ylabel("normalised score")
    ax.set_title(f"{spec.name}: {spec.env}")
    ax.legend(fontsize=7, ncol=min(len(algos), 5))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
