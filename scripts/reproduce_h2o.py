"""H2O's comparison with one command: real data of the real env plus a simulator with shifted dynamics,
every policy evaluated in the real env, and the paper's claims checked.

  python scripts/reproduce_h2o.py            # CPU scale: Pendulum (experiments/tables/h2o_pendulum.yaml), then
                                           # the scarce-data table (h2o_scarce_pendulum.yaml)
  python scripts/reproduce_h2o.py --full     # GPU scale: brax halfcheetah/hopper (experiments/tables/h2o_brax.yaml)
  python scripts/reproduce_h2o.py --only h2o --rows "gravity x2, medium-replay"   # one column of one row

Writes runs/tables/<name>/table.md, table.png and cells.jsonl per table.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from table import reproduce  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    reproduce(
        __doc__, "reproduce_h2o.py", cpu=["h2o_pendulum.yaml", "h2o_scarce_pendulum.yaml"], gpu=["h2o_brax.yaml"], argv=argv
    )


if __name__ == "__main__":
    main()
