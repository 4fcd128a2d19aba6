"""Draw PathWorld tasks with their expert paths: one row per task, one column per variant.

python scripts/pathworld_gallery.py                      # experiments/results/pathworld/gallery.png
python scripts/pathworld_gallery.py --split camera-warp --size 32 --out warp.png

Each panel is the rendered first observation of an episode (the split's layout, palette and camera), the
expert's labelled path over it (white: gripper open, black: closed; dots are waypoints) and the
trajectory the expert then drove (dashed), with whether it succeeded.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from envs.pathworld import render, suites  # noqa: E402
from envs.pathworld.expert import expert_action, expert_path  # noqa: E402
from envs.pathworld.world import TASKS, PathWorldCore, state_vector, unpack  # noqa: E402

CORE = PathWorldCore()


def episode(params, key, steps=150):
    """(first state observation, expert path, agent positions, success) of one expert episode."""
    k_reset, k_run = jax.random.split(key)
    state = CORE.reset_state(k_reset, params)
    first = state_vector(state, params)

    def step(carry, key):
        state, done = carry
        action = expert_action(params, state_vector(state, params), key)
        new, _, success = CORE.step_state(state, action, params)
        new = jax.tree.map(lambda a, b: jnp.where(done, a, b), state, new)  # freeze once done
        return (new, done | success), new.pos

    (_, done), positions = jax.lax.scan(step, (state, jnp.zeros((), bool)), jax.random.split(k_run, steps))
    return first, expert_path(params, first), positions, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="train", help=f"one of {', '.join(suites.SPLITS)}")
    parser.add_argument("--suite", default="pretrain", help=f"one of {', '.join(suites.SUITES)}")
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("--size", type=int, default=64, choices=render.IMAGE_SIZES)
    parser.add_argument("--out", default="experiments/results/pathworld/gallery.png")
    args = parser.parse_args()
    try:
        variants = suites.suite(args.suite)
        suites.split(args.split)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    run = jax.jit(episode)
    fig, axes = plt.subplots(len(TASKS), args.columns, figsize=(2.2 * args.columns, 2.3 * len(TASKS)), squeeze=False)
    for row, task in enumerate(TASKS):
        chosen = [(i, v) for i, v in enumerate(variants) if v.task == task][: args.columns]
        for col in range(args.columns):
            ax = axes[row, col]
            ax.axis("off")
            if col >= len(chosen):
                continue
            i, variant = chosen[col]
            params = suites.variant_params(variant, args.split, palette=i)
            first, (waypoints, grip, count), positions, done = run(params, jax.random.PRNGKey(i))
            image = render.render(unpack(first), params.palette, params.warp, args.size, params.radius)
            ax.imshow(np.asarray(image), extent=(0, args.size, args.size, 0), interpolation="nearest")
            to_px = jax.vmap(render.world_pixel, in_axes=(0, None, None))
            traj = np.asarray(to_px(positions, args.size, params.warp))[:, ::-1] + 0.5
            ax.plot(traj[:, 0], traj[:, 1], "--", color="#00e5ff", lw=1)
            path = np.asarray(to_px(waypoints[: int(count)], args.size, params.warp))[:, ::-1] + 0.5
            closed = np.asarray(grip[: int(count)])
            for k in range(len(path) - 1):
                ax.plot(path[k : k + 2, 0], path[k : k + 2, 1], "-", color="black" if closed[k] else "white", lw=1.6)
            ax.scatter(
                path[:, 0], path[:, 1], s=10, c=["black" if g else "white" for g in closed], edgecolors="k", lw=0.4, zorder=3
            )
            ax.set_title(f"{variant.name}\n{'success' if bool(done) else 'failed'}", fontsize=7)
    fig.suptitle(f"PathWorld {args.suite} suite, split {args.split}: expert paths (solid) and trajectories (dashed)", fontsize=9)
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
