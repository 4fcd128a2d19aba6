"""Throughput benchmarks of the compiled training programs, on whatever machine JAX runs on.

    python scripts/bench.py                  # default: ~15 minutes on a quiet 2-core CPU; prints the tables
    python scripts/bench.py --quick          # smoke run: short chunks, fewer repeats
    python scripts/bench.py --algos iql cql  # only some offline algorithms
    python scripts/bench.py --write          # also record the result as a dated section of BENCHMARKS.md
    python scripts/bench.py --output F.md    # ... of F.md (what `make bench` runs, with F.md = BENCHMARKS.md)

Measured:
  1. Offline updates/s of every offline agent (bc, iql, td3bc, cql, awac, rebrac, sac-n, edac), all with
     2x256 networks, batch 256, obs 17 / action 6, on the same 100k random transitions:
     - ours through `build_offline_program`, for 1, 4 and 16 seeds vmapped in one program;
     - d3rlpy's equivalent (if d3rlpy is installed, as `make bench` does), N calls of
       `algo.update(batch)` on its CPU device, with torch's default thread count and with 1 thread
       (`--torch-threads`); SAC-N and EDAC are both compared with d3rlpy's SAC with 10 critics (d3rlpy
       has no EDAC).
  2. SAC online env steps/s on gymnax Pendulum-v1 (64x64, batch 256, 1 env, one update per env step)
     through `build_online_program`, next to rejax's SAC with the same settings (if rejax is installed).

Every measurement times whole chunks (one `lax.scan` each, or N d3rlpy updates) with
`jax.block_until_ready`. The first call (compile + one chunk) is reported separately; throughput is the
median over the timed chunks that follow. Because a busy machine slows everything down, the CPU time
used by other processes during the timed chunks is measured from /proc/stat and reported as
"background load".
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as `python scripts/bench.py` without an installed package
    sys.path.insert(0, str(ROOT))

import envs  # noqa: E402
from jaxrl.agents import make_agent  # noqa: E402
from jaxrl.agents.sac import SAC  # noqa: E402
from jaxrl.data.dataset import Dataset, Normalizer, next_actions  # noqa: E402
from jaxrl.trainer import build_offline_program, build_online_program  # noqa: E402

OBS_DIM, ACTION_DIM = 17, 6
OFFLINE_ALGOS = ("bc", "iql", "td3bc", "cql", "awac", "rebrac", "sac-n", "edac")
# The project's throughput goals: ours (1 seed) / d3rlpy.
GOALS = {"iql": 4.0, "td3bc": 4.0, "cql": 10.0, "sac-n": 10.0}
SECTION_BEGIN = "<!-- bench-section {key} -->"
SECTION_END = "<!-- /bench-section -->"
HEADER = """# Benchmarks

Throughput of the compiled training programs, measured with `scripts/bench.py` (`make bench`).
Newest section first. "First call" is compile + one chunk; throughput is the median over the timed
chunks after it (min-max in brackets). "Background load" is the CPU time other processes used during
the timed chunks, in cores: numbers taken with a background load near the core count are not comparable.
"""


# ----------------------------------------------------------------------------------------------------
# Machine description and background-load measurement


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    except OSError:
        pass
    return []


def machine_info() -> dict:
    device = jax.devices()[0]
    return {
        "cpu": cpu_model(),
        "cores": cpu_count(),
        "cpu_flags": cpu_flags(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "device": getattr(device, "device_kind", str(device)),
        "devices": len(jax.devices()),
        "python": platform.python_version(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


class LoadMeter:
    """CPU time of all processes (from /proc/stat) minus this process's, over a timed interval, in cores."""

    def __init__(self):
        self.available = Path("/proc/stat").exists()

    @staticmethod
    def _busy_seconds() -> float:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        values = [int(v) for v in fields]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        busy = sum(values[:8]) - idle  # user nice system idle iowait irq softirq steal (guest is in user)
        return busy / os.sysconf("SC_CLK_TCK")

    def __enter__(self):
        if self.available:
            self._t, self._busy, self._own = time.perf_counter(), self._busy_seconds(), time.process_time()
        return self

    def __exit__(self, *exc):
        if self.available:
            wall = time.perf_counter() - self._t
            other = (self._busy_seconds() - self._busy) - (time.process_time() - self._own)
            self.background = max(other, 0.0) / max(wall, 1e-9)
        else:
            self.background = float("nan")
        return False


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


# ----------------------------------------------------------------------------------------------------
# Timing


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


