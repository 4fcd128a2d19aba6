"""Throughput benchmarks of the compiled training programs, on whatever machine JAX runs on.

    python scripts/bench.py                  # default: a few minutes on a 2-core CPU, prints a table
    python scripts/bench.py --quick          # smoke run: short chunks, fewer repeats
    python scripts/bench.py --write          # also record the result as a dated section of BENCHMARKS.md
    python scripts/bench.py --output F.md    # ... of F.md (what `make bench` runs, with F.md = BENCHMARKS.md)

Measured:
  1. IQL offline updates/s (2x256 MLPs, batch 256, obs 17 / action 6, 100k random transitions) through
     `build_offline_program`, for 1 seed and for 8 seeds vmapped in one program.
  2. SAC online env steps/s on gymnax Pendulum-v1 (64x64, batch 256, 1 env, one update per env step)
     through `build_online_program`, next to rejax's SAC with the same settings (if rejax is installed:
     `pip install -e '.[bench]'`).

Every measurement times whole chunks (one `lax.scan` each) with `jax.block_until_ready`. The first call
(compile + one chunk) is reported separately; throughput is the median over the timed chunks that follow.
Because a busy machine slows everything down, the CPU time used by other processes during the timed
chunks is measured from /proc/stat and reported as "background load".
"""

from __future__ import annotations

import argparse
import datetime
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
from jaxrl.agents.iql import IQL  # noqa: E402
from jaxrl.agents.sac import SAC  # noqa: E402
from jaxrl.data.dataset import Dataset, ObsNormalizer  # noqa: E402
from jaxrl.trainer import build_offline_program, build_online_program  # noqa: E402

OBS_DIM, ACTION_DIM = 17, 6
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

    @classmethod
    def of(cls, name: str, config: str, timing: Timing, steps_per_chunk: int, members: int, unit: str) -> "Result":
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
        )

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
    `busy` cores is dropped too (at most 2 x `repeats` times), after waiting for the machine to go quiet.
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
        if quiet_wait > 0 and meter.background > busy and discarded < 2 * repeats:
            discarded += 1
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


def wait_quiet(max_seconds: float, threshold: float = 0.25) -> None:
    """Wait (up to `max_seconds`) until other processes use less than `threshold` cores over one second."""
    if max_seconds <= 0 or not LoadMeter().available:
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
            return
        if waited > max_seconds:
            print(f"  machine still busy ({meter.background:.2f} cores of background load); measuring anyway", flush=True)
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


def random_dataset(size: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    return Dataset.from_numpy(
        observations=rng.standard_normal((size, OBS_DIM)),
        actions=rng.uniform(-1.0, 1.0, (size, ACTION_DIM)),
        rewards=rng.standard_normal(size),
        next_observations=rng.standard_normal((size, OBS_DIM)),
        terminals=rng.random(size) < 0.01,
        timeouts=np.zeros(size),
    )


def stack(agent, members: int):
    """Members stacked along a leading axis, as the trainer does for a sweep."""
    return jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x, jnp.float32), (members,)), agent)


def seed_keys(members: int):
    return jnp.stack([jax.random.PRNGKey(i) for i in range(members)])


# ----------------------------------------------------------------------------------------------------
# 1. IQL offline


def iql_spec():
    return envs.EnvSpec(
        name="random",
        obs_shape=(OBS_DIM,),
        action_shape=(ACTION_DIM,),
        action_low=(-1.0,) * ACTION_DIM,
        action_high=(1.0,) * ACTION_DIM,
        max_episode_steps=1000,
    )


