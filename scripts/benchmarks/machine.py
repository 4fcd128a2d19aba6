"""The machine a benchmark runs on: CPU, JAX backend, the load of other processes, a compute ceiling."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import time
from pathlib import Path

import jax
import jax.numpy as jnp


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


def utc_date() -> str:
    try:
        return subprocess.run(["date", "-u", "+%Y-%m-%d"], check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")


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