def random_arrays(size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """`size` random transitions as one trajectory (next_observations[i] = observations[i + 1]), with 1%
    terminals and a timeout at the end, so that d3rlpy's MDPDataset and our Dataset hold the same data."""
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((size + 1, OBS_DIM)).astype(np.float32)
    timeouts = np.zeros(size, bool)
    timeouts[-1] = True
    arrays = {
        "observations": obs[:-1],
        "actions": rng.uniform(-1.0, 1.0, (size, ACTION_DIM)).astype(np.float32),
        "rewards": rng.standard_normal(size).astype(np.float32),
        "next_observations": obs[1:],
        "terminals": rng.random(size) < 0.01,
        "timeouts": timeouts,
    }
    arrays["next_actions"] = next_actions(arrays)  # ReBRAC's critic penalty needs them
    return arrays


def stack(agent, members: int):
    """Members stacked along a leading axis, as the trainer does for a sweep."""
    return jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x, jnp.float32), (members,)), agent)


def seed_keys(members: int):
    return jnp.stack([jax.random.PRNGKey(i) for i in range(members)])


# ----------------------------------------------------------------------------------------------------
# 1. Offline agents: ours (1, 4, 16 vmapped seeds) and d3rlpy's equivalents


def offline_spec():
    return envs.EnvSpec(
        name="random",
        obs_shape=(OBS_DIM,),
        action_shape=(ACTION_DIM,),
        action_low=(-1.0,) * ACTION_DIM,
        action_high=(1.0,) * ACTION_DIM,
        max_episode_steps=1000,
    )


def our_agent(algo: str, hidden_dims: tuple[int, ...]):
    """Defaults of `make_agent(algo)` except the network sizes (cql, rebrac, sac-n and edac default to 3x256)."""
    return make_agent(algo, hidden_dims=hidden_dims).configure(offline_spec(), 1_000_000)


def offline_config(dataset: Dataset, batch_size: int, hidden_dims: tuple[int, ...]) -> str:
    nets = "x".join(map(str, hidden_dims)) if len(set(hidden_dims)) > 1 else f"{len(hidden_dims)}x{hidden_dims[0]}"
    return f"{nets} nets, batch {batch_size}, obs {OBS_DIM}/act {ACTION_DIM}, {dataset.size // 1000}k random transitions"


@dataclass
class Calibration:
    flops: float | None  # XLA's flop count of one update (one seed)
    update_s: float  # seconds per call of the jitted single update (dispatch included): sizes the chunks


def calibrate(agent, dataset: Dataset, batch_size: int, seconds: float) -> Calibration:
    """Compile one seed's `update` alone: its flop count (XLA cost analysis) and a rough time per update."""
    state = agent.init(jax.random.PRNGKey(0))
    batch = jax.tree.map(lambda x: x[:batch_size], dataset)
    key = jax.random.PRNGKey(1)
    compiled = jax.jit(agent.update).lower(state, batch, key).compile()
    flops = None
    try:
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        flops = float(cost["flops"]) or None
    except Exception as err:  # cost analysis is best-effort and backend-dependent
        print(f"  (flop count unavailable: {err})")
    state = jax.block_until_ready(compiled(state, batch, key))[0]
    calls, t = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - t < seconds:
        state = jax.block_until_ready(compiled(state, batch, key))[0]
        calls += 1
    return Calibration(flops, (time.perf_counter() - t) / calls)


def matmul_gflops(n: int = 2048, seconds: float = 1.0) -> float:
    """GFLOP/s of a large float32 matmul through XLA: a practical ceiling for the updates' GFLOP/s."""
    x = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    jax.block_until_ready(f(x))
    calls, t = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - t < seconds:
        jax.block_until_ready(f(x))
        calls += 1
    return 2 * n**3 * calls / (time.perf_counter() - t) / 1e9


def nice(x: float, low: int, high: int) -> int:
    """`x` rounded to two significant digits, within [low, high]."""
    x = min(max(x, low), high)
    scale = 10 ** max(math.floor(math.log10(x)) - 1, 0)
    return int(round(x / scale) * scale)


