"""Paper-style result tables: algorithms x rows, each cell one vmapped program over seeds.

A table spec (YAML, see experiments/tables/) names the environment, the rows (dataset levels, or named
rows of TrainConfig overrides such as a corruption), the columns with their settings (optionally per
row; a column runs the algorithm of its name, or of its `algo:` setting), the seeds, the steps and the
paper claims to check. `run_table` trains every cell, writes `table.md` (the mean of the final
normalised score over seeds with its 95% bootstrap interval; the average and IQM over rows; each claim
judged from intervals), `table.png` and `cells.jsonl` under the output directory, and reuses finished
cells when run again.

Offline-to-online cells also record, per seed, the scores around the switch (`reporting.switch_scores`:
offline, first online, dip, final); their table shows offline -> final and the dip relative to the
offline score, and `curves-<row>.png` plots every column's score across the switch.
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
from jaxrl.engine.aggregates import all_hold, bootstrap, iqm, mean, paired_difference, verdict_from
from jaxrl.engine.evaluation import normalized_score
from jaxrl.engine.reporting import BASELINES, DIP_WINDOW, SWITCH_COLUMNS, baselines_line, subplots, switch_scores
from jaxrl.engine.trainer import TrainingDiverged
from jaxrl.protocols.claims import Verdict, markdown, undecided


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
    # Offline-to-online: the share of the online phase, from the switch, whose lowest evaluation is the dip. A CPU-scale
    # spec whose learning starts late in a short online phase needs more than 10% to see any update's effect.
    dip_window: float = DIP_WINDOW

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
        if not 0.0 < spec.dip_window <= 1.0:
            raise ConfigError(f"{path}: dip_window is a share of the online phase, in (0, 1]; got {spec.dip_window}")
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
    name = settings.pop("algo", algo)
    fields = _merge(_merge(_merge({"env": spec.env, "suite": spec.suite}, spec.common), spec.row_settings()[row]), settings)
    fields = _merge(fields, per_row.get(row, {}))
    # YAML lists are tuples to the configs (network widths are static fields, hashed by jit).
    hyperparameters = {k: tuple(v) if isinstance(v, list) else v for k, v in (fields.pop("agent", {}) or {}).items()}
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    suite_dir = Path(fields["suite"])
    if suite_dir.is_dir():  # a directory of D4RL-layout files: the row's level names the file
        fields["dataset"] = str(suite_dir / f"{fields.get('dataset', row)}.hdf5")
        fields["suite"] = "default"
    run_dir = out / "runs" / _slug(f"{algo}-{row}")
    fields = {"progress": False, "seeds": spec.seeds, "steps": spec.steps, **fields}  # a column may set its own steps
    return TrainConfig(agent=make_agent(name, **hyperparameters), run_dir=str(run_dir), **fields)


def _slug(name: str) -> str:
    return name.replace(" ", "_").replace("/", "_")


def _metric(final_rows) -> str:
    return "normalized_score" if final_rows and "normalized_score" in final_rows[0] else "eval_return"


def _metric_rows(cfg) -> list[dict]:
    """The metrics rows a cell's run wrote (every chunk's, with its evaluations)."""
    path = Path(cfg.run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _digest(cfg) -> str:
    """Hash of everything that decides a cell's result (not where it is written or how it reports)."""
    # (`tensorboard` is hashed as it always was, so the cells of committed tables keep their digests)
    ignored = ("run_dir", "progress", "overwrite", "resume", "wandb")
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ignored}
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
            same_dip = "switch" not in cell or cell.get("dip_window", DIP_WINDOW) == spec.dip_window
            if key in configs and cell.get("config") == _digest(configs[key]) and same_dip:
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
        if cfg.resolved_regime == "offline-to-online":
            rows = _metric_rows(cfg)
            switch = switch_scores(rows, _metric(result.final_rows), cfg.steps, cfg.online_steps, spec.dip_window)
            cell["switch"] = {c: [switch[m][c] for m in sorted(switch)] for c in SWITCH_COLUMNS}
            cell["dip_window"] = spec.dip_window
        done[(algo, row)] = cell
        with cells_path.open("a") as f:
            f.write(json.dumps(cell) + "\n")
        log(f"{algo:>8} {row:>20}: {cell['mean']:6.1f} +- {cell['std']:4.1f}  ({cell['seconds']:.0f} s)")
    table = format_table(spec, done, algos)
    baselines = _baselines(spec)
    table += f"\n{baselines}" if baselines else ""
    claims = check_claims(spec, done)
    (out / "table.md").write_text(table + "\n" + ("\n" + claims + "\n" if claims else ""))
    plot_table(spec, done, algos, out / "table.png")
    if any("switch" in cell for cell in done.values()):
        for row in spec.row_settings():
            plot_switch_curves(spec, row, {a: configs[(a, row)] for a in algos}, out / f"curves-{_slug(row)}.png")
    return table + ("\n\n" + claims if claims else "")


