"""Reproduce results tables from their specs: every algorithm x row cell, several seeds each.

python scripts/table.py experiments/tables/offline_pendulum.yaml            # CPU default
python scripts/table.py experiments/tables/offline_pendulum.yaml --suite ~/.cache/jaxrl/datasets/brax_hopper/small-seed0 --env brax/hopper
python scripts/table.py SPEC [SPEC ...] --only iql cql --seeds 3 --steps 2000
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from jaxrl.agents import ConfigError
from jaxrl.protocols.table import TableSpec, run_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", help="generated suite profile, or a directory of <level>.hdf5 files (e.g. D4RL)")
    parser.add_argument("--env", help="environment the policies are evaluated in")
    parser.add_argument("--only", nargs="*", help="run only these algorithms")
    parser.add_argument("--rows", nargs="*", help="run only these rows (names as in the spec)")
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--out", help="output directory (default runs/tables/<name>)")


def _only_rows(spec: TableSpec, rows: list[str]) -> TableSpec | None:
    """The spec with only the named rows, or None when it has none of them."""
    if not set(rows) & set(spec.row_settings()):
        return None
    return dataclasses.replace(spec, levels=[r for r in spec.levels if r in rows],
                               rows={k: v for k, v in spec.rows.items() if k in rows})  # fmt: skip


def run_specs(paths: list[str], args: argparse.Namespace, rename=None) -> None:
    """Load every spec first (so a typo fails before hours of training), then run them in order;
    `rename(name)` names the tables of specs run on other settings than their own."""
    try:
        overrides = {k: getattr(args, k) for k in ("suite", "env", "seeds", "steps") if getattr(args, k)}
        specs = [dataclasses.replace(TableSpec.load(path), **overrides) for path in paths]
        if rename is not None:
            specs = [dataclasses.replace(spec, name=rename(spec.name)) for spec in specs]
        if getattr(args, "rows", None):
            known = [r for spec in specs for r in spec.row_settings()]
            specs = [spec for spec in (_only_rows(spec, args.rows) for spec in specs) if spec is not None]
            if not specs:
                raise ConfigError(f"no table has the rows {args.rows}; their rows: {', '.join(known)}")
        for spec in specs:
            out = (
                Path(args.out) / spec.name
                if args.out and len(specs) > 1
                else Path(args.out or Path("runs") / "tables" / spec.name)
            )
            table = run_table(spec, out, only=args.only)
            print(f"\n{spec.name}\n\n{table}\n\nwritten: {out / 'table.md'}, {out / 'table.png'}, {out / 'cells.jsonl'}\n")
    except (ConfigError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None


def reproduce(doc: str, cpu: list[str], gpu: list[str]) -> None:
    """A paper's `make reproduce-*`: the specs (names under experiments/tables/) at CPU scale, or with
    --full at GPU scale, with the table options above."""
    tables = Path(__file__).parent.parent / "experiments" / "tables"
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="GPU scale on the brax suites instead of Pendulum")
    add_arguments(parser)
    args = parser.parse_args()
    run_specs([str(tables / name) for name in (gpu if args.full else cpu)], args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="+", help="table specs (YAML)")
    add_arguments(parser)
    args = parser.parse_args()
    run_specs(args.specs, args)


if __name__ == "__main__":
    main()
