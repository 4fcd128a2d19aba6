"""Generate (or find in the cache) a D4RL-style dataset suite for an environment.

python scripts/make_datasets.py --env gymnax/Pendulum-v1 --profile default --seed 0
"""

from __future__ import annotations

import argparse
import json

from jaxrl.suite import PROFILES, generate_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="gymnax/Pendulum-v1", choices=sorted(PROFILES))
    parser.add_argument("--profile", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default=None, help="cache directory (default $JAXRL_DATA_DIR or ~/.cache/jaxrl/datasets)")
    args = parser.parse_args()
    from pathlib import Path

    try:
        out = generate_suite(args.env, args.profile, args.seed, Path(args.root) if args.root else None)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    info = json.loads((out / "suite.json").read_text())
    print(f"suite: {out}")
    print(f"reference returns: random {info['ref_min_score']:.1f}, expert {info['ref_max_score']:.1f}")
    for path in sorted(out.glob("*.hdf5")):
        print(f"  {path.name}")


if __name__ == "__main__":
    main()
