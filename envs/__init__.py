"""jaxrl environments: one functional interface over gymnax and brax."""

from envs.core import Env, EnvSpec, Transition
from envs.dynamics import DynamicsParams
from envs.registry import REGISTRY, UnknownEnvError, make, registered

__all__ = ["DynamicsParams", "Env", "EnvSpec", "Transition", "REGISTRY", "UnknownEnvError", "make", "registered"]
