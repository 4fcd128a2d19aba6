"""What the continual comparison reports, from each method's performance matrix: the final average on the
sequence, forgetting, retention of the pretraining tasks, trainable parameters and retrieval confusion; the
markdown tables, the figure of the matrices, and L2M's claims checked against them.

A method's `success` is [seeds, evaluations, tasks]: evaluation 0 is before fine-tuning, evaluation i after
the i-th sequence task (the multi-task model has only before and after); tasks are the `pretrain_tasks`
pretraining tasks, then the sequence.
"""

from __future__ import annotations

import numpy as np

from jaxrl.engine.aggregates import all_hold, bootstrap, paired_difference, verdict_from
from jaxrl.engine.reporting import subplots
from jaxrl.protocols.claims import Verdict, markdown, mean_std

NAMES = {
    "l2m": "L2M", "l2m-oracle": "L2M-oracle", "l2p": "L2P", "full-ft": "Full FT",
    "lora": "Single LoRA", "ewc": "EWC", "multitask": "Multi-task (upper bound)",
}  # fmt: skip
KEPT = 0.9  # claim (2): L2M keeps at least this fraction of its pretraining and earlier-task scores
FORGOTTEN = 0.1  # claim (1): full fine-tuning loses at least this much success (absolute)


def metrics(result: dict, pretrain_tasks: int) -> dict:
    """Per-seed metrics [seeds] of one method's result."""
    success = np.asarray(result["success"], np.float64)
    p = pretrain_tasks
    sequence = success[:, :, p:]
    tasks = sequence.shape[-1]
    out = {
        "final": sequence[:, -1].mean(-1),
        "pretrain_before": success[:, 0, :p].mean(-1),
        "pretrain_after": success[:, -1, :p].mean(-1),
    }
    out["retention"] = out["pretrain_after"] / np.maximum(out["pretrain_before"], 1e-9)
    if success.shape[1] == tasks + 1 and tasks > 1:  # evaluated after every task
        # task i is learnt at evaluation i + 1; its best score from then until before the end, vs its final
        best = np.stack([sequence[:, i + 1 : tasks, i].max(-1) for i in range(tasks - 1)], -1)
        final = sequence[:, -1, : tasks - 1]
        out["forgetting"] = (best - final).mean(-1)
        out["earlier_kept"] = final.mean(-1) / np.maximum(best.mean(-1), 1e-9)
    if "claimed" in result:  # the entry each task selected most right after learning it [seeds, tasks]
        selections = np.asarray(result["selections"])[:, p:]  # [seeds, tasks, pool] at the end
        claimed = np.asarray(result["claimed"])
        out["own_entry"] = np.take_along_axis(selections, claimed[:, :, None], -1)[:, :, 0].mean(-1)
        out["distinct_entries"] = np.array([len(set(c)) / len(c) for c in claimed])
    return out


