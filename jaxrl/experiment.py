"""Declarative experiment specs: a YAML file of `TrainConfig` fields.

    algo: iql
    agent: {hidden_dims: [128, 128], beta: 3.0}
    dataset: medium-replay
    seeds: 5

Command-line flags given after `--config FILE` override the file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from jaxrl.agents import ConfigError, make_agent


def load_experiment(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: experiment file not found")
    try:
        spec = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    return config_from_mapping(spec, path)


def config_from_mapping(spec, source: str | Path):
    """A `TrainConfig` from {algo, agent: {...}, <TrainConfig fields>}: an experiment spec, or the
    config.json a run stores (JSON lists become the tuples the fields hold). Errors name `source`."""
    from jaxrl.train import TrainConfig

    if not isinstance(spec, dict) or "algo" not in spec:
        raise ConfigError(f"{source}: an experiment is a mapping with at least an 'algo' key")
    spec = dict(spec)
    hyperparameters = spec.pop("agent", None) or {}
    if not isinstance(hyperparameters, dict):
        raise ConfigError(f"{source}: 'agent' must be a mapping of hyperparameters")
    hyperparameters = {k: tuple(v) if isinstance(v, list) else v for k, v in hyperparameters.items()}
    try:
        agent = make_agent(spec.pop("algo"), **hyperparameters)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"agent"}
    unknown = sorted(set(spec) - fields)
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}; allowed: algo, agent, {', '.join(sorted(fields))}")
    if "sweep" in spec:
        spec["sweep"] = tuple(spec["sweep"])
    try:
        return TrainConfig(agent=agent, **spec)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