def row_averages(spec: TableSpec, cells: dict, algos) -> dict[str, float | None]:
    """Each algorithm's mean over rows, or None where a row is missing or diverged."""
    rows = list(spec.row_settings())
    ok = {key for key, cell in cells.items() if "mean" in cell}
    return {a: float(np.mean([cells[(a, r)]["mean"] for r in rows])) if all((a, r) in ok for r in rows) else None for a in algos}


def score_matrix(spec: TableSpec, cells: dict, algo: str) -> np.ndarray | None:
    """The algorithm's final scores [seeds, rows] (None where a row is missing or diverged). Seeds are
    paired across algorithms: seed i of every column met the same evaluation episodes."""
    rows = [cells.get((algo, r), {}) for r in spec.row_settings()]
    if not all("scores" in r for r in rows):
        return None
    return np.stack([np.asarray(r["scores"], np.float64) for r in rows], axis=1)


def _dips(spec: TableSpec, cells: dict, algo: str) -> np.ndarray | None:
    """The seeds' dips relative to their offline scores (dip - offline) [seeds, rows]; None if a cell has none."""
    rows = [cells.get((algo, r), {}).get("switch") for r in spec.row_settings()]
    if any(r is None for r in rows):
        return None
    return np.stack([np.asarray(r["dip"], np.float64) - np.asarray(r["offline"], np.float64) for r in rows], axis=1)


def _missing(matrices: dict) -> list[str]:
    return [a for a, v in matrices.items() if v is None]