def results_table(results: dict, pretrain_tasks: int) -> str:
    rows = [
        "| method | final avg success (sequence) | forgetting | earlier tasks kept | pretrain before | pretrain after "
        "| retention | trainable params |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        m = metrics(result, pretrain_tasks)
        cell = lambda k, m=m: bootstrap(m[k]).format(2) if k in m else "-"  # noqa: E731
        rows.append(
            f"| {NAMES.get(name, name)} | {cell('final')} | {cell('forgetting')} | {cell('earlier_kept')} "
            f"| {cell('pretrain_before')} | {cell('pretrain_after')} | {cell('retention')} "
            f"| {result['trainable_parameters']:,} |"
        )
    return "\n".join(rows)


def matrix_table(result: dict, pretrain_tasks: int, sequence: list[str]) -> str:
    """Mean success (over seeds) after each task (rows) on each sequence task and the pretraining average."""
    success = np.asarray(result["success"], np.float64).mean(0)
    evaluations = success.shape[0]
    labels = ["before"] + (list(sequence) if evaluations == len(sequence) + 1 else ["after all"])
    header = "| after | " + " | ".join(f"T{i + 1}" for i in range(len(sequence))) + " | pretrain |"
    rows = [header, "|" + "---|" * (len(sequence) + 2)]
    for label, row in zip(labels, success, strict=True):
        cells = " | ".join(f"{v:.2f}" for v in row[pretrain_tasks:])
        rows.append(f"| {label} | {cells} | {row[:pretrain_tasks].mean():.2f} |")
    return "\n".join(rows)


def confusion_table(result: dict, pretrain_tasks: int, sequence: list[str]) -> str:
    """Fraction of each sequence task's windows selecting each pool entry at the end (mean over seeds);
    entries no task selects are left out."""
    selections = np.asarray(result["selections"], np.float64)[:, pretrain_tasks:].mean(0)  # [tasks, pool]
    used = [j for j in range(selections.shape[1]) if selections[:, j].max() > 0.01]
    rows = ["| task | " + " | ".join(f"e{j}" for j in used) + " |", "|" + "---|" * (len(used) + 1)]
    for i, row in enumerate(selections):
        rows.append(f"| T{i + 1} {sequence[i]} | " + " | ".join(f"{row[j]:.2f}" for j in used) + " |")
    return "\n".join(rows)


def claims(results: dict, pretrain_tasks: int) -> list[Verdict]:
    """Each claim whose methods were run, with its verdict from 95% bootstrap intervals over seeds (paired
    across methods: a seed meets the same evaluation episodes in every method), inconclusive when an
    interval holds the threshold or a method it needs was not run."""
    m = {name: metrics(r, pretrain_tasks) for name, r in results.items()}
    ci = lambda name, key: bootstrap(m[name][key])  # noqa: E731
    have = lambda *names: all(n in m for n in names)  # noqa: E731
    out = []
    if have("full-ft") and "forgetting" in m["full-ft"]:
        pre_drop = bootstrap(m["full-ft"]["pretrain_before"] - m["full-ft"]["pretrain_after"])
        forgets = ci("full-ft", "forgetting")
        out.append(Verdict(
            "(1) full fine-tuning forgets the pretraining and earlier tasks",
            all_hold([verdict_from(pre_drop, FORGOTTEN), verdict_from(forgets, FORGOTTEN)]),
            f"pretraining success drop {pre_drop.format(2)} (retention {ci('full-ft', 'retention').format(2)}); "
            f"forgetting of earlier sequence tasks {forgets.format(2)} (both must exceed {FORGOTTEN})",
        ))  # fmt: skip
    if have("l2m") and "forgetting" in m["l2m"]:
        retention, kept = ci("l2m", "retention"), ci("l2m", "earlier_kept")
        out.append(Verdict(
            f"(2) L2M keeps >= {KEPT:.0%} of its pretraining performance and of earlier tasks' scores",
            all_hold([verdict_from(retention, KEPT), verdict_from(kept, KEPT)]),
            f"retention {retention.format(2)}, earlier tasks kept {kept.format(2)} (final / best after learning them)",
        ))  # fmt: skip
    rivals = [n for n in ("l2p", "lora", "ewc") if n in m]
    if have("l2m") and rivals:
        differences = {n: paired_difference(m["l2m"]["final"], m[n]["final"]) for n in rivals}
        verdict = all_hold(verdict_from(d) for d in differences.values())
        out.append(Verdict(
            "(3) L2M's final average beats L2P, single LoRA and EWC",
            verdict if len(rivals) == 3 or verdict is False else None,
            f"L2M {ci('l2m', 'final').format(2)}; L2M minus " + ", ".join(
                f"{NAMES[n]} {d.format(2)}" for n, d in differences.items()),
        ))  # fmt: skip
    if have("l2m") and "own_entry" in m["l2m"]:
        own, distinct = ci("l2m", "own_entry"), mean_std(m["l2m"]["distinct_entries"])
        every_task_its_own = bool(np.all(m["l2m"]["distinct_entries"] == 1.0))
        out.append(Verdict(
            "(4) retrieval picks a task's own entry for most of its states",
            all_hold([verdict_from(own, 0.5), every_task_its_own]),
            f"{own.format(2)} of each task's windows select the entry it claimed when it was learnt; "
            f"{distinct} of tasks claimed an entry no other task claimed",
        ))  # fmt: skip
    if have("l2m", "l2m-oracle"):
        difference = paired_difference(m["l2m-oracle"]["final"], m["l2m"]["final"])
        out.append(Verdict(
            "(5) L2M-oracle >= L2M",
            False if difference.high < 0 else True if difference.low >= 0 else None,
            f"oracle minus L2M final average success {difference.format(2)}",
        ))  # fmt: skip
    return out


def claims_markdown(results: dict, pretrain_tasks: int) -> str:
    return markdown(claims(results, pretrain_tasks), title="")


def plot_matrices(results: dict, pretrain_tasks: int, sequence: list[str], path) -> None:
    fig, axes = subplots(1, len(results), figsize=(2.6 * len(results), 3.2), squeeze=False)
    for ax, (name, result) in zip(axes[0], results.items(), strict=True):
        success = np.asarray(result["success"], np.float64).mean(0)
        matrix = np.concatenate([success[:, :pretrain_tasks].mean(-1, keepdims=True), success[:, pretrain_tasks:]], -1)
        ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        ax.set_title(NAMES.get(name, name), fontsize=9)
        ax.set_xticks(range(len(sequence) + 1), ["P"] + [f"T{i + 1}" for i in range(len(sequence))], fontsize=7)
        labels = ["0"] + ([f"T{i + 1}" for i in range(len(sequence))] if success.shape[0] > 2 else ["all"])
        ax.set_yticks(range(success.shape[0]), labels, fontsize=7)
        for (r, c), v in np.ndenumerate(matrix):
            ax.text(c, r, f"{v:.1f}", ha="center", va="center", fontsize=6, color="w" if v < 0.6 else "k")
    axes[0][0].set_ylabel("after task")
    fig.suptitle("success on the pretraining tasks (P) and each sequence task, after each task", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