def bench_iql(
    dataset: Dataset, members: int, chunk_steps: int, repeats: int, batch_size: int, eval_env, quiet_wait: float
) -> Result:
    agent = IQL(hidden_dims=(256, 256)).configure(iql_spec(), 1_000_000)
    program = build_offline_program(
        stack(agent, members),
        dataset,
        ObsNormalizer.identity(OBS_DIM),
        eval_env,
        chunk_steps=chunk_steps,
        batch_size=batch_size,
        eval_episodes=1,
    )
    states = jax.block_until_ready(program.init(seed_keys(members)))
    timing = time_program(program.chunk, states, repeats, f"IQL x{members}", quiet_wait)
    check_updates(f"IQL x{members}", states.agent.step, timing.state.agent.step, timing.calls * chunk_steps)
    unit = "updates/s" if members == 1 else "member-updates/s"
    plural = "s" if members > 1 else ""
    config = f"2x256 MLPs, batch {batch_size}, obs {OBS_DIM}/act {ACTION_DIM}, {dataset.size // 1000}k random transitions, {members} seed{plural}, chunk {chunk_steps}"
    return Result.of(f"IQL offline, {members} seed{plural}", config, timing, chunk_steps, members, unit)


def iql_flops_per_update(batch_size: int) -> float | None:
    """XLA's flop count of one IQL update (one seed), from the compiled HLO's cost analysis."""
    try:
        agent = IQL(hidden_dims=(256, 256)).configure(iql_spec(), 1_000_000)
        state = agent.init(jax.random.PRNGKey(0))
        batch = jax.tree.map(lambda x: x[:batch_size], random_dataset(batch_size))
        cost = jax.jit(agent.update).lower(state, batch, jax.random.PRNGKey(1)).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        return float(cost["flops"])
    except Exception as err:  # cost analysis is best-effort and backend-dependent
        print(f"  (flop count unavailable: {err})")
        return None


HOST_PATTERNS = ("callback", "outfeed", "infeed", "host", "send", "recv")


def check_host_round_trips(chunk_steps: int, batch_size: int, eval_env) -> str:
    """Compile the 1-seed offline chunk ahead of time and look for host callbacks or transfers in it.

    The outer `jax.jit` bakes the dataset in as a constant, so a small one is used: the program's
    structure does not depend on the dataset's size.
    """
    dataset = random_dataset(1000)
    agent = IQL(hidden_dims=(256, 256)).configure(iql_spec(), 1_000_000)
    program = build_offline_program(
        stack(agent, 1),
        dataset,
        ObsNormalizer.identity(OBS_DIM),
        eval_env,
        chunk_steps=chunk_steps,
        batch_size=batch_size,
        eval_episodes=1,
    )
    states = program.init(seed_keys(1))
    text = jax.jit(program.chunk).lower(states, 0).compile().as_text()
    targets = sorted(set(re.findall(r'custom_call_target="([^"]+)"', text)))
    opcodes = []
    for line in text.splitlines():
        m = re.match(r"\s*(?:ROOT\s+)?%\S+\s*=\s*(.*)", line)
        if m and (op := re.search(r"([a-z][a-z0-9-]*)\(", m.group(1))):
            opcodes.append(op.group(1))
    suspicious = sorted(
        {op for op in opcodes if any(p in op for p in HOST_PATTERNS)}
        | {t for t in targets if any(p in t.lower() for p in HOST_PATTERNS)}
    )
    whiles = sum(op == "while" for op in opcodes)
    found = ", ".join(suspicious) if suspicious else "none"
    return f"host callbacks/transfers in the compiled IQL chunk: {found}; while loops: {whiles}; custom calls: {', '.join(targets) or 'none'}"


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


