"""RO2O's offline-to-online comparison with one command: every method pretrained offline, then fine-tuned
online through the same regime, with the dip at the switch and the paper's claims checked.

  python scripts/reproduce_ro2o.py          # CPU scale: the Pendulum suite (experiments/tables/ro2o_pendulum.yaml)
  python scripts/reproduce_ro2o.py --full   # GPU scale: the brax `full` suites (experiments/tables/ro2o_brax.yaml)

Writes runs/tables/<name>/table.md, table.png, curves-<dataset>.png (score across the switch) and cells.jsonl.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from table import reproduce  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    reproduce(__doc__, "reproduce_ro2o.py", cpu=["ro2o_pendulum.yaml"], gpu=["ro2o_brax.yaml"], argv=argv)


if __name__ == "__main__":
    main()
