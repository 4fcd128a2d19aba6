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
    from jaxrl.train import TrainConfig

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: experiment file not found")
    try:
        spec = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(spec, dict) or "algo" not in spec:
        raise ConfigError(f"{path}: an experiment is a mapping with at least an 'algo' key")
    spec = dict(spec)
    hyperparameters = spec.pop("agent", None) or {}
    if not isinstance(hyperparameters, dict):
        raise ConfigError(f"{path}: 'agent' must be a mapping of hyperparameters")
    if "hidden_dims" in hyperparameters:
        hyperparameters["hidden_dims"] = tuple(hyperparameters["hidden_dims"])
    try:
        agent = make_agent(spec.pop("algo"), **hyperparameters)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"agent"}
    unknown = sorted(set(spec) - fields)
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r}; allowed: algo, agent, {', '.join(sorted(fields))}")
    if "sweep" in spec:
        spec["sweep"] = tuple(spec["sweep"])
    try:
        return TrainConfig(agent=agent, **spec)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
