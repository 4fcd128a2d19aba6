"""H2O's comparison with one command: real data of the real env plus a simulator with shifted dynamics,
every policy evaluated in the real env, and the paper's claims checked.

python scripts/reproduce_h2o.py            # CPU scale: Pendulum (experiments/tables/h2o_pendulum.yaml), then
                                           # the scarce-data table (h2o_scarce_pendulum.yaml)
python scripts/reproduce_h2o.py --only h2o # one column; see scripts/table.py for the other options

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
    add_arguments(parser)
    args = parser.parse_args()
    run_specs([str(TABLES / "h2o_pendulum.yaml"), str(TABLES / "h2o_scarce_pendulum.yaml")], args)


if __name__ == "__main__":
    main()