def bench_ours(
    algo: str,
    agent,
    dataset: Dataset,
    members: int,
    chunk_steps: int,
    repeats: int,
    batch_size: int,
    eval_env,
    quiet_wait: float,
    flops: float | None,
    hidden_dims: tuple[int, ...],
) -> Result:
    """`members` seeds of `agent` vmapped in one offline program."""
    program = build_offline_program(
        stack(agent, members),
        dataset,
        Normalizer.identity(OBS_DIM),
        eval_env,
        chunk_steps=chunk_steps,
        batch_size=batch_size,
        eval_episodes=1,
    )
    label = f"{algo} (jaxrl) x{members}"
    states = jax.block_until_ready(program.init(seed_keys(members)))
    timing = time_program(program.chunk, states, repeats, label, quiet_wait)
    check_updates(label, states.agent.step, timing.state.agent.step, timing.calls * chunk_steps)
    unit = "updates/s" if members == 1 else "member-updates/s"
    plural = "s" if members > 1 else ""
    config = f"{offline_config(dataset, batch_size, hidden_dims)}, {members} seed{plural}, chunk {chunk_steps}"
    name = f"{algo} offline, jaxrl, {members} seed{plural}"
    return Result.of(name, config, timing, chunk_steps, members, unit, algo=algo, flops=flops)


HOST_PATTERNS = ("callback", "outfeed", "infeed", "host", "send", "recv")


def check_host_round_trips(algo: str, agent, chunk_steps: int, batch_size: int, eval_env) -> str:
    """Compile a 1-seed offline chunk ahead of time and look for host callbacks or transfers in it.

    `jax.jit` of `program.chunk` bakes the dataset in as a constant, so a small one is used: the
    program's structure does not depend on the dataset's size.
    """
    try:
        program = build_offline_program(
            stack(agent, 1),
            Dataset.from_numpy(**random_arrays(1000)),
            Normalizer.identity(OBS_DIM),
            eval_env,
            chunk_steps=chunk_steps,
            batch_size=batch_size,
            eval_episodes=1,
        )
        states = program.init(seed_keys(1))
        text = jax.jit(program.chunk).lower(states, 0).compile().as_text()
    except Exception as err:  # best-effort inspection of the compiled program
        return f"host round-trip check of the compiled 1-seed {algo} chunk unavailable ({type(err).__name__}: {err})"
    return f"compiled 1-seed {algo} chunk: {host_round_trips(text)}"


def host_round_trips(hlo_text: str) -> str:
    """Host callbacks or transfers, while loops and custom calls in a compiled program's HLO text."""
    targets = sorted(set(re.findall(r'custom_call_target="([^"]+)"', hlo_text)))
    opcodes = []
    for line in hlo_text.splitlines():
        m = re.match(r"\s*(?:ROOT\s+)?%\S+\s*=\s*(.*)", line)
        if m and (op := re.search(r"([a-z][a-z0-9-]*)\(", m.group(1))):
            opcodes.append(op.group(1))
    suspicious = sorted(
        {op for op in opcodes if any(p in op for p in HOST_PATTERNS)}
        | {t for t in targets if any(p in t.lower() for p in HOST_PATTERNS)}
    )
    whiles = sum(op == "while" for op in opcodes)
    found = ", ".join(suspicious) if suspicious else "none"
    return f"host callbacks/transfers: {found}; while loops: {whiles}; custom calls: {', '.join(targets) or 'none'}"


# d3rlpy ------------------------------------------------------------------------------------------


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


PRESAMPLED_BATCHES = 16


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
        return _bench_d3rlpy(d3rlpy, label, make_config, mdp, batch_size, chunk_seconds, repeats, quiet_wait, setting, threads)
    finally:
        torch.set_num_threads(default)


def _bench_d3rlpy(d3rlpy, label, make_config, mdp, batch_size, chunk_seconds, repeats, quiet_wait, setting, threads) -> Result:
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

    def __init__(self, args, arrays: dict[str, np.ndarray], dataset: Dataset, repeats: int, chunk_seconds: float):
        self.args, self.repeats, self.chunk_seconds = args, repeats, chunk_seconds
        self.setting = offline_config(dataset, args.batch_size, tuple(args.hidden_dims))
        self.notes: list[str] = []
        self.by_label: dict[str, list[Result]] = {}
        self.sampling_ms: float | None = None
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