def table(results: list[Result], ratio: float | None, flops: float | None) -> str:
    rows = [
        "| benchmark | setting | first call s (compile s) | steady-state throughput [min-max] | per program step | background load (cores) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        member_rates = [x * r.members for x in r.rates]
        throughput = f"**{fmt_rate(r.rate * r.members)}** {r.unit} [{fmt_rate(min(member_rates))}-{fmt_rate(max(member_rates))}]"
        step_unit = "updates/s" if "updates" in r.unit else r.unit
        per_step = f"{fmt_rate(r.rate)} {step_unit}"
        if flops and r.name.startswith("IQL"):
            per_step += f" ({r.rate * r.members * flops / 1e9:.0f} GFLOP/s)"
        load = f"{statistics.median(r.background):.2f}" if r.background else "n/a"
        timed = f"{len(r.chunk_s)} x {r.steps_per_chunk}"
        compile_note = f"{r.first_call_s:.1f} ({r.compile_s:.1f})" + (f" + {len(r.recompiles)} recompile" if r.recompiles else "")
        rows.append(f"| {r.name} | {r.config}; timed {timed} | {compile_note} | {throughput} | {per_step} | {load} |")
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
    parser.add_argument("--seeds", type=int, default=8, help="vmapped seeds of the multi-seed IQL benchmark")
    parser.add_argument("--iql-chunk", type=int, default=None, help="updates per chunk, 1 seed (default 1000, quick 200)")
    parser.add_argument("--iql-chunk-multi", type=int, default=None, help="updates per chunk, multi-seed (default 250, quick 50)")
    parser.add_argument("--dataset-size", type=int, default=100_000, help="random transitions in the IQL dataset")
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
        "--skip", nargs="*", default=[], choices=["iql", "iql-multi", "sac", "rejax", "hlo"], help="benchmarks to leave out"
    )
    args = parser.parse_args(argv)

    quick = args.quick
    repeats = args.repeats or (2 if quick else 5)
    iql_chunk = args.iql_chunk or (200 if quick else 1000)
    iql_chunk_multi = args.iql_chunk_multi or (50 if quick else 250)
    sac_chunk = args.sac_chunk or (1000 if quick else 5000)
    learning_starts = args.learning_starts if args.learning_starts is not None else (500 if quick else 1000)
    if learning_starts > sac_chunk:
        parser.error("--learning-starts must be <= --sac-chunk so that every timed SAC chunk makes one update per env step")

    command = "python scripts/bench.py" + (
        "" if not (argv if argv is not None else sys.argv[1:]) else " " + shlex.join(argv if argv is not None else sys.argv[1:])
    )
    info = machine_info()
    date = utc_date()
    print(
        f"{date} | {info['cpu']} | {info['cores']} cores | jax {info['jax']} ({info['backend']}, {info['device']}) | load average {loadavg()}",
        flush=True,
    )

    results: list[Result] = []
    notes: list[str] = []
    flops = None
    eval_env = envs.make("gymnax/Pendulum-v1")  # only needed to build the programs' evaluate; not timed
    if "iql" not in args.skip or "iql-multi" not in args.skip:
        dataset = random_dataset(args.dataset_size)
        flops = iql_flops_per_update(args.batch_size)
        if flops:
            notes.append(
                f"IQL update: {flops / 1e6:.0f} MFLOP per update (XLA cost analysis of one seed's update, batch {args.batch_size})"
            )
        if "iql" not in args.skip:
            print("IQL offline, 1 seed", flush=True)
            wait_quiet(args.wait_quiet)
            results.append(bench_iql(dataset, 1, iql_chunk, repeats, args.batch_size, eval_env, args.wait_quiet))
        if "iql-multi" not in args.skip:
            print(f"IQL offline, {args.seeds} vmapped seeds", flush=True)
            wait_quiet(args.wait_quiet)
            results.append(bench_iql(dataset, args.seeds, iql_chunk_multi, repeats, args.batch_size, eval_env, args.wait_quiet))
        if "hlo" not in args.skip:
            print("checking the compiled IQL chunk for host round trips", flush=True)
            finding = check_host_round_trips(iql_chunk, args.batch_size, eval_env)
            print(f"  {finding}")
            notes.append(finding)

    ratio = None
    if "sac" not in args.skip:
        print("SAC online (jaxrl)", flush=True)
        wait_quiet(args.wait_quiet)
        ours = bench_sac_ours(sac_chunk, repeats, learning_starts, args.buffer_size, args.batch_size, args.wait_quiet)
        results.append(ours)
        if "rejax" not in args.skip:
            print("SAC online (rejax)", flush=True)
            wait_quiet(args.wait_quiet)
            theirs = bench_sac_rejax(sac_chunk, repeats, learning_starts, args.buffer_size, args.batch_size, args.wait_quiet)
            if isinstance(theirs, str):
                print(f"  {theirs}")
                notes.append(theirs)
            else:
                results.append(theirs)
                ratio = ours.rate / theirs.rate
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
    notes.append(f"load average at the end of the run: {loadavg()}")
    if quick:
        notes.append("quick mode: short chunks, few repeats; indicative only")

    body = table(results, ratio, flops)
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
