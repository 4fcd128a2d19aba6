"""Sweep members sharded over several devices give the single-device results."""

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np

from jaxrl.agents import IQL
from jaxrl.train import TrainConfig, train


def config(dataset, run_dir):
    return TrainConfig(agent=IQL(hidden_dims=(16, 16)), dataset=str(dataset), seeds=2, sweep=("beta=1,10",), steps=200,
                       chunk_steps=100, batch_size=32, eval_episodes=2, run_dir=str(run_dir), progress=False)  # fmt: skip


def test_two_devices_match_one(tmp_path, random_pendulum_file):
    script = textwrap.dedent(f"""
        import jax, numpy as np
        from tests.test_sharding import config
        from jaxrl.train import train
        assert jax.device_count() == 2
        result = train(config({str(random_pendulum_file)!r}, {str(tmp_path / "two")!r}))
        leaves = jax.tree.leaves(result.states)
        assert all(len(leaf.sharding.device_set) == 2 for leaf in leaves), "members were not sharded"
        np.savez({str(tmp_path / "two.npz")!r}, *[np.asarray(leaf) for leaf in leaves])
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    single = train(config(random_pendulum_file, tmp_path / "one"))
    assert jax.device_count() == 1
    with np.load(tmp_path / "two.npz") as two:
        sharded = [two[f"arr_{i}"] for i in range(len(two.files))]
    for a, b in zip(jax.tree.leaves(single.states), sharded, strict=True):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-6)
