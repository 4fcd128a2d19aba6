"""H2O's diagnostic: is u(s,a), the estimated dynamics gap, larger where the shifted parameter acts?

For every trained H2O run given (a run directory, e.g. a table cell's), u is computed on the last 5,000
simulator transitions of each seed's buffer as the agent computes it (next states sampled around s' with
the agent's noise, `H2O.next_state_std`), and correlated (Spearman) with the state variable the shift acts on. For
Pendulum, gravity and length change the angular acceleration 3g/(2l) sin(theta), so the gap grows with
|sin theta|; joint noise acts on the action, the same everywhere, so no correlation is expected there.

  python scripts/h2o_gap.py runs/tables/h2o-pendulum/runs/h2o-*
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import tyro

sys.path.insert(0, str(Path(__file__).parent.parent))
from jaxrl.agents import losses  # noqa: E402
from jaxrl.engine import trainer  # noqa: E402
from jaxrl.engine.run_dir import RunDir  # noqa: E402
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
    """Per seed of the run: the whole state (its simulator buffer too) restored from its latest checkpoint."""
    run = load_run(run_dir)
    built = build(dataclasses.replace(run.config, run_dir=str(run.run_dir)))
    _, states = trainer.restore(built.program, built.members, RunDir(run.run_dir).checkpointer())
    agent = jax.tree.map(lambda x: x[0], run.agents)
    real = jnp.asarray(built.program.data["dataset"].observations)  # the real data, normalised as the agent saw it
    std = agent.next_state_std(real) * agent.next_state_std_ratio  # the noise u is computed with
    members = [jax.tree.map(lambda x, m=m: x[m], states) for m in range(len(run.members))]
    return [member_gap_correlation(agent, s, std, jax.random.PRNGKey(m), rows, samples) for m, s in enumerate(members)]


@dataclasses.dataclass
class Command:
    runs: tyro.conf.Positional[tuple[Path, ...]] = ()
    """H2O run directories"""
    samples: int = 10
    """next states sampled per row (0: the observed one, no noise)"""


def main(argv: list[str] | None = None) -> None:
    args = tyro.cli(Command, args=argv, description=__doc__, prog="python scripts/h2o_gap.py")
    if not args.runs:
        raise SystemExit("error: give at least one H2O run directory")
    print("| run | Spearman(u, abs sin theta) per seed | mean |\n|---|---|---|")
    for run_dir in args.runs:
        values = gap_correlations(run_dir, samples=args.samples)
        print(f"| {run_dir.name} | {', '.join(f'{v:+.2f}' for v in values)} | {np.mean(values):+.2f} |", flush=True)


if __name__ == "__main__":
    main()
