"""H2O's diagnostic: is u(s,a), the estimated dynamics gap, larger where the shifted parameter acts?

For every trained H2O run given (a run directory, e.g. a table cell's), u is computed on the last 5,000
simulator transitions of each seed's buffer as the agent computes it (next states sampled around s' with
the std of the real data), and correlated (Spearman) with the state variable the shift acts on. For
Pendulum, gravity and length change the angular acceleration 3g/(2l) sin(theta), so the gap grows with
|sin theta|; joint noise acts on the action, the same everywhere, so no correlation is expected there.

python scripts/h2o_gap.py experiments/results/h2o-pendulum/runs/h2o-*
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).parent.parent))
from jaxrl import losses  # noqa: E402
from jaxrl.train import build, load_run  # noqa: E402


def _rank_correlation(x: np.ndarray, y: np.ndarray) -> float:
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    return float(np.corrcoef(rank(x), rank(y))[0, 1])


def member_gap_correlation(agent, state, std, key, rows: int, samples: int) -> float:
    """One seed: Spearman correlation of u(s,a) with |sin theta| over its buffer's last `rows` rows."""
    size = int(state.buffer.size)
    data = jax.tree.map(lambda x: x[max(0, size - rows) : size], state.buffer.data)
    noise = (
        jax.random.normal(key, (samples, *data.next_observations.shape))
        if samples
        else jnp.zeros((1, *data.next_observations.shape))
    )
    sampled = data.next_observations + std * noise  # samples=0: u at the observed s' itself
    params = state.agent.discriminators.params
    log_ratios = jax.vmap(lambda s: agent.log_ratio(params, data.observations, data.actions, s))(sampled)
    u = np.asarray(losses.dynamics_gap(log_ratios.T, low=1e-30))
    raw = np.asarray(data.observations * state.normalizer.std + state.normalizer.mean)
    return _rank_correlation(u, np.abs(raw[:, 1]))  # Pendulum: obs = (cos, sin, theta_dot)


def gap_correlations(run_dir: Path, rows: int = 5_000, samples: int = 10) -> list[float]:
    run = load_run(run_dir)
    agent = jax.tree.map(lambda x: x[0], run.agents)
    std = jnp.asarray(build(run.config).program.data["dataset"].observations).std(axis=0)  # the real data, normalised
    states = [jax.tree.map(lambda x, m=m: x[m], run.states) for m in range(len(run.members))]
    return [member_gap_correlation(agent, s, std, jax.random.PRNGKey(m), rows, samples) for m, s in enumerate(states)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="H2O run directories")
    parser.add_argument("--samples", type=int, default=10, help="next states sampled per row (0: the observed one, no noise)")
    args = parser.parse_args()
    print("| run | Spearman(u, abs sin theta) per seed | mean |\n|---|---|---|")
    for run_dir in args.runs:
        values = gap_correlations(run_dir, samples=args.samples)
        print(f"| {run_dir.name} | {', '.join(f'{v:+.2f}' for v in values)} | {np.mean(values):+.2f} |", flush=True)


if __name__ == "__main__":
    main()
