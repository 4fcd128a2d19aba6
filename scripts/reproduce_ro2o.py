"""RO2O's offline-to-online comparison with one command: every method pretrained offline, then fine-tuned
online through the same regime, with the dip at the switch and the paper's claims checked.

python scripts/reproduce_ro2o.py          # CPU scale: the Pendulum suite (experiments/tables/ro2o_pendulum.yaml)
python scripts/reproduce_ro2o.py --full   # GPU scale: the brax `full` suites (experiments/tables/ro2o_brax.yaml)

Writes runs/tables/<name>/table.md, table.png, curves-<dataset>.png (score across the switch) and cells.jsonl.
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
    run_specs([str(TABLES / f"ro2o_{'brax' if args.full else 'pendulum'}.yaml")], args)


if __name__ == "__main__":
    main()
