"""d3rlpy's half of the offline comparison: each of our offline algorithms' d3rlpy equivalent, timed as
chunks of `algo.update(batch)` calls on the same arrays, with torch's default thread count and with 1 thread."""

from __future__ import annotations

import contextlib
import io
import time

import numpy as np

from benchmarks.ours import offline_config
from benchmarks.timing import Result, check_updates, nice, time_program, wait_quiet

PRESAMPLED_BATCHES = 16


def import_d3rlpy():
    """(d3rlpy, torch) or a message saying why the comparison is skipped."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # gym 0.26 prints a deprecation banner on import
            import d3rlpy
            import torch
    except Exception as err:  # ImportError, or a broken install
        return f"d3rlpy not importable ({type(err).__name__}: {err}); the d3rlpy comparison was skipped (`make bench` installs it: the bench extra, then pip install --no-deps d3rlpy==2.8.1)"
    try:  # d3rlpy logs through structlog at info level (dataset signatures, ...): keep warnings only
        import logging

        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    except Exception:
        pass
    return d3rlpy, torch


def d3rlpy_algos(d3rlpy, hidden_dims: tuple[int, ...], batch_size: int, critics: int) -> dict[str, tuple[str, object] | str]:
    """For each of our offline algorithms: (label, config factory) of its d3rlpy equivalent, every network
    with `hidden_dims`, or a message saying there is none. Algorithms sharing a label share one measurement."""
    from d3rlpy.models.encoders import VectorEncoderFactory

    algos = d3rlpy.algos
    hidden = list(hidden_dims)
    enc = lambda **kw: VectorEncoderFactory(hidden_units=hidden, **kw)  # noqa: E731
    nets = lambda: {"actor_encoder_factory": enc(), "critic_encoder_factory": enc(), "batch_size": batch_size}  # noqa: E731
    sac = (f"SAC, {critics} critics", lambda: algos.SACConfig(n_critics=critics, **nets()))
    table = {
        # stochastic: Gaussian log-likelihood, like ours (deterministic_actor=False); d3rlpy's default is MSE
        "bc": ("BC (stochastic)", lambda: algos.BCConfig(encoder_factory=enc(), policy_type="stochastic", batch_size=batch_size)),
        "iql": ("IQL", lambda: algos.IQLConfig(value_encoder_factory=enc(), **nets())),
        "td3bc": ("TD3PlusBC", lambda: algos.TD3PlusBCConfig(**nets())),
        # fixed penalty weight (no Lagrange step), like ours (lagrange=False); 10 sampled actions per source
        "cql": ("CQL, 10 action samples", lambda: algos.CQLConfig(n_action_samples=10, alpha_learning_rate=0.0, **nets())),
        "awac": ("AWAC", lambda: algos.AWACConfig(n_action_samples=1, **nets())),
        "sac-n": sac,
        "edac": sac,  # d3rlpy has no EDAC; its SAC-N equivalent is the closest
    }
    if hasattr(algos, "ReBRACConfig"):  # LayerNorm critics, like ours
        table["rebrac"] = (
            "ReBRAC",
            lambda: algos.ReBRACConfig(
                actor_encoder_factory=enc(), critic_encoder_factory=enc(use_layer_norm=True), batch_size=batch_size
            ),
        )
    else:
        table["rebrac"] = f"no ReBRAC in d3rlpy {d3rlpy.__version__}"
    return table


def d3rlpy_dataset(d3rlpy, arrays: dict[str, np.ndarray]):
    return d3rlpy.dataset.MDPDataset(
        observations=arrays["observations"],
        actions=arrays["actions"],
        rewards=arrays["rewards"].reshape(-1, 1),
        terminals=arrays["terminals"].astype(np.float32),
        timeouts=arrays["timeouts"].astype(np.float32),
    )


def bench_d3rlpy(
    d3rlpy,
    torch,
    label: str,
    make_config,
    mdp,
    batch_size: int,
    chunk_seconds: float,
    repeats: int,
    quiet_wait: float,
    setting: str,
    threads: int,
) -> Result:
    """N calls of `algo.update(batch)` per chunk, cycling through pre-sampled minibatches: the update alone
    (numpy -> torch conversion included), without `fit`'s Python-side sampling, logging or progress bar.
    Torch runs with `threads` intra-op threads meanwhile."""
    default = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        d3rlpy.seed(0)
        algo = make_config().create(device="cpu:0")
        algo.build_with_dataset(mdp)
        batches = [mdp.sample_transition_batch(batch_size) for _ in range(PRESAMPLED_BATCHES)]

        def run(updates: int, offset: int):
            for i in range(updates):
                algo.update(batches[(offset + i) % len(batches)])

        # warm-up (allocator, lazily created optimizer state), then a short timed run that sizes the chunks
        run(2, 0)
        warm, t = 0, time.perf_counter()
        while warm < 2 or time.perf_counter() - t < max(chunk_seconds / 2, 0.5):
            run(1, warm)
            warm += 1
        chunk = nice(chunk_seconds * warm / (time.perf_counter() - t), 1, 100_000)
        start = algo.grad_step

        def call(done: int, index: int):
            run(chunk, done)
            return done + chunk, None

        plural = "s" if threads > 1 else ""
        tag = f"{label} (d3rlpy, {threads} thread{plural})"
        timing = time_program(call, 0, repeats, tag, quiet_wait)
        check_updates(tag, start, algo.grad_step, timing.calls * chunk)
    finally:
        torch.set_num_threads(default)
    config = f"{setting}, device cpu:0, {threads} torch thread{plural}, {PRESAMPLED_BATCHES} pre-sampled batches, chunk {chunk}"
    name = f"{label}, d3rlpy {d3rlpy.__version__}, {threads} thread{plural}"
    return Result.of(name, config, timing, chunk, 1, "updates/s", library="d3rlpy", threads=threads)


def d3rlpy_sampling_ms(mdp, batch_size: int, calls: int = 20) -> float:
    """Milliseconds per `sample_transition_batch(batch_size)`: what `fit` adds to every update."""
    t = time.perf_counter()
    for _ in range(calls):
        mdp.sample_transition_batch(batch_size)
    return (time.perf_counter() - t) / calls * 1e3


class D3rlpySide:
    """d3rlpy's half of the offline comparison, set up once; `measure(algo)` times an algorithm's d3rlpy
    equivalent (once per equivalent), or returns None with the reason in `notes`."""

    def __init__(self, args, arrays: dict[str, np.ndarray], repeats: int, chunk_seconds: float):
        self.args, self.repeats, self.chunk_seconds = args, repeats, chunk_seconds
        self.setting = offline_config(len(arrays["rewards"]), args.batch_size, tuple(args.hidden_dims))
        self.notes: list[str] = []
        self.by_label: dict[str, list[Result]] = {}
        self.sampling_ms: float | None = None
        self.default_threads: int | None = None
        self.failed = False
        imported = import_d3rlpy()
        if isinstance(imported, str):
            print(imported, flush=True)
            self.notes.append(imported)
            self.failed = True
            return
        self.d3rlpy, self.torch = imported
        self.default_threads = self.torch.get_num_threads()
        # torch's default first: the comparison the goals are stated against
        settings = [self.default_threads if t == 0 else t for t in args.torch_threads]
        self.thread_settings = list(dict.fromkeys([self.default_threads, *settings] if 0 in args.torch_threads else settings))
        self.guard(lambda: self._setup(arrays))

    def _setup(self, arrays):
        self.table = d3rlpy_algos(self.d3rlpy, tuple(self.args.hidden_dims), self.args.batch_size, critics=10)
        self.mdp = d3rlpy_dataset(self.d3rlpy, arrays)
        self.sampling_ms = d3rlpy_sampling_ms(self.mdp, self.args.batch_size)

    def guard(self, fn):
        """Run `fn`; an error (an API change in another d3rlpy version) ends the comparison, not the run."""
        try:
            return fn()
        except Exception as err:
            message = f"d3rlpy comparison failed ({type(err).__name__}: {err}); skipped from there on"
            print(message, flush=True)
            self.notes.append(message)
            self.failed = True
            return None

    def measure(self, algo: str) -> tuple[list[Result], bool]:
        """The d3rlpy results of `algo` (one per torch thread setting), and whether they are new."""
        if self.failed:
            return [], False
        entry = self.table[algo]
        if isinstance(entry, str):
            self.notes.append(f"{algo}: {entry}; not compared")
            return [], False
        label, make_config = entry
        if label in self.by_label:
            return self.by_label[label], False
        measured = []
        for threads in self.thread_settings:
            print(f"{label} (d3rlpy {self.d3rlpy.__version__}, {threads} torch threads)", flush=True)
            wait_quiet(self.args.wait_quiet)
            result = self.guard(
                lambda threads=threads: bench_d3rlpy(
                    self.d3rlpy,
                    self.torch,
                    label,
                    make_config,
                    self.mdp,
                    self.args.batch_size,
                    self.chunk_seconds,
                    self.repeats,
                    self.args.wait_quiet,
                    self.setting,
                    threads,
                )
            )
            if result is None:
                break
            result.algo = algo
            measured.append(result)
        self.by_label[label] = measured
        return measured, True

    def method_notes(self) -> list[str]:
        if not self.by_label:
            return self.notes
        d3rlpy, torch, hidden = self.d3rlpy, self.torch, list(self.args.hidden_dims)
        return [
            *self.notes,
            f"d3rlpy {d3rlpy.__version__} on torch {torch.__version__} (default {self.default_threads} intra-op threads; measured with "
            f"{' and '.join(map(str, self.thread_settings))}), device cpu:0: each algorithm is "
            "built with `build_with_dataset` on an MDPDataset of the same arrays, warmed up (2 updates, then ~"
            f"{max(self.chunk_seconds / 2, 0.5):.1f} s that size its chunks), then timed as chunks of N calls of `algo.update(batch)` "
            f"cycling through {PRESAMPLED_BATCHES} TransitionMiniBatches pre-sampled with `sample_transition_batch`, N sized so a "
            "chunk takes about as long as ours. This is its pure update throughput (numpy -> torch conversion of the batch "
            f"included); `fit` would add its Python-side sampling ({self.sampling_ms:.1f} ms per batch of {self.args.batch_size} "
            "here) and logging. Ours samples inside the compiled program. Each d3rlpy algorithm is measured right after our "
            "1-seed program of the same algorithm, so that the ratio compares numbers taken under the same conditions",
            f"d3rlpy configurations: every encoder VectorEncoderFactory(hidden_units={hidden}); BC policy_type='stochastic'; CQL "
            "n_action_samples=10, alpha_learning_rate=0 (fixed penalty weight, as ours with lagrange=False); AWAC "
            "n_action_samples=1; ReBRAC critics with use_layer_norm=True; SAC-N and EDAC are both compared with "
            "SACConfig(n_critics=10) (d3rlpy has no EDAC; EDAC does more work per update than SAC-N: the action-gradient of "
            "every critic); compile_graph left False (torch.compile/CUDA graphs are a CUDA feature there)",
        ]
