"""Reproduce results tables from their specs: every algorithm x row cell, several seeds each.

python scripts/table.py experiments/tables/offline_pendulum.yaml            # CPU default
python scripts/table.py experiments/tables/offline_pendulum.yaml --suite ~/.cache/jaxrl/datasets/brax_hopper/small-seed0 --env brax/hopper
python scripts/table.py SPEC [SPEC ...] --only iql cql --seeds 3 --steps 2000
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import tyro

from jaxrl.agents import ConfigError
from jaxrl.protocols.table import TableSpec, run_table


@dataclasses.dataclass
class TableOptions:
    suite: str | None = None
    """generated suite profile, or a directory of <level>.hdf5 files (e.g. D4RL)"""
    env: str | None = None
    """environment the policies are evaluated in"""
    only: tuple[str, ...] = ()
    """run only these algorithms"""
    rows: tuple[str, ...] = ()
    """run only these rows (names as in the spec)"""
    seeds: int | None = None
    """seeds per cell (default: the spec's)"""
    steps: int | None = None
    """training steps per run (default: the spec's)"""
    out: Path | None = None
    """output directory (default runs/tables/<name>)"""


@dataclasses.dataclass
class TableCommand(TableOptions):
    specs: tyro.conf.Positional[tuple[Path, ...]] = ()
    """table specs (YAML)"""


@dataclasses.dataclass
class ReproduceCommand(TableOptions):
    full: bool = False
    """GPU scale on the brax suites instead of Pendulum"""


def parse(command_cls, argv: list[str] | None, doc: str, prog: str):
    """The scripts' one front end (tyro, as `python -m jaxrl.train`)."""
    return tyro.cli(command_cls, args=argv, description=doc, prog=prog)


def _only_rows(spec: TableSpec, rows: list[str]) -> TableSpec | None:
    """The spec with only the named rows, or None when it has none of them."""
    if not set(rows) & set(spec.row_settings()):
        return None
    return dataclasses.replace(spec, levels=[r for r in spec.levels if r in rows],
                               rows={k: v for k, v in spec.rows.items() if k in rows})  # fmt: skip


def run_specs(paths: list[str], args: TableOptions, rename=None) -> None:
    """Load every spec first (so a typo fails before hours of training), then run them in order;
    `rename(name)` names the tables of specs run on other settings than their own."""
    try:
        overrides = {k: getattr(args, k) for k in ("suite", "env", "seeds", "steps") if getattr(args, k)}
        specs = [dataclasses.replace(TableSpec.load(path), **overrides) for path in paths]
        if rename is not None:
            specs = [dataclasses.replace(spec, name=rename(spec.name)) for spec in specs]
        if getattr(args, "rows", None):
            known = [r for spec in specs for r in spec.row_settings()]
            specs = [spec for spec in (_only_rows(spec, list(args.rows)) for spec in specs) if spec is not None]
            if not specs:
                raise ConfigError(f"no table has the rows {args.rows}; their rows: {', '.join(known)}")
        for spec in specs:
            out = (
                Path(args.out) / spec.name
                if args.out and len(specs) > 1
                else Path(args.out or Path("runs") / "tables" / spec.name)
            )
            table = run_table(spec, out, only=list(args.only) or None)
            print(f"\n{spec.name}\n\n{table}\n\nwritten: {out / 'table.md'}, {out / 'table.png'}, {out / 'cells.jsonl'}\n")
    except (ConfigError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None


def reproduce(doc: str, script: str, cpu: list[str], gpu: list[str], argv: list[str] | None = None) -> None:
    """A paper's `make reproduce-*` (`scripts/<script>`): the specs (names under experiments/tables/) at CPU
    scale, or with --full at GPU scale, with the table options above."""
    tables = Path(__file__).parent.parent / "experiments" / "tables"
    args = parse(ReproduceCommand, argv, doc, f"python scripts/{script}")
    run_specs([str(tables / name) for name in (gpu if args.full else cpu)], args)


def main(argv: list[str] | None = None) -> None:
    args = parse(TableCommand, argv, __doc__, "python scripts/table.py")
    if not args.specs:
        raise SystemExit("error: give at least one table spec (YAML), e.g. experiments/tables/offline_pendulum.yaml")
    run_specs([str(p) for p in args.specs], args)


if __name__ == "__main__":
    main()
