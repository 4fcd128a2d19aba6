"""HAMSTER comparison results as markdown tables, the paper's claims checked, and a figure of episodes.

`results` is what `hamster.run` returns: per method, success [seeds, splits, episodes] and, for
hierarchical methods, frechet and adherence of the same shape. Means over a split are per seed first
(mean over episodes), then mean ± std over seeds. "Held-out" averages the held-out splits run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxrl.engine.aggregates import all_hold, bootstrap, paired_difference, verdict_from
from jaxrl.engine.reporting import subplots
from jaxrl.protocols.claims import Verdict, markdown, mean_std
from jaxrl.protocols.hamster import HELD_OUT, METHODS, attribution, counterfactual_attribution

NAMES = {
    "hamster": "HAMSTER (lookahead)",
    "hamster-channels": "HAMSTER (channels)",
    "hamster-overlay": "HAMSTER (overlay)",
    "hamster-50": "HAMSTER, 50% demos",
    "hamster-no-off": "HAMSTER, high level without off-domain data",
    "oracle-path": "oracle paths (lookahead)",
    "flat": "flat",
    "flat-50": "flat, 50% demos",
    "monolithic": "monolithic (+ off-domain actions)",
}
MARGIN = 0.05  # what "does not improve" allows: a success gain under 5 points


def held_out(splits) -> list[int]:
    return [i for i, s in enumerate(splits) if s in HELD_OUT]


def per_seed(values, columns) -> np.ndarray:
    """Mean over episodes (and over the given split columns) per seed: [seeds]."""
    return np.asarray(values)[:, columns].mean(axis=(1, 2))


def metric_table(methods: dict, splits, metric: str, names=None) -> str:
    names = names or [m for m in methods if metric in methods[m]]
    ho = held_out(splits)
    header = "| method | " + " | ".join(splits) + (" | held-out |" if ho else " |")
    lines = [header, "|" + "---|" * (len(splits) + 1 + bool(ho))]
    for name in names:
        values = methods[name][metric]
        cells = [mean_std(per_seed(values, [i])) for i in range(len(splits))]
        if ho:
            cells.append(f"**{mean_std(per_seed(values, ho))}**")
        lines.append(f"| {NAMES.get(name, name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def attribution_table(methods: dict, splits) -> str:
    """Thresholds (bad path, did not follow), and, where the oracle path was run, the counterfactual: the
    failed episodes the low level wins from the same start state with the expert's path (the path's
    fault) and those it fails with it too (the low level's)."""
    ho = held_out(splits) or list(range(len(splits)))
    oracle = methods.get("oracle-path")
    lines = ["| method | failed episodes | bad path | did not follow | followed, failed | oracle path wins (path's fault) | "
             "oracle path fails too (low level's) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, r in methods.items():
        if "frechet" not in r:
            continue
        a = attribution(r["success"][:, ho], r["frechet"][:, ho], r["adherence"][:, ho])
        c = counterfactual_attribution(r["success"][:, ho], oracle["success"][:, ho]) if oracle is not None else None
        counterfactual = f"{c['the path']:.2f} | {c['the low level']:.2f}" if c else "- | -"
        lines.append(f"| {NAMES.get(name, name)} | {a['failures']} | {a['bad path']:.2f} | {a['did not follow']:.2f} | "
                     f"{a['followed, failed']:.2f} | {counterfactual} |")  # fmt: skip
    return "\n".join(lines)


def claims(methods: dict, splits) -> list[Verdict]:
    """The verdict of each claim whose methods and splits were run, from 95% bootstrap intervals over the
    seeds (paired across methods: a seed meets the same episodes in every method)."""
    ho = held_out(splits)
    if not ho:
        return []
    success = {m: per_seed(r["success"], ho) for m, r in methods.items()}  # [seeds], paired across methods
    better = lambda a, b: paired_difference(success[a], success[b])  # noqa: E731
    out = []
    if {"hamster", "flat", "monolithic"} <= set(methods):
        d_flat, d_mono = better("hamster", "flat"), better("hamster", "monolithic")
        wins = sum(
            per_seed(methods["hamster"]["success"], [i]).mean()
            > max(per_seed(methods["flat"]["success"], [i]).mean(), per_seed(methods["monolithic"]["success"], [i]).mean())
            for i in ho
        )  # fmt: skip
        out.append(Verdict("1. Hierarchical beats flat and monolithic on the held-out splits",
                    all_hold([verdict_from(d_flat), verdict_from(d_mono)]),
                    f"held-out success {success['hamster'].mean():.2f}; minus flat {d_flat.format(2)}, minus monolithic "
                    f"{d_mono.format(2)}; best of the three on {wins}/{len(ho)} splits"))  # fmt: skip
    if {"hamster", "hamster-no-off", "flat", "monolithic"} <= set(methods):
        path_gain = paired_difference(
            per_seed(methods["hamster-no-off"]["frechet"], ho), per_seed(methods["hamster"]["frechet"], ho)
        )
        gain = better("monolithic", "flat")
        out.append(Verdict("2. Off-domain data improves the high level's paths but not the monolithic policy",
                    all_hold([verdict_from(path_gain), verdict_from(gain, MARGIN, below=True)]),
                    f"held-out Frechet without minus with off-domain data {path_gain.format(3)} (above 0 for the claim); "
                    f"monolithic minus flat success {gain.format(2)} (must stay under +{MARGIN}); hierarchical success "
                    f"with vs without {success['hamster'].mean():.2f} vs {success['hamster-no-off'].mean():.2f}"))  # fmt: skip
    if {"hamster-50", "flat"} <= set(methods):
        d = better("hamster-50", "flat")
        out.append(Verdict("3. Hierarchical with 50% of the demos beats flat with 100%", verdict_from(d),
                    f"held-out success {success['hamster-50'].mean():.2f} vs {success['flat'].mean():.2f}, "
                    f"difference {d.format(2)}"))  # fmt: skip
    if {"hamster-channels", "hamster-overlay"} <= set(methods) and {"layouts", "camera"} <= set(splits):
        i, j = splits.index("layouts"), splits.index("camera")
        drop = {m: per_seed(methods[m]["success"], [i]) - per_seed(methods[m]["success"], [j])
                for m in ("hamster-channels", "hamster-overlay")}  # fmt: skip
        cam = {m: per_seed(methods[m]["success"], [j]).mean() for m in drop}
        d = paired_difference(drop["hamster-overlay"], drop["hamster-channels"])
        out.append(Verdict("4. The separate-channel encoding is more robust to the camera warp than the overlay",
                    verdict_from(d),
                    f"success drop from held-out layouts to + camera warp: channels {drop['hamster-channels'].mean():+.2f} "
                    f"(to {cam['hamster-channels']:.2f}), overlay {drop['hamster-overlay'].mean():+.2f} (to "
                    f"{cam['hamster-overlay']:.2f}); overlay's minus channels' {d.format(2)}"))  # fmt: skip
    if {"hamster", "oracle-path"} <= set(methods):
        # counterfactually: a failure is the plan's when the expert's path wins from the same start state
        c = counterfactual_attribution(methods["hamster"]["success"][:, ho], methods["oracle-path"]["success"][:, ho])
        share = c["the path per seed"][~np.isnan(c["the path per seed"])]
        estimate = bootstrap(share) if share.size else None
        holds = None if estimate is None else verdict_from(estimate, 0.5, below=True)
        out.append(Verdict("5. Most failures come from following or executing the path, not from the plan", holds,
                    f"of {c['failures']} held-out failures, the low level with the expert's path wins from the same "
                    f"start state in {estimate} per seed (the plan's fault; under 0.5 for the claim), fails too in "
                    f"{c['the low level']:.2f}"))  # fmt: skip
    return out


def claims_markdown(methods: dict, splits) -> str:
    return markdown(claims(methods, splits), title="") or "No claim could be checked with the methods and splits run."


def plot_episodes(methods: dict, splits, variants, path: Path, size: int = 64) -> None:
    """A grid: a row per method, a column per split; each cell the first frame of the split's first
    episode (seed 0) with the path the low level followed (white, dots at waypoints; the expert's label for
    action models, dashed) and the executed trajectory (black), green title on success."""
    import jax

    from envs.pathworld.render import render
    from envs.pathworld.world import unpack

    names = list(methods)
    fig, axes = subplots(len(names), len(splits), figsize=(1.9 * len(splits), 1.9 * len(names)), squeeze=False)
    episodes = len(next(iter(variants.values())).layouts)
    for c, split in enumerate(splits):
        p = jax.tree.map(lambda x, c=c: x[c * episodes], _stack(variants))
        for r, name in enumerate(names):
            ex = methods[name]["example"]
            k = c * episodes
            image = np.asarray(render(unpack(ex["first"][k]), p.palette, p.warp, size))
            ax = axes[r, c]
            ax.imshow(image, extent=(0, 1, 0, 1))
            route = ex["path"][k][ex["path"][k][:, 3] > 0.5]
            style = "--" if METHODS[name].high is None else "-"
            ax.plot(route[:, 0], route[:, 1], style, color="white", lw=1.5, marker="o", ms=2.5)
            alive = ex["alive"][k]
            ax.plot(ex["positions"][k][alive, 0], ex["positions"][k][alive, 1], color="black", lw=1.0)
            ok = bool(ex["success"][k])
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_xlim(0, 1), ax.set_ylim(0, 1)
            if r == 0:
                ax.set_title(split, fontsize=8)
            if c == 0:
                ax.set_ylabel(NAMES.get(name, name).replace(" (", "\n("), fontsize=6)
            for spine in ax.spines.values():
                spine.set_color("green" if ok else "red")
                spine.set_linewidth(2)
    fig.suptitle("First frame, followed path (white) and executed trajectory (black); green frame: success", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _stack(variants):
    import jax
    import jax.numpy as jnp

    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *[v.params for v in variants.values()])
