"""Sweeps: seeds x a grid of hyperparameters as the members of one vmapped program."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.agents.base import Agent, ConfigError


def parse_sweep(specs: tuple[str, ...] | list[str], agent: Agent) -> dict[str, list[float]]:
    """Parse ["beta=1,3,10", "expectile=0.7,0.9"] into a grid, checking each name against `agent`."""
    grid: dict[str, list[float]] = {}
    leaves = agent.hyperparameters()
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not values.strip():
            raise ConfigError(f"sweep {spec!r} must look like name=v1,v2,...")
        if name in grid:
            raise ConfigError(f"sweep names {name} twice; give all its values once, e.g. {name}=1,3,10")
        if name not in leaves:
            if name in type(agent).__dataclass_fields__:
                raise ConfigError(
                    f"{agent.name}.{name} changes the network structure and cannot be swept inside one program; run one job per value"
                )
            raise ConfigError(f"{agent.name} has no hyperparameter {name!r}; sweepable: {', '.join(sorted(leaves))}")
        try:
            grid[name] = [float(v) for v in values.split(",")]
        except ValueError as e:
            raise ConfigError(f"sweep {spec!r}: values must be numbers ({e})") from None
        agent.replace(**{name: np.asarray(grid[name])}).validate()  # out-of-range values: before any data is loaded
    return grid


def make_members(grid: dict[str, list[float]], seeds: list[int]) -> list[dict]:
    """Every grid point times every seed, seeds varying fastest."""
    names = list(grid)
    return [
        {"seed": seed, **dict(zip(names, point, strict=True))}
        for point in itertools.product(*(grid[n] for n in names))
        for seed in seeds
    ]


def stack_agents(agent: Agent, members: list[dict]) -> Agent:
    """One agent whose float hyperparameters are vectors over members (the vmap axis)."""
    values = {}
    for name, default in agent.hyperparameters().items():
        values[name] = jnp.asarray([m.get(name, default) for m in members], jnp.float32)
    return agent.replace(**values)


def member_keys(members: list[dict]) -> jax.Array:
    """The PRNG key of every member, from its seed: [M, 2]."""
    return jnp.stack([jax.random.PRNGKey(m["seed"]) for m in members])