def _verdict(spec: TableSpec, cells: dict, claim: dict) -> Verdict:
    """One claim's verdict, from 95% stratified bootstrap intervals over the paired seeds (and the rows),
    never from means alone: it holds when the interval of the difference the claim is about lies on its
    side of 0, fails when it lies on the other, and is inconclusive when it contains 0. Kinds:
    {best, among}: `best` scores above the runner-up (by row average);
    {beats, each_of}: it scores above each of theirs;
    {above_baselines}: each named algorithm's row average is above the suite's zero-action and random scores;
    {margin_grows, over}: its lead over `over` grows from each row to the next (e.g. ever less real data);
    {no_dip}: in every row the dip (score after the switch minus before, per seed) stays above minus the
    offline scores' std over seeds (fails when a row's dip lies below that for sure);
    {smaller_dip, than}: the first's dip is smaller than the second's."""
    text = claim["claim"]
    if "above_baselines" in claim:
        algos = [a for a in claim["above_baselines"] if a in spec.algorithms]
        matrices, floors = {a: score_matrix(spec, cells, a) for a in algos}, _baseline_scores(spec)
        if not floors:
            return Verdict(text, None, "the suite records no zero-action or random return")
        if _missing(matrices):
            return undecided(text, _missing(matrices))
        floor = max(floors.values())
        estimates = {a: bootstrap(m) for a, m in matrices.items()}
        return Verdict(text, all_hold([verdict_from(e, floor) for e in estimates.values()]),
                       ", ".join(f"{a} {e}" for a, e in estimates.items()) + "; baselines "
                       + ", ".join(f"{k} {v:.1f}" for k, v in floors.items()))  # fmt: skip
    if "beats" in claim:
        algo, others = claim["beats"], [a for a in claim["each_of"] if a in spec.algorithms]
        matrices = {a: score_matrix(spec, cells, a) for a in [algo, *others]}
        if _missing(matrices):
            return undecided(text, _missing(matrices))
        differences = {a: paired_difference(matrices[algo], matrices[a]) for a in others}
        return Verdict(text, all_hold([verdict_from(d) for d in differences.values()]),
                       f"{algo} averages {matrices[algo].mean():.1f}; " + ", ".join(
                           f"{a} {matrices[a].mean():.1f} (difference {d})" for a, d in differences.items()))  # fmt: skip
    if "margin_grows" in claim:
        algo, other, rows = claim["margin_grows"], claim["over"], list(spec.row_settings())
        matrices = {a: score_matrix(spec, cells, a) for a in (algo, other)}
        if _missing(matrices):
            return undecided(text, _missing(matrices))
        margins = matrices[algo] - matrices[other]  # [seeds, rows]
        growth = [paired_difference(margins[:, r + 1], margins[:, r]) for r in range(len(rows) - 1)]
        return Verdict(text, all_hold([verdict_from(g) for g in growth]),
                       f"{algo} - {other}: " + ", ".join(f"{r} {m:+.1f}" for r, m in zip(rows, margins.mean(0), strict=True))
                       + "; growth " + ", ".join(str(g) for g in growth))  # fmt: skip
    if "no_dip" in claim:
        algo = claim["no_dip"]
        dips = _dips(spec, cells, algo)
        if dips is None:
            return Verdict(text, None, f"{algo} has no offline-to-online cell in every row")
        rows = list(spec.row_settings())
        offline_std = [float(np.std(cells[(algo, r)]["switch"]["offline"])) for r in rows]
        estimates = [bootstrap(dips[:, r]) for r in range(len(rows))]
        parts = [False if e.high < -s else True if e.low >= -s else None for e, s in zip(estimates, offline_std, strict=True)]
        drops = [f"{r} {e} (offline std {s:.1f})" for r, e, s in zip(rows, estimates, offline_std, strict=True)]
        return Verdict(text, all_hold(parts), f"{algo}'s dip relative to its offline score: " + ", ".join(drops))
    if "smaller_dip" in claim:
        first, second = claim["smaller_dip"], claim["than"]
        dips = {a: _dips(spec, cells, a) for a in (first, second)}
        missing = [a for a, d in dips.items() if d is None]
        if missing:
            return Verdict(text, None, f"no offline-to-online cells for {', '.join(missing)}")
        # A dip is negative: the larger value is the smaller dip.
        difference = paired_difference(dips[first], dips[second])
        return Verdict(text, verdict_from(difference),
                       f"mean dip {first} {dips[first].mean():+.1f}, {second} {dips[second].mean():+.1f}; difference {difference}")  # fmt: skip
    among = [a for a in claim["among"] if a in spec.algorithms]
    matrices = {a: score_matrix(spec, cells, a) for a in among}
    if _missing(matrices):
        return undecided(text, _missing(matrices))
    best = claim["best"]
    runner_up = max((a for a in among if a != best), key=lambda a: matrices[a].mean())
    difference = paired_difference(matrices[best], matrices[runner_up])
    return Verdict(text, verdict_from(difference),
                   f"{best} averages {matrices[best].mean():.1f}, best other {runner_up} {matrices[runner_up].mean():.1f}; "
                   f"difference {difference}")  # fmt: skip


def check_claims(spec: TableSpec, cells: dict) -> str:
    """State, for each claim of the spec, whether it holds on these cells, with the numbers."""
    return markdown([_verdict(spec, cells, claim) for claim in spec.claims])


def _suite_info(spec: TableSpec) -> dict:
    """The suite.json of the table's suite ({} for D4RL files or a suite not generated)."""
    from jaxrl.protocols.suite import suite_dir

    directory = (
        Path(spec.suite) if Path(spec.suite).is_dir() else suite_dir(spec.env, spec.suite, spec.common.get("suite_seed", 0))
    )
    info = directory / "suite.json"
    return json.loads(info.read_text()) if info.exists() else {}


def _baselines(spec: TableSpec) -> str:
    """The zero-action and random returns the table's suite recorded, as a line to print under the table."""
    meta = _suite_info(spec)
    return baselines_line(meta, (meta["ref_min_score"], meta["ref_max_score"])) if "ref_min_score" in meta else ""


