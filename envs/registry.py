"""Environment registry: `envs.make("gymnax/Pendulum-v1")`, `envs.make("brax/hopper")` (MuJoCo physics, mjx), `envs.make("brax/hopper", backend="spring")`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable

from envs.core import Env
from envs.wrappers import AutoReset, EpisodeStats, JointNoise, RescaleAction, TimeLimit


def _gymnax(gymnax_id: str) -> Callable[..., Env]:
    def build(name: str, **kwargs) -> Env:
        from envs.gymnax_env import GymnaxEnv

        if kwargs:
            raise TypeError(f"{name} takes no options, got {sorted(kwargs)}")
        return GymnaxEnv(gymnax_id, name)

    return build


def _brax(brax_name: str) -> Callable[..., Env]:
    def build(name: str, **kwargs) -> Env:
        from envs.brax_env import BraxEnv

        return BraxEnv(brax_name, name, **kwargs)

    return build


def _pathworld(task: str) -> Callable[..., Env]:
    def build(name: str, **kwargs) -> Env:
        from envs.pathworld import PathWorld

        return PathWorld(name, task=task, **kwargs)

    return build


REGISTRY: dict[str, Callable[..., Env]] = {
    "gymnax/Pendulum-v1": _gymnax("Pendulum-v1"),
    "gymnax/MountainCarContinuous-v0": _gymnax("MountainCarContinuous-v0"),
    "brax/hopper": _brax("hopper"),
    "brax/halfcheetah": _brax("halfcheetah"),
    "brax/walker2d": _brax("walker2d"),
    "brax/ant": _brax("ant"),
    **{f"pathworld/{task}": _pathworld(task) for task in ("reach", "push", "pick-place", "touch", "avoid")},
}


class UnknownEnvError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def registered() -> list[str]:
    return sorted(REGISTRY)


def make(name: str, wrappers: bool = True, dynamics: Mapping[str, Any] | None = None, **kwargs) -> Env:
    """Build a registered environment.

    With `wrappers=True` (the default) actions are in [-1, 1], can carry joint noise, episodes are
    truncated at the spec's time limit, episode statistics are reported in `info`, and finished
    episodes reset themselves. `dynamics` ({"gravity": 2.0, "joint_noise": 0.1}, see
    `Env.dynamics_params`) makes shifted dynamics the env's defaults: a "sim" of the plain env.
    """
    if name not in REGISTRY:
        raise UnknownEnvError(f"unknown environment {name!r}; registered environments: {', '.join(registered())}")
    env = REGISTRY[name](name, **kwargs)
    if wrappers:
        env = AutoReset(EpisodeStats(TimeLimit(JointNoise(RescaleAction(env)))))
    if dynamics:
        env.set_default_params(env.dynamics_params(**dynamics))
    return env