def bench_offline(args, repeats: int, chunk_seconds: float, eval_env) -> tuple[list[Result], dict, list[str], int | None]:
    """For every algorithm: ours with 1 seed, d3rlpy's equivalent, ours with more seeds. Returns the results,
    the d3rlpy results of each algorithm (one per torch thread setting), notes, and torch's default thread count."""
    hidden = tuple(args.hidden_dims)
    arrays = random_arrays(args.dataset_size)
    dataset = Dataset.from_numpy(**arrays)
    theirs_side = None if "d3rlpy" in args.skip else D3rlpySide(args, arrays, dataset, repeats, chunk_seconds)
    results: list[Result] = []
    theirs: dict[str, list[Result]] = {}
    for algo in args.algos:
        agent = our_agent(algo, hidden)
        print(f"{algo} (jaxrl): calibrating", flush=True)
        cal = calibrate(agent, dataset, args.batch_size, 0.5 if not args.quick else 0.2)
        flop_text = f"{cal.flops / 1e6:.0f} MFLOP/update, " if cal.flops else ""
        print(f"  {flop_text}~{cal.update_s * 1e3:.2f} ms per jitted update", flush=True)
        update_s = cal.update_s
        for members in args.seeds:
            if args.chunk:
                chunk = args.chunk if members == 1 else nice(args.chunk / members, 2, args.chunk)
            else:
                chunk = nice(chunk_seconds / (update_s * members), 2, 5000)
            print(f"{algo} offline (jaxrl), {members} seed{'s' if members > 1 else ''}, chunk {chunk}", flush=True)
            wait_quiet(args.wait_quiet)
            result = bench_ours(
                algo, agent, dataset, members, chunk, repeats, args.batch_size, eval_env, args.wait_quiet, cal.flops, hidden
            )
            results.append(result)
            if members == 1:
                update_s = 1.0 / result.rate  # the measured program rate sizes the multi-seed chunks
            if members == args.seeds[0] and theirs_side is not None:  # right after ours with 1 seed
                measured, new = theirs_side.measure(algo)
                if measured:
                    theirs[algo] = measured
                    if new:
                        results += measured
    notes: list[str] = []
    wait_quiet(args.wait_quiet)
    with LoadMeter() as meter:
        peak = matmul_gflops()
    print(f"XLA float32 2048x2048 matmul: {peak:.0f} GFLOP/s (background load {meter.background:.2f} cores)", flush=True)
    notes.append(
        f"reference ceiling: a 2048x2048 float32 matmul runs at {peak:.0f} GFLOP/s through XLA here "
        f"(background load {meter.background:.2f} cores); the GFLOP/s columns use XLA's flop count of one update"
    )
    if "hlo" not in args.skip and args.algos:
        algo = "iql" if "iql" in args.algos else args.algos[0]  # one extra compilation
        print(f"checking the compiled {algo} chunk for host round trips", flush=True)
        finding = check_host_round_trips(algo, our_agent(algo, hidden), 100, args.batch_size, eval_env)
        print(f"  {finding}", flush=True)
        notes.append(finding)
    default_threads = None
    if theirs_side is not None:
        notes += theirs_side.method_notes()
        default_threads = getattr(theirs_side, "default_threads", None)
    return results, theirs, notes, default_threads


# ----------------------------------------------------------------------------------------------------
# 2. SAC online, ours and rejax


def bench_sac_ours(
    chunk_steps: int, repeats: int, learning_starts: int, buffer_size: int, batch_size: int, quiet_wait: float
) -> Result:
    env = envs.make("gymnax/Pendulum-v1")
    agent = SAC(hidden_dims=(64, 64)).configure(env.spec, 1_000_000)
    program = build_online_program(
        stack(agent, 1),
        env,
        chunk_steps=chunk_steps,
        num_envs=1,
        batch_size=batch_size,
        utd=1,
        learning_starts=learning_starts,
        buffer_size=buffer_size,
        eval_episodes=1,
    )
    states = jax.block_until_ready(program.init(seed_keys(1)))
    # chunk 0 contains the `learning_starts` random steps; every later chunk makes one update per env step
    timing = time_program(program.chunk, states, repeats, "SAC (jaxrl)", quiet_wait)
    check_updates("SAC (jaxrl)", states.agent.step, timing.state.agent.step, timing.calls * chunk_steps - learning_starts)
    config = f"Pendulum-v1, 64x64, batch {batch_size}, 1 env, 1 update/env step, chunk {chunk_steps}"
    return Result.of("SAC online, jaxrl", config, timing, chunk_steps, 1, "env steps/s")


class FiveTupleStep:
    """gymnax >= 1.0 returns (obs, state, reward, terminated, truncated, info) from `step`; rejax 0.1.3
    unpacks the older (obs, state, reward, done, info). This adapter gives rejax the older form, with
    done = terminated or truncated (what old gymnax returned); it adds no work beyond an `or`."""

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name):
        if name == "env":  # not set yet (copy/deepcopy build the object without __init__)
            raise AttributeError(name)
        return getattr(self.env, name)

    def step(self, key, state, action, params=None):
        out = self.env.step(key, state, action, params)
        if len(out) == 5:
            return out
        obs, state, reward, terminated, truncated, info = out
        return obs, state, reward, jnp.logical_or(terminated, truncated), info


