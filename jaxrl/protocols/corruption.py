"""Data corruption of RIQL (Yang et al., ICLR 2024): pure `Dataset -> Dataset` functions on device.

Each transition is corrupted independently with probability `rate`; several elements are corrupted
one after another, with the rows re-drawn for each. Random mode adds uniform noise scaled by the
field's per-dimension standard deviation (rewards are replaced by uniform noise); adversarial mode
moves each selected row, within the same box, to where a pretrained EDAC attacker's ensemble-mean Q
is lowest (rewards become -eps * r).

Corruption is applied to the raw dataset as loaded, before any reward or observation normalisation:
the normalising statistics (RIQL's observation standardisation included) are then those of the
corrupted data, as in the paper.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.tree_util import Partial

from jaxrl.agents import make_agent
from jaxrl.agents.base import ConfigError
from jaxrl.data.dataset import Dataset, sample_batch
from jaxrl.data.io import data_dir

ELEMENTS = ("observations", "actions", "rewards", "dynamics")
MODES = ("random", "adversarial")
FIELDS = {"observations": "observations", "actions": "actions", "rewards": "rewards", "dynamics": "next_observations"}
CACHE_FORMAT = 2  # part of the cache key: bump when the attack changes, so stale files are not reused
ATTACKER_BATCH_SIZE = 256


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


def _mean_q(agent, critic_params, obs, act):
    return agent.critic_net.apply(critic_params, obs, act).mean(axis=0)


def _greedy_action(agent, actor_params, obs):
    return jnp.tanh(agent.actor_net.apply(actor_params, obs)[0])


_ATTACKERS: dict[str, tuple] = {}  # this process's trained attackers, by data and attacker settings


def pretrain_attacker(dataset: Dataset, corruption: Corruption):
    """EDAC trained on the clean dataset in one compiled scan; returns (ensemble-mean q_fn, greedy policy_fn).

    A table attacks each element of the same data with the same attacker: it is trained once per process.
    """
    attacker_settings = {k: v for k, v in dataclasses.asdict(corruption).items() if k.startswith("attacker") or k == "seed"}
    key = cache_key(dataset, attacker_settings)
    if key not in _ATTACKERS:
        _ATTACKERS.clear()  # keep one: parameters of large attackers are not small
        _ATTACKERS[key] = _train_attacker(dataset, corruption)
    return _ATTACKERS[key]


def _train_attacker(dataset: Dataset, corruption: Corruption):
    spec = SimpleNamespace(obs_dim=dataset.observations.shape[1], action_dim=dataset.actions.shape[1])
    agent = make_agent("edac", hidden_dims=tuple(corruption.attacker_hidden_dims), num_critics=corruption.attacker_num_critics)
    agent = agent.configure(spec, corruption.attacker_steps)
    k_init, k_train = jax.random.split(_attacker_key(corruption.seed))

    @jax.jit
    def train(dataset, key):
        def step(state, key):
            k_batch, k_update = jax.random.split(key)
            state, _ = agent.update(state, sample_batch(dataset, k_batch, ATTACKER_BATCH_SIZE), k_update)
            return state, None

        state, _ = jax.lax.scan(step, agent.init(k_init), jax.random.split(key, corruption.attacker_steps))
        return state

    state = train(dataset, k_train)
    return Partial(_mean_q, agent, state.critic.params), Partial(_greedy_action, agent, state.actor.params)


def _attacker_key(seed: int) -> jax.Array:
    return jax.random.split(jax.random.PRNGKey(seed))[0]


def _element_key(seed: int, element: str) -> jax.Array:
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


def _write_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # a partly written file must never be read as a cache hit by a concurrent or later run
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _apply_all(dataset: Dataset, corruption: Corruption, log) -> tuple[Dataset, dict[str, jax.Array]]:
    q_fn = policy_fn = None
    if corruption.mode == "adversarial" and set(corruption.elements) - {"rewards"}:
        t0 = time.perf_counter()
        q_fn, policy_fn = jax.block_until_ready(pretrain_attacker(dataset, corruption))  # on the clean data
        log(f"[corruption] trained the EDAC attacker for {corruption.attacker_steps} steps ({time.perf_counter() - t0:.0f} s)")
    masks = {}
    for element in corruption.elements:
        key = _element_key(corruption.seed, element)
        if corruption.mode == "random":
            dataset, masks[element] = random_corruption(dataset, element, corruption.rate, corruption.scale, key)
        else:
            lr = corruption.attack_lr * corruption.scale
            dataset, masks[element] = adversarial_corruption(
                dataset, element, corruption.rate, corruption.scale, key, q_fn, policy_fn, corruption.attack_steps, lr
            )
    return dataset, masks


def corrupt(
    dataset: Dataset, metadata: dict, corruption: Corruption, *, cache_dir: Path | None = None, verbose: bool = True
) -> tuple[Dataset, dict]:
    """Corrupt `dataset` as `corruption` says (deterministic given its seed).

    Returns the corrupted dataset and a copy of `metadata` with "corruption" (the settings) and
    "corrupted_indices" ({element: sorted row indices}). Adversarial results, which cost an attacker's
    training, are cached under `cache_dir` (default: data_dir()/corruption) by a hash of the data and
    of every setting; random ones are cheap and recomputed.
    """
    corruption.validate()
    log = print if verbose else (lambda *a, **k: None)
    fields = [FIELDS[e] for e in corruption.elements]
    cache_path = None
    if corruption.mode == "adversarial":
        cache_path = Path(cache_dir or data_dir() / "corruption") / f"{cache_key(dataset, corruption)}.npz"
    if cache_path is not None and cache_path.is_file():
        with np.load(cache_path) as cached:
            dataset = dataset.replace(**{f: jnp.asarray(cached[f]) for f in fields})
            indices = {e: cached[f"indices/{e}"] for e in corruption.elements}
        log(f"[corruption] loaded {cache_path}")
    else:
        dataset, masks = _apply_all(dataset, corruption, log)
        for element in corruption.elements:  # e.g. an attacker that diverged: fail here, and cache nothing
            if not bool(jnp.isfinite(getattr(dataset, FIELDS[element])).all()):
                raise ValueError(f"corruption of {element} ({corruption.mode}) produced non-finite values")
        indices = {e: np.flatnonzero(np.asarray(m)) for e, m in masks.items()}
        if cache_path is not None:
            arrays = {f: np.asarray(getattr(dataset, f)) for f in fields}
            _write_atomic(cache_path, arrays | {f"indices/{e}": i for e, i in indices.items()})
    settings = dataclasses.asdict(corruption) | {"elements": list(corruption.elements)}
    settings["num_corrupted"] = {e: int(i.size) for e, i in indices.items()}
    return dataset, {**metadata, "corruption": settings, "corrupted_indices": indices}
