"""H2O's comparison with one command: real data of the real env plus a simulator with shifted dynamics,
every policy evaluated in the real env, and the paper's claims checked.

python scripts/reproduce_h2o.py            # CPU scale: Pendulum (experiments/tables/h2o_pendulum.yaml), then
                                           # the scarce-data table (h2o_scarce_pendulum.yaml)
python scripts/reproduce_h2o.py --full     # GPU scale: brax halfcheetah/hopper (experiments/tables/h2o_brax.yaml)
python scripts/reproduce_h2o.py --only h2o --rows "gravity x2, medium-replay"   # one column of one row

Writes runs/tables/<name>/table.md, table.png and cells.jsonl per table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from table import add_arguments, run_specs  # noqa: E402

TABLES = Path(__file__).parent.parent / "experiments" / "tables"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="GPU scale on the brax suites instead of Pendulum")
    add_arguments(parser)
    args = parser.parse_args()
    specs = ["h2o_brax.yaml"] if args.full else ["h2o_pendulum.yaml", "h2o_scarce_pendulum.yaml"]
    run_specs([str(TABLES / name) for name in specs], args)


if __name__ == "__main__":
    main()
