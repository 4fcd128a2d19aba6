"""Corrupting a dataset as a `Corruption` says (RIQL's protocol; what a corruption is and its operations:
`jaxrl.protocols.corruption`): the adversarial mode's attacker, an EDAC trained by the trainer on the
clean data, and a cache of adversarial results keyed by the data and every setting.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import Partial

from jaxrl.agents import make_agent
from jaxrl.data.dataset import Dataset
from jaxrl.data.io import data_dir
from jaxrl.engine.phases import Offline
from jaxrl.engine.stage import chunks_of, replicate_agent, run_stage
from jaxrl.protocols.corruption import FIELDS, Corruption, adversarial_corruption, cache_key, element_key, random_corruption

ATTACKER_BATCH_SIZE = 256


def _mean_q(agent, critic_params, obs, act):
    return agent.critic_net.apply(critic_params, obs, act).mean(axis=0)


def _greedy_action(agent, actor_params, obs):
    return jnp.tanh(agent.actor_net.apply(actor_params, obs)[0])


_ATTACKERS: dict[str, tuple] = {}  # this process's trained attackers, by data and attacker settings


def pretrain_attacker(dataset: Dataset, corruption: Corruption, cache_dir: Path | None = None):
    """EDAC trained on the clean dataset by the trainer; returns (ensemble-mean q_fn, greedy policy_fn).

    The training is a trainer run in `cache_dir/attackers/<hash of data and attacker settings>` (default
    cache_dir: data_dir()/corruption): a killed training resumes there, a finished one is restored. A
    table attacks each element of the same data with the same attacker: it is also kept once per process.
    """
    attacker_settings = {k: v for k, v in dataclasses.asdict(corruption).items() if k.startswith("attacker") or k == "seed"}
    key = cache_key(dataset, attacker_settings)
    if key not in _ATTACKERS:
        _ATTACKERS.clear()  # keep one: parameters of large attackers are not small
        run_dir = Path(cache_dir or data_dir() / "corruption") / "attackers" / key[:16]
        _ATTACKERS[key] = _train_attacker(dataset, corruption, run_dir, attacker_settings | {"data_and_settings": key})
    return _ATTACKERS[key]


def _train_attacker(dataset: Dataset, corruption: Corruption, run_dir: Path, settings: dict):
    spec = SimpleNamespace(obs_dim=dataset.observations.shape[1], action_dim=dataset.actions.shape[1])
    agent = make_agent("edac", hidden_dims=tuple(corruption.attacker_hidden_dims), num_critics=corruption.attacker_num_critics)
    steps = corruption.attacker_steps
    agent = agent.configure(spec, steps)
    phase = Offline(steps, chunks_of(steps), ATTACKER_BATCH_SIZE)
    stage = run_stage(replicate_agent(agent, 1), [phase], dataset, _attacker_key(corruption.seed)[None], run_dir, settings)
    state = jax.tree.map(lambda x: x[0], stage.states.agent)
    return Partial(_mean_q, agent, state.critic.params), Partial(_greedy_action, agent, state.actor.params)


def _attacker_key(seed: int) -> jax.Array:
    return jax.random.split(jax.random.PRNGKey(seed))[0]


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


def _apply_all(dataset: Dataset, corruption: Corruption, log, cache_dir: Path) -> tuple[Dataset, dict[str, jax.Array]]:
    q_fn = policy_fn = None
    if corruption.mode == "adversarial" and set(corruption.elements) - {"rewards"}:
        t0 = time.perf_counter()
        q_fn, policy_fn = jax.block_until_ready(pretrain_attacker(dataset, corruption, cache_dir))  # on the clean data
        log(f"[corruption] trained the EDAC attacker for {corruption.attacker_steps} steps ({time.perf_counter() - t0:.0f} s)")
    masks = {}
    for element in corruption.elements:
        key = element_key(corruption.seed, element)
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
    cache_path, cache_dir = None, Path(cache_dir or data_dir() / "corruption")
    if corruption.mode == "adversarial":
        cache_path = cache_dir / f"{cache_key(dataset, corruption)}.npz"
    if cache_path is not None and cache_path.is_file():
        with np.load(cache_path) as cached:
            dataset = dataset.replace(**{f: jnp.asarray(cached[f]) for f in fields})
            indices = {e: cached[f"indices/{e}"] for e in corruption.elements}
        log(f"[corruption] loaded {cache_path}")
    else:
        dataset, masks = _apply_all(dataset, corruption, log, cache_dir)
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
