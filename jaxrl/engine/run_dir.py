"""A run's directory and its lifecycle: create, overwrite, resume, extend; and what it records.

    RUN_DIR/config.json       the run's config as data (paths resolved), and its provenance: commit,
                              library versions, devices, command
    RUN_DIR/agents.msgpack    the members' agents as trained (hyperparameters after adapting to the data)
    RUN_DIR/metadata.json     what reports need from the data: reference scores, zero-action and random returns
    RUN_DIR/checkpoints/      Orbax, written atomically
    RUN_DIR/metrics.jsonl, metrics.csv, results.md, curve.png, tensorboard/

A directory is self-contained: it can be moved or copied and then resumed or loaded, and loading a
run's policy (`jaxrl.train.load_run`) needs nothing outside it (not the dataset it was trained on).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from flax import serialization

from jaxrl.agents import ConfigError
from jaxrl.engine.checkpoint import Checkpointer

# Settings of how a run is driven, not of what it computes: a resume may change them.
RUN_CONTROL = ("run_dir", "resume", "overwrite", "progress", "tensorboard", "wandb")
_LIBRARIES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "chex", "brax", "gymnax", "numpy")


def cpu_model() -> str:
    """The CPU's model name (XLA names none for CPUs; a run's float rounding depends on it)."""
    with contextlib.suppress(OSError):
        names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
        if names:
            return names[0]
    return platform.processor() or platform.machine()


def provenance() -> dict:
    """Where a run's numbers came from: the commit (and whether the tree had changes), the library
    versions, the devices and the command."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            pass
    devices = jax.devices()
    kind = devices[0].device_kind
    if devices[0].platform == "cpu":
        kind = f"cpu: {cpu_model()}, {os.cpu_count()} cores"
    if jax.process_count() > 1:
        kind += f", over {jax.process_count()} processes"
    return {
        "commit": commit,
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")) if commit else None,
        "versions": {"python": platform.python_version(), **versions},
        "devices": f"{len(devices)} x {kind}",
        "host": platform.node(),
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else None,
    }


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # a run killed mid-write keeps the previous file whole


