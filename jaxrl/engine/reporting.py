"""What a run leaves behind: metrics as JSONL and CSV (and optionally TensorBoard event files and
Weights & Biases runs), a learning-curve figure, a results table."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from jaxrl.engine.aggregates import bootstrap
from jaxrl.engine.evaluation import normalized_score


class MetricsWriter:
    """Appends one row per sweep member per chunk to metrics.jsonl and metrics.csv, and passes the rows on
    to `sinks` (a `TensorBoardWriter`, a `WandbWriter`: anything with `write(rows)` and `close()`). Without
    `write_files` (a multi-process run's other processes) it keeps the rows in memory only."""

    def __init__(self, run_dir: Path, resume_step: int | None = None, sinks: tuple = (), write_files: bool = True):
        self.jsonl = run_dir / "metrics.jsonl"
        self.csv = run_dir / "metrics.csv"
        rows = self.read(run_dir) if resume_step is not None else []
        # Rows logged after the checkpoint we resume from are recomputed by the resumed run.
        rows = [r for r in rows if resume_step is not None and r["step"] <= resume_step]
        self.rows, self.write_files = rows, write_files
        self._rewrite()
        self.sinks = tuple(sinks)

    @staticmethod
    def read(run_dir: Path) -> list[dict]:
        path = Path(run_dir) / "metrics.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def write(self, rows: list[dict]) -> None:
        self.rows.extend(rows)
        if not self.write_files:
            return
        with self.jsonl.open("a") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        self._write_csv()
        for sink in self.sinks:
            sink.write(rows)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()

    def _rewrite(self) -> None:
        if not self.write_files:
            return
        # Atomically: another process of the run may be reading it (to resume) at the same time.
        tmp = self.jsonl.with_name(self.jsonl.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in self.rows))
        os.replace(tmp, self.jsonl)
        self._write_csv()

    def _write_csv(self) -> None:
        columns = list(dict.fromkeys(k for row in self.rows for k in row))
        with self.csv.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)


def member_name(index: int, member: dict) -> str:
    """e.g. "3-seed1-beta=10": the member's index, then its seed and hyperparameters."""
    return "-".join([str(index), *(f"{k}{v:g}" if k == "seed" else f"{k}={v:g}" for k, v in member.items())])


EVAL_KEYS = ("eval_return", "normalized_score")


def scalars(row: dict, member: dict) -> dict[str, float]:
    """A metrics row as a logger shows it: `eval/<metric>` for scores, `train/<metric>` for the rest; the
    labels (step, member, phase, the member's seed and hyperparameters) are left out."""
    labels = {"step", "member", *member}
    return {
        (f"eval/{key}" if key in EVAL_KEYS else f"train/{key}"): value
        for key, value in row.items()
        if key not in labels and isinstance(value, (int, float))
    }


class TensorBoardWriter:
    """TensorBoard event files under `directory`, one run per sweep member (so TensorBoard overlays the
    members' curves), tags `train/<metric>` and `eval/<metric>`. Written by tensorboardX: no TensorFlow.

    `purge_step`: events of an earlier attempt at this step or later are hidden, so a resumed run's
    recomputed chunks replace those logged after its checkpoint instead of doubling them.
    """

    def __init__(self, directory: Path, members: list[dict], purge_step: int | None = 0):
        from tensorboardX import SummaryWriter

        self.members = members
        # tensorboardX names files by the second; a unique suffix keeps a resumed run from overwriting
        # (opening "wb") the file an earlier attempt wrote in the same second.
        suffix = f".{os.getpid()}.{time.time_ns()}"
        self._writers = [
            SummaryWriter(str(Path(directory) / member_name(i, m)), purge_step=purge_step, filename_suffix=suffix)
            for i, m in enumerate(members)
        ]

    def write(self, rows: list[dict]) -> None:
        for row in rows:
            for tag, value in scalars(row, self.members[row["member"]]).items():
                self._writers[row["member"]].add_scalar(tag, value, row["step"])
        for writer in self._writers:
            writer.flush()

    def close(self) -> None:
        for writer in self._writers:
            writer.close()


WANDB_MODES = ("off", "offline", "online")


