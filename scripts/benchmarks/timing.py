"""Timing whole chunks: the compile meter, waiting for a quiet machine, and what a measurement returns."""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.machine import LoadMeter


class CompileMeter:
    """Seconds JAX spent tracing, lowering and compiling (from jax.monitoring events) since `reset`."""

    EVENTS = (
        "/jax/core/compile/jaxpr_trace_duration",
        "/jax/core/compile/jaxpr_to_mlir_module_duration",
        "/jax/core/compile/backend_compile_duration",
    )

    def __init__(self):
        self.seconds, self.compiles = 0.0, 0
        jax.monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event, duration, **kwargs):
        if event in self.EVENTS:
            self.seconds += duration
            self.compiles += 1  # any trace or compile (a persistent-cache hit still traces)

    def reset(self):
        self.seconds, self.compiles = 0.0, 0


COMPILES = CompileMeter()


@dataclass
class Result:
    name: str
    config: str
    first_call_s: float  # compile + one chunk
    compile_s: float  # trace + lower + compile, measured, including any recompilation on later calls
    chunk_s: list[float]  # timed chunks, steady state
    steps_per_chunk: int  # program steps (updates or env steps) per chunk
    members: int = 1
    unit: str = "updates/s"
    background: list[float] = field(default_factory=list)
    recompiles: list[str] = field(default_factory=list)
    discarded: int = 0
    algo: str = ""  # offline algorithm name (OFFLINE_ALGOS), "" for the online benchmarks
    flops: float | None = None  # XLA's flop count of one member's update, where known
    library: str = "jaxrl"
    threads: int | None = None  # torch threads (d3rlpy)

    @classmethod
    def of(cls, name: str, config: str, timing: Timing, steps_per_chunk: int, members: int, unit: str, **extra) -> "Result":
        return cls(
            name,
            config,
            timing.first_call_s,
            timing.compile_s,
            timing.chunk_s,
            steps_per_chunk,
            members,
            unit,
            timing.background,
            timing.recompiles,
            timing.discarded,
            **extra,
        )

    @property
    def member_rate(self) -> float:  # member updates (or env steps) per second (median chunk)
        return self.rate * self.members

    @property
    def rates(self) -> list[float]:
        return [self.steps_per_chunk / t for t in self.chunk_s]

    @property
    def rate(self) -> float:  # program steps per second (median chunk)
        return self.steps_per_chunk / statistics.median(self.chunk_s)


@dataclass
class Timing:
    state: object  # the state after the last call
    first_call_s: float
    compile_s: float
    chunk_s: list[float]
    background: list[float]
    recompiles: list[str]
    discarded: int  # timed chunks dropped because other processes were busy (only with --wait-quiet)
    calls: int  # chunks run in all, first call included


def time_program(
    call, state, repeats: int, label: str, quiet_wait: float = 0.0, max_recompiles: int = 2, busy: float = 0.5
) -> Timing:
    """Call `call(state, index) -> (state, aux)` once to compile, then until `repeats` chunks ran without compiling.

    A timed call that compiled (e.g. because the state's types changed after the first chunk) is reported
    and not counted. With `quiet_wait` > 0, a timed call during which other processes used more than
    `busy` cores is dropped too (at most 2 x `repeats` times, and only while the run's waiting budget
    `QUIET` lasts), after waiting for the machine to go quiet.
    """
    initial = state
    COMPILES.reset()
    t = time.perf_counter()
    state, _ = jax.block_until_ready(call(state, 0))
    first = time.perf_counter() - t
    compile_s = COMPILES.seconds
    print(f"  {label} first call: {first:.2f} s (compile {compile_s:.2f} s)", flush=True)
    changed = type_changes(initial, state)
    times, loads, recompiles, discarded = [], [], [], 0
    index = 1
    while len(times) < repeats:
        COMPILES.reset()
        with LoadMeter() as meter:
            t = time.perf_counter()
            state, _ = jax.block_until_ready(call(state, index))
            dt = time.perf_counter() - t
        index += 1
        if COMPILES.compiles:
            compile_s += COMPILES.seconds
            cause = f": the first call changed the type of {changed}" if changed and len(recompiles) == 0 else ""
            recompiles.append(f"call {index} recompiled ({COMPILES.seconds:.1f} s of {dt:.1f} s){cause}")
            print(f"  {label} call {index}: {dt:.2f} s, RECOMPILED ({COMPILES.seconds:.2f} s compiling); not counted", flush=True)
            if len(recompiles) > max_recompiles:
                raise RuntimeError(f"{label}: the program recompiles on every call")
            continue
        if quiet_wait > 0 and QUIET.left > 0 and meter.background > busy and discarded < 2 * repeats:
            discarded += 1
            QUIET.charge(dt)
            print(
                f"  {label} call {index}: {dt:.2f} s with {meter.background:.2f} cores of background load; not counted",
                flush=True,
            )
            wait_quiet(quiet_wait)
            continue
        times.append(dt)
        loads.append(meter.background)
        print(f"  {label} chunk {len(times)}/{repeats}: {dt:.2f} s (background load {meter.background:.2f} cores)", flush=True)
    return Timing(state, first, compile_s, times, loads, recompiles, discarded, index)