def _baseline_scores(spec: TableSpec) -> dict[str, float]:
    """The suite's zero-action and random returns, normalised as the table's scores are."""
    meta = _suite_info(spec)
    if "ref_min_score" not in meta:
        return {}
    refs = meta["ref_min_score"], meta["ref_max_score"]
    return {label: float(normalized_score(meta[key], *refs)) for key, label in BASELINES.items() if key in meta}


def format_table(spec: TableSpec, cells: dict, algos: list[str]) -> str:
    """Rows (+ their average), columns algorithms; the best mean per row is bold."""
    ok = {key: cell for key, cell in cells.items() if "mean" in cell}

    def text(a, row):
        if (a, row) not in ok:
            return "diverged" if (a, row) in cells else "-"
        cell = ok[(a, row)]
        final = str(bootstrap(cell["scores"]))
        if "switch" not in cell:
            return final
        offline = np.asarray(cell["switch"]["offline"])
        dip = np.asarray(cell["switch"]["dip"]) - offline
        return f"{bootstrap(offline)} -> {final} (dip {bootstrap(dip)})"

    matrices = {a: score_matrix(spec, cells, a) for a in algos}
    lines = [f"| {spec.env.split('/')[-1]} | " + " | ".join(algos) + " |", "|---" * (len(algos) + 1) + "|"]
    for row in [*spec.row_settings(), "average", "IQM"]:
        if row in ("average", "IQM"):
            aggregate = iqm if row == "IQM" else mean
            means = [aggregate(m) if m is not None else None for m in matrices.values()]
            texts = [str(bootstrap(m, aggregate)) if m is not None else "-" for m in matrices.values()]
        else:
            means = [ok[(a, row)]["mean"] if (a, row) in ok else None for a in algos]
            texts = [text(a, row) for a in algos]
        known = [m for m in means if m is not None]
        best = max(known) if known else None
        texts = [f"**{t}**" if m is not None and m == best else t for t, m in zip(texts, means, strict=True)]
        lines.append(f"| {row} | " + " | ".join(texts) + " |")
    lines.append("")
    lines.append(
        f"Normalised score after {spec.steps} updates, suite `{spec.suite}`: mean over {spec.seeds} seeds [95% stratified "
        "bootstrap interval]; average and IQM (interquartile mean) pool every row and seed. Seed i of every column "
        "met the same evaluation episodes, so the claims compare paired seeds."
    )
    if any("switch" in cell for cell in ok.values()):
        online = spec.common.get("online_steps", "the")
        lines.append(
            f"Offline-to-online cells: offline score -> final score after {online} online env steps; the dip is the lowest "
            f"score in the first {spec.dip_window:.0%} of the online phase minus the offline score. The average row "
            "averages final scores."
        )
    return "\n".join(lines)


def plot_table(spec: TableSpec, cells: dict, algos: list[str], path: Path) -> None:
    rows = list(spec.row_settings())
    fig, ax = subplots(figsize=(max(6, 1.2 * len(algos) * len(rows) / 2), 4))
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


def plot_switch_curves(spec: TableSpec, row: str, configs: dict, path: Path) -> None:
    """Every column's mean score over seeds in one row, against steps relative to the switch (offline
    updates before 0, online env steps after; a column without an offline phase starts at 0)."""
    fig, ax = subplots(figsize=(7, 4))
    for algo, cfg in configs.items():
        if not (Path(cfg.run_dir) / "metrics.jsonl").exists():
            continue
        rows = _metric_rows(cfg)
        metric = "normalized_score" if any("normalized_score" in r for r in rows) else "eval_return"
        switch = cfg.steps if cfg.resolved_regime == "offline-to-online" else 0
        by_step: dict[int, list[float]] = {}
        for r in rows:
            if r.get(metric) is not None:
                by_step.setdefault(r["step"] - switch, []).append(r[metric])
        steps = sorted(by_step)
        ax.plot(steps, [np.mean(by_step[s]) for s in steps], label=algo, marker=".", markersize=3)
    ax.axvline(0, color="gray", linestyle="--", linewidth=1, label="offline -> online")
    ax.set_xlabel("steps from the switch (offline: updates, online: env steps)")
    ax.set_ylabel("normalised score")
    ax.set_title(f"{spec.name}: {row}")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
