"""Agents by name."""

from jaxrl.agents.awac import AWAC
from jaxrl.agents.base import Agent, ConfigError
from jaxrl.agents.bc import BC
from jaxrl.agents.calql import CalQL
from jaxrl.agents.cql import CQL
from jaxrl.agents.darc import DARC
from jaxrl.agents.dt import DT
from jaxrl.agents.ensembles import EDAC, SACN
from jaxrl.agents.h2o import H2O
from jaxrl.agents.iql import IQL
from jaxrl.agents.ppo import PPO
from jaxrl.agents.riql import RIQL
from jaxrl.agents.ro2o import RO2O
from jaxrl.agents.sac import SAC
from jaxrl.agents.td3 import TD3
from jaxrl.agents.td3bc import TD3BC, ReBRAC
from jaxrl.agents.wsrl import WSRL

# Which regime an agent runs in is the config's choice (TrainConfig.regime), not the registry's.
AGENTS = {
    cls.name: cls
    for cls in (BC, IQL, RIQL, TD3BC, ReBRAC, CQL, CalQL, SACN, EDAC, RO2O, AWAC, DT, SAC, TD3, PPO, WSRL, H2O, DARC)
}


def make_agent(name: str, **hyperparameters) -> Agent:
    if name not in AGENTS:
        raise ConfigError(f"unknown algorithm {name!r}; available: {', '.join(sorted(AGENTS))}")
    cls = AGENTS[name]
    unknown = set(hyperparameters) - set(cls.__dataclass_fields__)
    if unknown:
        raise ConfigError(
            f"{name} has no hyperparameter {sorted(unknown)[0]!r}; it has: {', '.join(sorted(cls.__dataclass_fields__))}"
        )
    return cls(**hyperparameters)


__all__ = [
    "Agent",
    "ConfigError",
    "AWAC",
    "BC",
    "CalQL",
    "CQL",
    "DARC",
    "DT",
    "EDAC",
    "H2O",
    "IQL",
    "PPO",
    "RIQL",
    "RO2O",
    "ReBRAC",
    "SAC",
    "SACN",
    "TD3",
    "TD3BC",
    "WSRL",
    "AGENTS",
    "make_agent",
]
