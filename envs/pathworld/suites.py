"""Named splits and task suites of PathWorld, defined in one place.

A split says which layouts, palettes, camera warp and embodiment its variants use, so an experiment can
ask for "unseen layouts" by name; the held-out ones never overlap the train split's. A task suite is a
list of variants (task, layout index, target object, touch order): "pretrain" (40 variants, train
layouts) and "continual" (a Continual-World-like sequence of 10, on held-out layouts).
`suite_params(suite, split)` stacks a suite's params for one `vmap`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from envs.pathworld.world import NUM_OBJECTS, TASKS, WorldParams, world_params

IDENTITY_WARP = (0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class Split:
    layouts: range  # layout seeds
    palettes: range
    warp: tuple[float, float, float, float] = IDENTITY_WARP
    physics: tuple[tuple[str, float], ...] = ()  # scales of the default gain, damping, radius


SPLITS = {
    "train": Split(layouts=range(0, 1000), palettes=range(0, 100)),
    "unseen-layouts": Split(layouts=range(1000, 2000), palettes=range(0, 100)),
    "unseen-palettes": Split(layouts=range(0, 1000), palettes=range(1000, 1100)),
    "camera-warp": Split(layouts=range(0, 1000), palettes=range(0, 100), warp=(0.06, -0.04, 0.15, 1.1)),
    "unseen-dynamics": Split(
        layouts=range(0, 1000), palettes=range(0, 100), physics=(("gain", 0.6), ("damping", 1.6), ("radius", 1.2))
    ),  # fmt: skip
}
DEFAULT_PHYSICS = {"gain": 0.012, "damping": 0.25, "radius": 0.04}


@dataclass(frozen=True)
class Variant:
    task: str
    layout: int  # index into the split's layouts
    target: int = 0
    order: tuple[int, ...] = (0, 1, 2)

    @property
    def name(self) -> str:
        detail = f"order{''.join(map(str, self.order))}" if self.task == "touch" else f"obj{self.target}"
        return f"{self.task}-L{self.layout}-{detail}"


_ORDERS = list(itertools.permutations(range(NUM_OBJECTS)))
SUITES: dict[str, list[Variant]] = {
    # 8 variants per task, each on its own layout, cycling through targets and touch orders
    "pretrain": [
        Variant(task, layout=8 * t + i, target=i % NUM_OBJECTS, order=_ORDERS[i % len(_ORDERS)])
        for t, task in enumerate(TASKS)
        for i in range(8)
    ],  # fmt: skip
    # ten new variants on layouts the pretraining never used (indices past its 40)
    "continual": [
        Variant(TASKS[i % len(TASKS)], layout=100 + i, target=(i + 1) % NUM_OBJECTS, order=_ORDERS[(i + 3) % len(_ORDERS)])
        for i in range(10)
    ],  # fmt: skip
}


def split(name: str) -> Split:
    if name not in SPLITS:
        raise ValueError(f"unknown PathWorld split {name!r}; splits: {', '.join(SPLITS)}")
    return SPLITS[name]


def suite(name: str) -> list[Variant]:
    if name not in SUITES:
        raise ValueError(f"unknown PathWorld task suite {name!r}; suites: {', '.join(SUITES)}")
    return SUITES[name]


def variant_params(variant: Variant, split_name: str = "train", sparse: bool = False, palette: int = 0) -> WorldParams:
    """The params of a variant in a split; `palette` indexes the split's palettes."""
    s = split(split_name)
    if not 0 <= variant.layout < len(s.layouts):
        raise ValueError(f"layout index {variant.layout} is outside split {split_name!r} ({len(s.layouts)} layouts)")
    physics = {k: DEFAULT_PHYSICS[k] * scale for k, scale in s.physics}
    return world_params(variant.task, layout=s.layouts[variant.layout], target=variant.target, order=variant.order,
                        sparse=sparse, palette=s.palettes[palette % len(s.palettes)], warp=s.warp, **physics)  # fmt: skip


def suite_params(name: str, split_name: str = "train", sparse: bool = False) -> WorldParams:
    """Every variant of a suite in a split, stacked on a leading axis (variant i uses palette i)."""
    params = [variant_params(v, split_name, sparse, palette=i) for i, v in enumerate(suite(name))]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *params)
