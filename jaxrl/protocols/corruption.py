"""Data corruption of RIQL (Yang et al., ICLR 2024): pure `Dataset -> Dataset` functions on device.

Each transition is corrupted independently with probability `rate`; several elements are corrupted
one after another, with the rows re-drawn for each. Random mode adds uniform noise scaled by the
field's per-dimension standard deviation (rewards are replaced by uniform noise); adversarial mode
moves each selected row, within the same box, to where a pretrained EDAC attacker's ensemble-mean Q
is lowest (rewards become -eps * r).

Corruption is applied to the raw dataset as loaded, before any reward or observation normalisation:
the normalising statistics (RIQL's observation standardisation included) are then those of the
corrupted data, as in the paper. This module is what a corruption is and its operations (a config can
hold one without reaching the trainer); `jaxrl.protocols.corrupt` applies one, training the attacker.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.tree_util import Partial

from jaxrl.agents.base import ConfigError
from jaxrl.data.dataset import Dataset

ELEMENTS = ("observations", "actions", "rewards", "dynamics")
MODES = ("random", "adversarial")
FIELDS = {"observations": "observations", "actions": "actions", "rewards": "rewards", "dynamics": "next_observations"}
CACHE_FORMAT = 3  # part of the cache key: bump when the attack changes, so stale files are not reused


@dataclasses.dataclass(frozen=True)
class Corruption:
    """RIQL's corruption protocol: which elements, how, how many rows and how far."""

    elements: tuple[Literal["observations", "actions", "rewards", "dynamics"], ...] = ()
    """elements to corrupt, one after another with rows re-drawn for each (none: the clean dataset)"""
    mode: Literal["random", "adversarial"] = "random"
    """random noise, or a gradient attack against an EDAC critic ensemble trained on the clean data"""
    rate: float = 0.3
    """c: each transition is corrupted independently with this probability"""
    scale: float = 1.0
    """eps: noise in [-eps, eps] x the field's per-dimension std (rewards: U(-30 eps, 30 eps) or -eps r)"""
    seed: int = 0
    """which rows are corrupted and the noise drawn (independent of the training seeds)"""
    attack_steps: int = 100
    """adversarial: Adam steps of the attack"""
    attack_lr: float = 0.01
    """adversarial: Adam's learning rate is attack_lr * scale (the reference's 0.01 eps)"""
    attacker_steps: int = 10_000
    """adversarial: gradient updates of the EDAC attacker"""
    attacker_hidden_dims: tuple[int, ...] = (256, 256)
    attacker_num_critics: int = 10

    def validate(self) -> "Corruption":
        """Raises ConfigError naming the first invalid field."""
        if isinstance(self.elements, str) or not self.elements:
            raise ConfigError(f"corruption.elements must be a non-empty tuple drawn from {ELEMENTS}, got {self.elements!r}")
        for element in self.elements:
            if element not in ELEMENTS:
                raise ConfigError(f"corruption.elements: unknown element {element!r}; choose from {', '.join(ELEMENTS)}")
        if len(set(self.elements)) != len(self.elements):
            raise ConfigError(f"corruption.elements must not repeat an element, got {self.elements!r}")
        if self.mode not in MODES:
            raise ConfigError(f"corruption.mode: unknown mode {self.mode!r}; choose from {', '.join(MODES)}")
        if not (0.0 < self.rate <= 1.0):
            raise ConfigError(f"corruption.rate must be in (0, 1], got {self.rate!r}")
        for name in ("scale", "attack_lr"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"corruption.{name} must be positive and finite, got {value!r}")
        for name in ("attack_steps", "attacker_steps", "attacker_num_critics"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"corruption.{name} must be a positive integer, got {value!r}")
        dims = self.attacker_hidden_dims
        if not dims or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims):
            raise ConfigError(f"corruption.attacker_hidden_dims must be positive integers, got {dims!r}")
        return self


def corruption_mask(key: jax.Array, size: int, rate: float) -> jax.Array:
    """Each of `size` rows independently with probability `rate`."""
    return jax.random.bernoulli(key, rate, (size,))


def _where_rows(mask, new, old):
    # a select, not arithmetic, so the rows left alone stay bit-identical
    return jnp.where(mask.reshape(-1, *([1] * (old.ndim - 1))), new.astype(old.dtype), old)


@functools.partial(jax.jit, static_argnames="element")
def random_corruption(dataset: Dataset, element: str, rate: float, scale: float, key: jax.Array) -> tuple[Dataset, jax.Array]:
    """RIQL's random corruption of one element; returns the new dataset and the mask of corrupted rows."""
    k_mask, k_noise = jax.random.split(key)
    field = FIELDS[element]
    x = getattr(dataset, field)
    mask = corruption_mask(k_mask, x.shape[0], rate)
    if element == "rewards":
        new = jax.random.uniform(k_noise, x.shape, minval=-30.0 * scale, maxval=30.0 * scale)
    else:
        lam = jax.random.uniform(k_noise, x.shape, minval=-scale, maxval=scale)
        new = x + lam * x.std(axis=0)  # actions are deliberately not clipped back to [-1, 1]
    return dataset.replace(**{field: _where_rows(mask, new, x)}), mask