def bench_sac_rejax(
    chunk_steps: int, repeats: int, learning_starts: int, buffer_size: int, batch_size: int, quiet_wait: float
) -> Result | str:
    try:
        import gymnax
        import rejax
    except ImportError as err:
        return f"rejax not importable ({err}); skipped (install the bench extra: pip install -e '.[bench]')"

    version = getattr(rejax, "__version__", None)
    if version is None:
        try:
            from importlib.metadata import version as dist_version

            version = dist_version("rejax")
        except Exception:
            version = "?"
    # One `train` call runs `chunk_steps` env steps and is resumed from the returned train state, so
    # every timed call after the first is pure steady state (updates start once global_step > fill_buffer).
    gymnax_env, env_params = gymnax.make("Pendulum-v1")
    algo = rejax.SAC.create(
        env=FiveTupleStep(gymnax_env),
        env_params=env_params,
        hidden_layer_sizes=(64, 64),
        num_envs=1,
        batch_size=batch_size,
        buffer_size=buffer_size,
        fill_buffer=learning_starts,
        num_epochs=1,  # gradient steps per env step (per train iteration with 1 env)
        total_timesteps=chunk_steps,
        eval_freq=chunk_steps,
        skip_initial_evaluation=True,
        learning_rate=3e-4,
        polyak=0.995,  # tau = 0.005, as ours
    )
    algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))  # no evaluation inside train
    train = jax.jit(lambda ts: algo.train(train_state=ts))
    ts = jax.block_until_ready(jax.jit(algo.init_state)(jax.random.PRNGKey(0)))
    timing = time_program(lambda ts, i: train(ts), ts, repeats, f"SAC (rejax {version})", quiet_wait)
    # rejax updates once global_step (counted after the env step) exceeds fill_buffer
    check_updates(
        f"SAC (rejax {version})", ts.actor_ts.step, timing.state.actor_ts.step, timing.calls * chunk_steps - learning_starts
    )
    config = f"Pendulum-v1, 64x64, batch {batch_size}, 1 env, 1 update/env step, chunk {chunk_steps}"
    return Result.of(f"SAC online, rejax {version}", config, timing, chunk_steps, 1, "env steps/s")


# ----------------------------------------------------------------------------------------------------
# Report


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def fmt_load(r: Result) -> str:
    return f"{statistics.median(r.background):.2f}" if r.background else "n/a"


def thread_label(threads: int, default: int | None) -> str:
    return f"{threads} thread{'s' if threads > 1 else ''}" + (" (torch default)" if threads == default else "")


def ratios(one: Result, theirs: list[Result], default: int | None) -> tuple[float | None, float | None]:
    """ours(1 seed) / d3rlpy with torch's default threads, and / the fastest d3rlpy thread setting."""
    if not theirs:
        return None, None
    base = next((r for r in theirs if r.threads == default), None)
    fastest = max(theirs, key=lambda r: r.rate)
    return (one.member_rate / base.rate if base else None), one.member_rate / fastest.rate


