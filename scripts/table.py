"""Reproduce a results table from its spec: every algorithm x dataset cell, several seeds each.

python scripts/table.py experiments/tables/offline_pendulum.yaml            # CPU default
python scripts/table.py experiments/tables/offline_pendulum.yaml --suite ~/.cache/jaxrl/datasets/brax_hopper/small-seed0 --env brax/hopper
python scripts/table.py SPEC --only iql cql --seeds 3 --steps 2000
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from jaxrl.agents import ConfigError
from jaxrl.table import TableSpec, run_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", help="table spec (YAML)")
    parser.add_argument("--suite", help="generated suite profile, or a directory of <level>.hdf5 files (e.g. D4RL)")
    parser.add_argument("--env", help="environment the policies are evaluated in")
    parser.add_argument("--only", nargs="*", help="run only these algorithms")
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--out", help="output directory (default runs/tables/<name>)")
    args = parser.parse_args()
    try:
        spec = TableSpec.load(args.spec)
        overrides = {
            k: v for k, v in (("suite", args.suite), ("env", args.env), ("seeds", args.seeds), ("steps", args.steps)) if v
        }
        spec = dataclasses.replace(spec, **overrides)
        out = Path(args.out or Path("runs") / "tables" / spec.name)
        table = run_table(spec, out, only=args.only)
    except (ConfigError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    print()
    print(table)
    print(f"\nwritten: {out / 'table.md'}, {out / 'table.png'}, {out / 'cells.jsonl'}")


if __name__ == "__main__":
    main()