def _perturbed_q(element, q_fn, policy_fn, obs, act, x):
    """Q with `x` standing in for the corrupted field; for dynamics the attacker's own action at s'."""
    if element == "observations":
        return q_fn(x, act)
    if element == "actions":
        return q_fn(obs, x)
    return q_fn(x, policy_fn(x))


@functools.partial(jax.jit, static_argnames=("element", "steps"))
def attack_rows(q_fn, policy_fn, obs, act, x, std, p0, scale, lr, *, element: str, steps: int) -> jax.Array:
    """The perturbation p * std of `x` (rows [n, d]) minimising Q, with p in [-scale, scale] (std units).

    The objective is the sum over rows of each row's Q, so each row's gradient is its own, and Adam
    (elementwise) on the [n, d] array is exactly n independent per-row attacks.
    """
    optimizer = optax.adam(lr)

    def objective(p):
        return _perturbed_q(element, q_fn, policy_fn, obs, act, x + p * std).sum()

    def step(carry, _):
        p, opt_state = carry
        updates, opt_state = optimizer.update(jax.grad(objective)(p), opt_state)
        return (jnp.clip(optax.apply_updates(p, updates), -scale, scale), opt_state), None

    (p, _), _ = jax.lax.scan(step, (p0, optimizer.init(p0)), None, length=steps)
    return p * std


def adversarial_corruption(
    dataset: Dataset,
    element: str,
    rate: float,
    scale: float,
    key: jax.Array,
    q_fn=None,
    policy_fn=None,
    steps: int = 100,
    lr: float = 0.01,
    chunk_size: int = 8192,
) -> tuple[Dataset, jax.Array]:
    """RIQL's adversarial corruption of one element against `q_fn(obs, act) -> [B]` (the attacker's
    ensemble-mean Q) and `policy_fn(obs) -> act`; `lr` is Adam's actual learning rate.

    Uses the same mask as `random_corruption` for the same key and rate. The selected rows are
    attacked in fixed-size padded chunks by one compiled function, which bounds memory.
    """
    k_mask, k_init = jax.random.split(key)
    field = FIELDS[element]
    x = getattr(dataset, field)
    mask = corruption_mask(k_mask, x.shape[0], rate)
    if element == "rewards":
        return dataset.replace(rewards=_where_rows(mask, -scale * x, x)), mask

    idx = np.flatnonzero(np.asarray(mask))
    if idx.size == 0:
        return dataset, mask
    q_fn, policy_fn = _as_pytree(q_fn), _as_pytree(policy_fn)
    std = x.std(axis=0)
    p0 = jax.random.uniform(k_init, (idx.size, x.shape[1]), minval=-scale, maxval=scale)
    chunk = min(chunk_size, 1 << (idx.size - 1).bit_length())  # small datasets need no 8192-row chunk
    padded = -(-idx.size // chunk) * chunk
    rows = jnp.asarray(np.pad(idx, (0, padded - idx.size)))  # padding attacks row 0 again; the result is dropped
    p0 = jnp.pad(p0, ((0, padded - idx.size), (0, 0)))
    deltas = []
    for start in range(0, padded, chunk):
        r = rows[start : start + chunk]
        obs, act = dataset.observations[r], dataset.actions[r]
        p = p0[start : start + chunk]
        deltas.append(attack_rows(q_fn, policy_fn, obs, act, x[r], std, p, scale, lr, element=element, steps=steps))
    delta = jnp.concatenate(deltas)[: idx.size]
    sel = jnp.asarray(idx)
    return dataset.replace(**{field: x.at[sel].set((x[sel] + delta).astype(x.dtype))}), mask


def _as_pytree(fn):
    # a Partial is a pytree whose leaves (e.g. network parameters) are jit arguments, not baked-in constants
    return fn if fn is None or isinstance(fn, Partial) else Partial(fn)


def element_key(seed: int, element: str) -> jax.Array:
    # keyed by the element's name, so adding an element leaves the others' rows and noise unchanged
    return jax.random.fold_in(jax.random.split(jax.random.PRNGKey(seed))[1], ELEMENTS.index(element))


def cache_key(dataset: Dataset, corruption: Corruption | dict) -> str:
    """sha256 over every array of the dataset (with dtype and shape) and every setting of the corruption."""
    h = hashlib.sha256(f"corruption-format-{CACHE_FORMAT}".encode())
    for name in sorted(dataset.__dataclass_fields__):
        value = getattr(dataset, name)
        if value is None:
            continue
        arr = np.ascontiguousarray(np.asarray(value))
        h.update(f"{name}:{arr.dtype.str}:{arr.shape}".encode())
        h.update(arr.tobytes())
    settings = corruption if isinstance(corruption, dict) else dataclasses.asdict(corruption)
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()