class WandbWriter:
    """Weights & Biases runs, one per sweep member, grouped under the run directory's name, with the rows
    TensorBoard gets (`train/<metric>`, `eval/<metric>`) against the run's `step`. `mode` "offline" needs
    no network and no account: the runs land in RUN_DIR/wandb/offline-run-*/ (`wandb sync` uploads them
    later); "online" logs as it goes (after `wandb login`). The project is $WANDB_PROJECT, else "jaxrl".

    Each member's run id comes from the run directory and the member, so a resumed run logs to the same
    W&B run; W&B cannot hide what was logged after the checkpoint (as TensorBoard's purge does), so the
    steps a resumed run recomputes appear twice there (metrics.jsonl keeps them once).
    """

    def __init__(self, run_dir: Path, members: list[dict], mode: str, resume: bool = False):
        if mode not in WANDB_MODES[1:]:
            raise ValueError(f"wandb mode must be one of {WANDB_MODES[1:]}, got {mode!r}")
        try:
            import wandb
        except ImportError as err:
            raise ImportError("--wandb needs Weights & Biases: pip install 'jaxrl[wandb]' (or pip install wandb)") from err

        self.members, run_dir = members, Path(run_dir).resolve()
        digest = hashlib.sha256(str(run_dir).encode()).hexdigest()[:10]
        self._runs = []
        for i, member in enumerate(members):
            run = wandb.init(
                project=os.environ.get("WANDB_PROJECT", "jaxrl"),
                group=run_dir.name,
                name=member_name(i, member),
                id=f"{digest}-{i}",
                config={"member": i, **member},
                dir=str(run_dir),
                mode=mode,
                resume="allow" if resume else None,
                reinit="create_new",  # one process holds every member's run at once
            )
            run.define_metric("*", step_metric="step")
            self._runs.append(run)

    def write(self, rows: list[dict]) -> None:
        for row in rows:
            self._runs[row["member"]].log({"step": row["step"], **scalars(row, self.members[row["member"]])})

    def close(self) -> None:
        for run in self._runs:
            run.finish()


def _group_key(row: dict, keys: list[str]) -> str:
    return ", ".join(f"{k}={row[k]:g}" if isinstance(row[k], float) else f"{k}={row[k]}" for k in keys) or "all"


def subplots(*grid, figsize=None, **kwargs):
    """(figure, axes) as `plt.subplots` gives them, drawn off screen without pyplot: a library that
    switched pyplot's backend (to Agg) would stop the figures of the notebook or program calling it from
    showing. Save with `fig.savefig`; nothing needs closing."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid, **kwargs)


def plot_learning_curves(
    rows: list[dict], path: Path, metric: str, sweep_keys: list[str], title: str = "", marks: list[int] = ()
) -> Path | None:
    """Mean +- std over seeds of `metric` against step, one line per sweep setting; a dashed vertical
    line at every step in `marks` (where a run switches phase, e.g. offline to online)."""
    curves: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        value = row.get(metric)
        if value is not None and math.isfinite(value):
            curves[_group_key(row, sweep_keys)][row["step"]].append(value)
    if not curves:
        return None
    fig, ax = subplots(figsize=(6, 4))
    for label, by_step in sorted(curves.items()):
        steps = np.array(sorted(by_step))
        values = [np.asarray(by_step[s]) for s in steps]
        mean = np.array([v.mean() for v in values])
        std = np.array([v.std() for v in values])
        ax.plot(steps, mean, label=label)
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    for i, step in enumerate(marks):
        ax.axvline(step, color="gray", linestyle="--", linewidth=1, label="offline -> online" if i == 0 else None)
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.set_title(title)
    if len(curves) > 1 or marks:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


# Baselines a generated suite records (`jaxrl.protocols.suite`): a result counts only above them.
BASELINES = {"zero_action_return": "zero action", "random_return": "uniform random"}


def baselines_line(metadata: dict, ref_scores: tuple[float, float] | None) -> str:
    """The line naming a dataset's recorded baselines and their scores ("" when its metadata records none)."""
    parts = []
    for key, label in BASELINES.items():
        if key in metadata:
            value = float(metadata[key])
            normalised = f" (normalised {float(normalized_score(value, *ref_scores)):.1f})" if ref_scores else ""
            parts.append(f"{label} {value:.1f}{normalised}")
    return f"Baselines of this env (return, from the suite's metadata): {', '.join(parts)}." if parts else ""