def type_changes(before, after, limit: int = 3) -> str:
    """The state leaves whose dtype, shape or weak type differ between two states (which forces a recompile)."""

    def describe(x):
        x = jnp.asarray(x) if not hasattr(x, "dtype") else x
        return f"{x.dtype}{list(x.shape)}" + ("(weak)" if getattr(x, "weak_type", False) else "")

    try:
        pairs = zip(jax.tree_util.tree_leaves_with_path(before), jax.tree_util.tree_leaves(after), strict=True)
    except ValueError:
        return "the state's tree structure"
    diffs = [
        f"`{jax.tree_util.keystr(path)}` {describe(a)} -> {describe(b)}" for (path, a), b in pairs if describe(a) != describe(b)
    ]
    return ", ".join(diffs[:limit]) + (f" and {len(diffs) - limit} more" if len(diffs) > limit else "")


class QuietBudget:
    """Seconds the whole run may still spend waiting for other processes to go quiet (and re-running
    chunks they disturbed): on a machine that stays busy the run measures anyway instead of waiting for hours."""

    def __init__(self, seconds: float = math.inf):
        self.left = seconds
        self.spent = 0.0

    def reset(self, seconds: float) -> None:
        self.left, self.spent = seconds, 0.0

    def charge(self, seconds: float) -> None:
        self.left -= seconds
        self.spent += seconds


QUIET = QuietBudget()


def wait_quiet(max_seconds: float, threshold: float = 0.25) -> None:
    """Wait (up to `max_seconds`, and within the run's budget `QUIET`) until other processes use less
    than `threshold` cores over one second."""
    if max_seconds <= 0 or QUIET.left <= 0 or not LoadMeter().available:
        return
    start = time.perf_counter()
    last_message = -math.inf
    while True:
        with LoadMeter() as meter:
            time.sleep(1.0)
        waited = time.perf_counter() - start
        if meter.background < threshold:
            if waited > 2:
                print(f"  quiet after {waited:.0f} s", flush=True)
            QUIET.charge(waited)
            return
        if waited > max_seconds or waited > QUIET.left:
            budget = " (the run's waiting budget is spent)" if waited > QUIET.left else ""
            print(
                f"  machine still busy ({meter.background:.2f} cores of background load); measuring anyway{budget}",
                flush=True,
            )
            QUIET.charge(waited)
            return
        if waited - last_message >= 30:
            print(f"  waiting for a quiet machine ({meter.background:.2f} cores of background load)", flush=True)
            last_message = waited
        time.sleep(2.0)


def check_updates(label: str, before, after, expected: int) -> None:
    """The update counter must have advanced by exactly one update per program step."""
    done = np.asarray(jax.device_get(after)) - np.asarray(jax.device_get(before))
    if not np.all(done == expected):
        raise RuntimeError(f"{label}: expected {expected} updates in the timed chunks, counted {done}")


def nice(x: float, low: int, high: int) -> int:
    """`x` rounded to two significant digits, within [low, high]."""
    x = min(max(x, low), high)
    scale = 10 ** max(math.floor(math.log10(x)) - 1, 0)
    return int(round(x / scale) * scale)