class RunDir:
    """One run's directory. `path` is stored resolved, so a run made with an absolute path resumes
    with a relative one and the other way round."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser().resolve()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    config_file = property(lambda self: self.path / "config.json")
    checkpoint_dir = property(lambda self: self.path / "checkpoints")

    def has_checkpoint(self) -> bool:
        return self.checkpoint_dir.is_dir() and any(p.name.isdigit() for p in self.checkpoint_dir.iterdir())

    def checkpointer(self) -> Checkpointer:
        return Checkpointer(self.checkpoint_dir)

    # config.json ----------------------------------------------------------------------------------

    def read_config(self) -> dict:
        """The recorded config, as data (without its provenance; run_dir: this directory)."""
        if not self.config_file.is_file():
            raise ConfigError(f"{self.path}: no config.json, so not a run directory")
        try:
            config = json.loads(self.config_file.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"{self.config_file}: not valid JSON ({err})") from None
        config.pop("provenance", None)
        config["run_dir"] = str(self.path)  # where it is now: it may have been moved or copied
        return config

    def read_provenance(self) -> dict:
        return json.loads(self.config_file.read_text()).get("provenance", {}) if self.config_file.is_file() else {}

    def prepare(
        self, config: dict, *, resume: bool, overwrite: bool, extendable: tuple[str, ...] = (), write: bool = True
    ) -> None:
        """Make the directory ready for `config`: refuse to replace a run unless `overwrite`; with
        `resume`, refuse a config that differs from the recorded one except in run control and in
        `extendable` settings (step counts) that grow; write config.json with its provenance. Without
        `write` (a multi-process run's other processes) only check, leaving the directory as it is."""
        if resume and not self.path.is_dir():
            raise ConfigError(f"cannot resume {self.path}: no such directory")
        if overwrite and not resume:
            if write and self.path.exists():
                shutil.rmtree(self.path)
        elif not resume and self.has_checkpoint():
            raise ConfigError(
                f"{self.path} already holds a run; pass resume=True (--resume) to continue it, overwrite=True "
                "(--overwrite) to replace it, or choose another run_dir"
            )
        config = json.loads(json.dumps(config, default=str))  # compare as stored (tuples become lists)
        if resume and self.config_file.is_file():
            self._check_resumable(self.read_config(), config, extendable)
        if not write:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        record = dict(config, run_dir=str(self.path), provenance=provenance())
        _write_atomically(self.config_file, json.dumps(record, indent=2, sort_keys=True, default=str).encode())

    def open(self, config: dict) -> bool:
        """Ready the directory for a run of `config` that a protocol drives (no user to ask): resume the
        run there when its config is the same, else start afresh. Returns whether it resumes."""
        if self.path.is_dir():
            try:
                self.prepare(config, resume=True, overwrite=False)
                return True
            except ConfigError:  # another config (or an older format) was interrupted here
                pass
        self.prepare(config, resume=False, overwrite=True)
        return False

    def _check_resumable(self, saved: dict, config: dict, extendable: tuple[str, ...]) -> None:
        changed = sorted(k for k in set(saved) | set(config) if k not in RUN_CONTROL and saved.get(k) != config.get(k))
        shortened = [k for k in changed if k in extendable and config[k] < saved[k]]
        if shortened:
            k = shortened[0]
            raise ConfigError(
                f"cannot resume {self.path} with {k} {config[k]}: it has recorded {saved[k]}; a run extends, never shortens"
            )
        changed = [k for k in changed if k not in extendable]
        if changed:
            what = "; ".join(f"{k}: {saved.get(k)!r} there, {config.get(k)!r} here" for k in changed)
            raise ConfigError(f"cannot resume {self.path}: its config differs in {', '.join(changed)} ({what})")

    # what evaluating the run needs besides its checkpoint -----------------------------------------

    def save_agents(self, agents: Any) -> None:
        _write_atomically(self.path / "agents.msgpack", serialization.to_bytes(agents))

    def load_agents(self, target: Any) -> Any:
        """The recorded agents, into the structure of `target` (the agents its config builds)."""
        path = self.path / "agents.msgpack"
        if not path.is_file():
            raise ConfigError(f"{self.path}: no agents.msgpack (a run written before runs recorded their agents)")
        try:
            return serialization.from_bytes(target, path.read_bytes())
        except (ValueError, KeyError) as err:
            raise ConfigError(f"{path}: does not fit the agents of its config.json ({err})") from None

    def save_metadata(self, metadata: dict) -> None:
        _write_atomically(self.path / "metadata.json", json.dumps(metadata, indent=2, sort_keys=True, default=float).encode())

    def read_metadata(self) -> dict:
        path = self.path / "metadata.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def restore_parts(self, abstract: dict[str, Any], step: int | None = None) -> tuple[int, dict[str, Any]]:
        """(step, {name: tree}) for parts of a checkpointed state (e.g. its agent and normaliser) without
        knowing the rest of it (e.g. a replay buffer sized by the dataset): each `abstract[name]` gives
        the structure, the checkpoint the arrays."""
        manager = ocp.CheckpointManager(self.checkpoint_dir, item_handlers=ocp.StandardCheckpointHandler())
        try:
            step = manager.latest_step() if step is None else step
            if step is None:
                raise ConfigError(f"{self.path}: no checkpoint in {self.checkpoint_dir}")
            if step not in manager.all_steps():
                raise ConfigError(f"{self.path}: no checkpoint at step {step}; it has {sorted(manager.all_steps())}")
            # Onto this process's first device, whatever devices (or processes) the run was sharded over.
            here = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
            target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=here), manager.item_metadata(step))
            raw = manager.restore(step, args=ocp.args.StandardRestore(target))
        finally:
            manager.close()
        return step, {name: _fill(tree, raw[name], f"{self.checkpoint_dir}/{step}: {name}") for name, tree in abstract.items()}


def _fill(abstract: Any, raw: Any, where: str) -> Any:
    """`abstract`'s structure with the arrays of `raw` (Orbax's nested dicts of the same tree)."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(abstract)
    leaves = []
    for path, leaf in paths:
        node = raw
        for key in path:
            name = getattr(key, "name", getattr(key, "key", getattr(key, "idx", None)))
            if isinstance(node, dict):
                node = node.get(name, node.get(str(name)))
            elif isinstance(node, (list, tuple)) and isinstance(name, int) and name < len(node):
                node = node[name]
            else:
                node = None
            if node is None:
                raise ConfigError(f"{where}: the checkpoint has no {jax.tree_util.keystr(path)}")
        if tuple(node.shape) != tuple(leaf.shape):
            raise ConfigError(
                f"{where}{jax.tree_util.keystr(path)}: shape {tuple(node.shape)} in the checkpoint, {tuple(leaf.shape)} expected"
            )
        leaves.append(node.astype(leaf.dtype))
    return jax.tree_util.tree_unflatten(treedef, leaves)