def results_table(final_rows: list[dict], sweep_keys: list[str], metric: str) -> str:
    """Markdown: one line per member, then for every sweep setting the mean over seeds with its 95%
    bootstrap interval, and the std."""
    lines = ["| member | seed | " + " | ".join(sweep_keys) + f"{' | ' if sweep_keys else ''}eval_return | {metric} |"]
    lines.append("|" + "---|" * (4 + len(sweep_keys)))
    groups: dict[str, list[float]] = defaultdict(list)
    for row in final_rows:
        hp = " | ".join(f"{row[k]:g}" for k in sweep_keys)
        value = row.get(metric, float("nan"))
        lines.append(
            f"| {row['member']} | {row['seed']} | {hp}{' | ' if sweep_keys else ''}{row['eval_return']:.1f} | {value:.1f} |"
        )
        groups[_group_key(row, sweep_keys)].append(value)
    lines.append("")
    lines.append(f"| setting | seeds | {metric}: mean [95% bootstrap interval] | std |")
    lines.append("|---|---|---|---|")
    for label, values in groups.items():
        v = np.asarray(values)
        lines.append(f"| {label} | {len(v)} | {bootstrap(v)} | {v.std():.1f} |")
    return "\n".join(lines)


SWITCH_COLUMNS = ("offline", "first online", "dip", "final")


DIP_WINDOW = 0.1  # the share of the online phase, from the switch, in which the dip is looked for


def switch_scores(
    rows: list[dict], metric: str, switch: int, online_steps: int, window: float = DIP_WINDOW
) -> dict[int, dict[str, float]]:
    """Per member, around a switch from offline to online at step `switch`:
    - offline: the score at the switch (the offline phase's last evaluation, the policy the online phase starts from);
    - first online: the first evaluation of the online phase;
    - dip: the lowest score in the online phase's first `window` share of steps (the first online evaluation if none
      is that early);
    - final: the last evaluation."""
    by_member: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for row in rows:
        if row.get(metric) is not None:
            by_member[row["member"]].append((row["step"], row[metric]))
    out = {}
    for member, points in by_member.items():
        points.sort()
        at_switch = [v for s, v in points if s == switch]
        online = [(s, v) for s, v in points if s > switch]
        if not at_switch or not online:
            continue
        early = [v for s, v in online if s <= switch + window * online_steps] or [online[0][1]]
        out[member] = {"offline": at_switch[-1], "first online": online[0][1], "dip": min(early), "final": online[-1][1]}
    return out


def switch_table(rows: list[dict], sweep_keys: list[str], metric: str, switch: int, online_steps: int) -> str:
    """Markdown: the scores of `switch_scores` per member, then mean +- std per sweep setting."""
    scores = switch_scores(rows, metric, switch, online_steps)
    members = {row["member"]: row for row in rows}
    head = " | ".join(SWITCH_COLUMNS)
    lines = [
        f"{metric} around the switch to online at step {switch} (dip: lowest in the first {DIP_WINDOW:.0%} of the online phase)",
        "",
    ]
    lines += [f"| member | seed | {head} |", "|" + "---|" * (2 + len(SWITCH_COLUMNS))]
    groups: dict[str, list[dict]] = defaultdict(list)
    for m, s in sorted(scores.items()):
        lines.append(f"| {m} | {members[m]['seed']} | " + " | ".join(f"{s[c]:.1f}" for c in SWITCH_COLUMNS) + " |")
        groups[_group_key(members[m], sweep_keys)].append(s)
    lines += ["", f"| setting | seeds | {head} |", "|" + "---|" * (2 + len(SWITCH_COLUMNS))]
    for label, group in groups.items():
        cells = [np.asarray([s[c] for s in group]) for c in SWITCH_COLUMNS]
        lines.append(f"| {label} | {len(group)} | " + " | ".join(f"{v.mean():.1f} +- {v.std():.1f}" for v in cells) + " |")
    return "\n".join(lines)