def offline_table(
    results: list[Result], theirs: dict[str, list[Result]], algos: list[str], seeds: list[int], default: int | None
) -> str:
    """One row per offline algorithm: d3rlpy, ours for each seed count, the ratio ours(1 seed)/d3rlpy."""
    multi = [m for m in seeds if m != 1]
    settings = list(dict.fromkeys(r.threads for rs in theirs.values() for r in rs))
    head = ["algorithm", "d3rlpy equivalent"]
    head += [f"d3rlpy updates/s, {thread_label(t, default)}" for t in settings]
    head += ["jaxrl 1 seed updates/s", "jaxrl / d3rlpy" + (f" ({default} threads)" if len(settings) > 1 else "")]
    if len(settings) > 1:
        head.append("jaxrl / fastest d3rlpy")
    head.append("goal (ours / d3rlpy" + (f", {default} threads)" if len(settings) > 1 else ")"))
    head += [f"jaxrl {m} seeds member-updates/s (per program step)" for m in multi]
    head += [f"first call s (compile s), {' / '.join(map(str, seeds))} seeds", "MFLOP per update", "GFLOP/s, 1 seed"]
    head += ["background load (cores, max)"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for algo in algos:
        ours = {r.members: r for r in results if r.algo == algo and r.library == "jaxrl"}
        if not ours:
            continue
        d3 = {r.threads: r for r in theirs.get(algo, [])}
        one = ours.get(1)
        base, best = ratios(one, list(d3.values()), default) if one else (None, None)
        goal = ""
        if algo in GOALS:
            status = lambda x, g=GOALS[algo]: "met" if x >= g else "missed"  # noqa: E731
            goal = f">= {GOALS[algo]:g}x" + ("" if base is None else f": {status(base)}")
            if len(settings) > 1 and best is not None:
                goal += f" (vs fastest: {status(best)})"
        label = next(iter(d3.values())).name.split(", d3rlpy")[0] if d3 else "-"
        cells = [algo, label]
        for t in settings:
            r = d3.get(t)
            cells.append(f"{fmt_rate(r.rate)} [{fmt_rate(min(r.rates))}-{fmt_rate(max(r.rates))}]" if r else "-")
        cells.append(f"**{fmt_rate(one.member_rate)}** [{fmt_rate(min(one.rates))}-{fmt_rate(max(one.rates))}]" if one else "-")
        cells.append(f"**{base:.1f}x**" if base is not None else "-")
        if len(settings) > 1:
            cells.append(f"{best:.1f}x" if best is not None else "-")
        cells.append(goal)
        for m in multi:
            r = ours.get(m)
            cells.append(f"{fmt_rate(r.member_rate)} ({fmt_rate(r.rate)})" if r else "-")
        cells.append(" / ".join(f"{ours[m].first_call_s:.1f} ({ours[m].compile_s:.1f})" if m in ours else "-" for m in seeds))
        flops = next((r.flops for r in ours.values() if r.flops), None)
        cells.append(f"{flops / 1e6:.0f}" if flops else "n/a")
        cells.append(f"{one.member_rate * flops / 1e9:.0f}" if (one and flops) else "n/a")
        loads = [statistics.median(r.background) for r in [*ours.values(), *d3.values()] if r.background]
        cells.append(f"{max(loads):.2f}" if loads else "n/a")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def table(results: list[Result], ratio: float | None) -> str:
    rows = [
        "| benchmark | setting | first call s (compile s) | steady-state throughput [min-max] | per program step | background load (cores) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        member_rates = [x * r.members for x in r.rates]
        throughput = f"**{fmt_rate(r.member_rate)}** {r.unit} [{fmt_rate(min(member_rates))}-{fmt_rate(max(member_rates))}]"
        step_unit = "updates/s" if "updates" in r.unit else r.unit
        per_step = f"{fmt_rate(r.rate)} {step_unit}"
        if r.flops:
            per_step += f" ({r.member_rate * r.flops / 1e9:.0f} GFLOP/s)"
        timed = f"{len(r.chunk_s)} x {r.steps_per_chunk}"
        compile_note = f"{r.first_call_s:.1f} ({r.compile_s:.1f})" + (f" + {len(r.recompiles)} recompile" if r.recompiles else "")
        rows.append(f"| {r.name} | {r.config}; timed {timed} | {compile_note} | {throughput} | {per_step} | {fmt_load(r)} |")
    if ratio is not None:
        rows.append(f"| SAC jaxrl / rejax | same settings | | **{ratio:.2f}x** | | |")
    return "\n".join(rows)


def section(key: str, date: str, info: dict, command: str, body: str, notes: list[str]) -> str:
    flags = ", ".join(info["cpu_flags"]) or "n/a"
    lines = [
        SECTION_BEGIN.format(key=key),
        f"## {date}: {info['cpu']}, {info['cores']} cores",
        "",
        f"- date (UTC): {date}",
        f"- machine: {info['cpu']} ({info['cores']} cores available; {flags}), Python {info['python']}",
        f"- jax {info['jax']}, backend `{info['backend']}`, device {info['device']} x{info['devices']}"
        + (f", XLA_FLAGS=`{info['xla_flags']}`" if info["xla_flags"] else ""),
        f"- command: `{command}`",
        "",
        body,
        "",
        *[f"- {n}" for n in notes],
        SECTION_END,
    ]
    return "\n".join(lines).rstrip() + "\n"


def write_section(path: Path, key: str, text: str) -> None:
    """Insert `text` at the top of the sections, replacing an older section with the same key."""
    old = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(SECTION_BEGIN.format(key=key)) + r".*?" + re.escape(SECTION_END) + r"\n?", re.S)
    old = pattern.sub("", old)
    first = old.find("<!-- bench-section ")
    if first >= 0:
        head, rest = old[:first], old[first:]
    else:
        head, rest = old, ""
    if not head.strip():
        head = HEADER
    path.write_text(head.rstrip() + "\n\n" + text + ("\n" + rest.lstrip() if rest.strip() else ""))


def utc_date() -> str:
    try:
        return subprocess.run(["date", "-u", "+%Y-%m-%d"], check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: short chunks and 2 timed chunks per benchmark")
    parser.add_argument(
        "--write", action="store_true", help="record the result as a dated section of BENCHMARKS.md at the repo root"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="record the result as a dated section of this markdown file (implies --write; make bench uses it)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed chunks per benchmark (default 5, quick 2)")
    parser.add_argument(
        "--algos", nargs="+", default=list(OFFLINE_ALGOS), choices=OFFLINE_ALGOS, help="offline algorithms to measure"
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=None,
        help="vmapped seed counts of our offline programs (default 1 4 16, quick 1 4)",
    )
    parser.add_argument(
        "--chunk-seconds",
        type=float,
        default=None,
        help="target duration of one timed chunk; sizes the offline chunks (default 1.5, quick 0.3)",
    )
    parser.add_argument(
        "--chunk", type=int, default=None, help="updates per chunk of our 1-seed offline programs (default: from --chunk-seconds)"
    )
    parser.add_argument(
        "--hidden-dims", nargs="+", type=int, default=[256, 256], help="hidden layers of every offline network, both sides"
    )
    parser.add_argument(
        "--torch-threads",
        nargs="+",
        type=int,
        default=[0, 1],
        help="torch intra-op thread counts to measure d3rlpy with; 0 = torch's default (default: 0 1)",
    )
    parser.add_argument("--dataset-size", type=int, default=100_000, help="random transitions in the offline dataset")
    parser.add_argument("--sac-chunk", type=int, default=None, help="env steps per SAC chunk (default 5000, quick 1000)")
    parser.add_argument(
        "--learning-starts", type=int, default=None, help="random env steps before SAC updates (default 1000, quick 500)"
    )
    parser.add_argument("--buffer-size", type=int, default=100_000, help="SAC replay buffer capacity (ours and rejax)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=120.0,
        metavar="S",
        help="before each benchmark, wait up to S seconds for other processes to go quiet, and re-run timed chunks "
        "during which they used more than half a core (default 120; 0 measures whatever the load)",
    )
    parser.add_argument(
        "--wait-quiet-total",
        type=float,
        default=900.0,
        metavar="S",
        help="the most the whole run spends waiting and re-running disturbed chunks (default 900); then it measures anyway",
    )
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["offline", "multi", "d3rlpy", "sac", "rejax", "hlo"],
        help="benchmarks to leave out (multi: the offline programs with more than one seed)",
    )
    args = parser.parse_args(argv)

    quick = args.quick
    repeats = args.repeats or (2 if quick else 5)
    chunk_seconds = args.chunk_seconds or (0.3 if quick else 1.5)
    sac_chunk = args.sac_chunk or (1000 if quick else 5000)
    learning_starts = args.learning_starts if args.learning_starts is not None else (500 if quick else 1000)
    if learning_starts > sac_chunk:
        parser.error("--learning-starts must be <= --sac-chunk so that every timed SAC chunk makes one update per env step")
    args.seeds = args.seeds or ([1, 4] if quick else [1, 4, 16])
    if any(m < 1 for m in args.seeds):
        parser.error("--seeds must be positive")
    args.seeds = sorted(set(args.seeds))
    if "multi" in args.skip:
        args.seeds = [1]
    args.algos = list(dict.fromkeys(args.algos))
    QUIET.reset(args.wait_quiet_total)

    command = "python scripts/bench.py" + (
        "" if not (argv if argv is not None else sys.argv[1:]) else " " + shlex.join(argv if argv is not None else sys.argv[1:])
    )
    info = machine_info()
    date = utc_date()
    print(
        f"{date} | {info['cpu']} | {info['cores']} cores | jax {info['jax']} ({info['backend']}, {info['device']}) | load average {loadavg()}",
        flush=True,
    )
    start = time.perf_counter()

    results: list[Result] = []
    notes: list[str] = []
    theirs: dict[str, list[Result]] = {}
    default_threads = None
    eval_env = envs.make("gymnax/Pendulum-v1")  # only needed to build the programs' evaluate; not timed
    if "offline" not in args.skip:
        offline, theirs, offline_notes, default_threads = bench_offline(args, repeats, chunk_seconds, eval_env)
        results += offline
        notes += offline_notes
        for algo in args.algos:
            one = next((r for r in offline if r.algo == algo and r.members == 1 and r.library == "jaxrl"), None)
            if one is None or not theirs.get(algo):
                continue
            base, best = ratios(one, theirs[algo], default_threads)
            fastest = max(theirs[algo], key=lambda r: r.rate)
            default = next((r for r in theirs[algo] if r.threads == default_threads), None)
            if default is not None and fastest is not default:
                notes.append(
                    f"{algo}: d3rlpy is faster with {thread_label(fastest.threads, None)} than with torch's default "
                    f"({fmt_rate(fastest.rate)} vs {fmt_rate(default.rate)} updates/s); against that, ours is {best:.1f}x"
                )
            if algo in GOALS and base is not None and base < GOALS[algo]:
                d3_rate = one.member_rate / base
                needed = GOALS[algo] * d3_rate
                compute = ""
                if one.flops:
                    compute = (
                        f"; at XLA's {one.flops / 1e6:.0f} MFLOP per update that takes {needed * one.flops / 1e9:.0f} GFLOP/s, "
                        f"ours runs at {one.member_rate * one.flops / 1e9:.0f} GFLOP/s (d3rlpy's rate with the same flop count "
                        f"would be {d3_rate * one.flops / 1e9:.0f} GFLOP/s)"
                    )
                notes.append(
                    f"{algo}: goal >= {GOALS[algo]:g}x d3rlpy missed: {base:.1f}x, i.e. {base / GOALS[algo]:.0%} of the goal "
                    f"({fmt_rate(one.member_rate)} vs the {fmt_rate(needed)} updates/s it would take){compute}"
                )
        if any(a in args.algos for a in ("td3bc", "rebrac")):
            notes.append(
                "td3bc/rebrac: like d3rlpy, ours computes the actor gradient only on every 2nd update (policy_freq=2, a `lax.cond` "
                "on the trainer's unbatched step); on the other updates it still evaluates the actor loss, forward only, for the log"
            )

    ratio = None
    if "sac" not in args.skip:
        print("SAC online (jaxrl)", flush=True)
        wait_quiet(args.wait_quiet)
        ours = bench_sac_ours(sac_chunk, repeats, learning_starts, args.buffer_size, args.batch_size, args.wait_quiet)
        results.append(ours)
        if "rejax" not in args.skip:
            print("SAC online (rejax)", flush=True)
            wait_quiet(args.wait_quiet)
            rejax_result = bench_sac_rejax(
                sac_chunk, repeats, learning_starts, args.buffer_size, args.batch_size, args.wait_quiet
            )
            if isinstance(rejax_result, str):
                print(f"  {rejax_result}")
                notes.append(rejax_result)
            else:
                results.append(rejax_result)
                ratio = ours.rate / rejax_result.rate
                notes.append(
                    "rejax SAC is timed the same way: `jax.jit` of `algo.train(train_state=ts)` for one chunk of env steps, resumed from the returned state, "
                    f"with fill_buffer={learning_starts}, num_epochs=1, polyak=0.995, buffer_size={args.buffer_size} and evaluation replaced by a no-op; "
                    "its gymnax env is given the 5-tuple `step` that rejax 0.1.3 expects (gymnax 1.x returns 6 values)"
                )
                notes.append(
                    "rejax 0.1.3 samples each minibatch without replacement (`jax.random.choice(..., replace=False, p=...)` over the whole "
                    "buffer capacity), which costs O(buffer_size) per update; jaxrl samples with replacement (`randint` over the filled part)"
                )
    for r in results:
        for rc in r.recompiles:
            notes.append(f"{r.name}: {rc}; that call is not counted and its compile time is included in the compile column")
        if r.discarded:
            notes.append(
                f"{r.name}: {r.discarded} timed chunk(s) ran while other processes were busy and were dropped and re-run"
            )
    loads = [statistics.median(r.background) for r in results if r.background]
    if loads and max(loads) > 0.5:
        busy = [r.name for r in results if r.background and statistics.median(r.background) > 0.5]
        notes.append(
            f"taken under load: {len(busy)} of {len(results)} benchmarks ran with a median background load above 0.5 cores "
            f"(max {max(loads):.2f} on {info['cores']} cores); those numbers are lower than on a quiet machine"
        )
    if QUIET.spent > 0:
        notes.append(f"waited {QUIET.spent:.0f} s in all for other processes to go quiet (budget {args.wait_quiet_total:.0f} s)")
    notes.append(f"load average at the end of the run: {loadavg()}; whole run {time.perf_counter() - start:.0f} s")
    if quick:
        notes.append("quick mode: short chunks, few repeats; indicative only")

    parts = []
    if any(r.algo for r in results):
        parts.append(offline_table(results, theirs, args.algos, args.seeds, default_threads))
    parts.append(table(results, ratio))
    body = "\n\n".join(parts)
    print()
    print(body)
    for n in notes:
        print(f"- {n}")
    output = args.output or (ROOT / "BENCHMARKS.md" if args.write else None)
    if output is not None:
        key = f"{date} {info['cpu']} {info['cores']}c {info['backend']}{' quick' if quick else ''}"
        write_section(output, key, section(key, date, info, command, body, notes))
        print(f"\nwrote a section to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
