"""Throughput benchmarks of the compiled training programs, on whatever machine JAX runs on.

    python scripts/bench.py                  # default: ~15 minutes on a quiet 2-core CPU; prints the tables
    python scripts/bench.py --quick          # smoke run: short chunks, fewer repeats
    python scripts/bench.py --algos iql cql  # only some offline algorithms
    python scripts/bench.py --write          # also record the result as a dated section of BENCHMARKS.md
    python scripts/bench.py --output F.md    # ... of F.md (what `make bench` runs, with F.md = BENCHMARKS.md)
    python scripts/bench.py --against REV    # ours (offline IQL, online SAC) for this tree and REV, side by side

Measured:
  1. Offline updates/s of every offline agent (bc, iql, td3bc, cql, awac, rebrac, sac-n, edac), all with
     2x256 networks, batch 256, obs 17 / action 6, on the same 100k random transitions:
     - ours through `build_offline_program`, for 1, 4 and 16 seeds vmapped in one program;
     - d3rlpy's equivalent (if d3rlpy is installed, as `make bench` does), N calls of
       `algo.update(batch)` on its CPU device, with torch's default thread count and with 1 thread
       (`--torch-threads`); SAC-N and EDAC are both compared with d3rlpy's SAC with 10 critics (d3rlpy
       has no EDAC).
  2. SAC and TD3 online env steps/s on gymnax Pendulum-v1 (64x64, batch 256, 1 env, one update per env
     step) through `build_online_program`, next to rejax's with the same settings (if rejax is installed).
  3. PPO env steps/s on Pendulum (64 envs) and brax hopper (2,048 envs), 1 and 8 seeds vmapped, next to
     rejax's PPO with the same settings.
  4. RO2O/WSRL/SAC fine-tuning and H2O/SAC hybrid iterations/s; PathWorld and Pendulum env steps/s; DT
     multi-task pretraining and L2M fine-tuning updates/s (1 and 8 seeds).
  5. HAMSTER high-level and low-level training updates/s at 32 and 64 px, 1 and 8 seeds.

Every measurement times whole chunks (one `lax.scan` each, or N d3rlpy updates) with
`jax.block_until_ready`. The first call (compile + one chunk) is reported separately; throughput is the
median over the timed chunks that follow. Because a busy machine slows everything down, the CPU time
used by other processes during the timed chunks is measured from /proc/stat and reported as
"background load". The parts live in scripts/benchmarks/; that no chunk returns to the host is a test
(tests/test_compiled.py).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as `python scripts/bench.py` without an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import against, report, suite  # noqa: E402
from benchmarks.machine import loadavg, machine_info, utc_date  # noqa: E402
from benchmarks.ours import OFFLINE_ALGOS  # noqa: E402
from benchmarks.timing import QUIET, Result  # noqa: E402

import envs  # noqa: E402


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--quick", action="store_true", help="smoke run: short chunks and 2 timed chunks per benchmark")
    add("--write", action="store_true", help="record the result as a dated section of BENCHMARKS.md at the repo root")
    add(
        "--output",
        type=Path,
        help="record the result as a dated section of this markdown file (implies --write; make bench uses it)",
    )
    add("--repeats", type=int, help="timed chunks per benchmark (default 5, quick 2; with --against 3 per round, quick 2)")
    add("--algos", nargs="+", default=list(OFFLINE_ALGOS), choices=OFFLINE_ALGOS, help="offline algorithms to measure")
    add("--seeds", nargs="+", type=int, help="vmapped seed counts of our offline programs (default 1 4 16, quick 1 4)")
    add(
        "--chunk-seconds",
        type=float,
        help="target duration of one timed chunk; sizes the offline chunks (default 1.5, quick 0.3)",
    )
    add(
        "--chunk",
        type=int,
        help="updates per chunk of our 1-seed offline programs (default: from --chunk-seconds; --against: 300)",
    )
    add("--hidden-dims", nargs="+", type=int, default=[256, 256], help="hidden layers of every offline network, both sides")
    add(
        "--torch-threads",
        nargs="+",
        type=int,
        default=[0, 1],
        help="torch thread counts for d3rlpy; 0 = torch's default (default: 0 1)",
    )
    add("--dataset-size", type=int, default=100_000, help="random transitions in the offline dataset")
    add("--sac-chunk", type=int, help="env steps per SAC chunk (default 5000, quick 1000)")
    add("--learning-starts", type=int, help="random env steps before SAC updates (default 1000, quick 500)")
    add("--buffer-size", type=int, default=100_000, help="SAC replay buffer capacity (ours and rejax)")
    add("--batch-size", type=int, default=256)
    add("--wait-quiet", type=float, default=120.0, metavar="S", help="before each benchmark, wait up to S seconds for other "
        "processes to go quiet, and re-run timed chunks during which they used more than half a core (default 120; 0 measures "
        "whatever the load)")  # fmt: skip
    add("--wait-quiet-total", type=float, metavar="S", help="the most the whole run spends waiting and re-running "
        "disturbed chunks (default 900, with --against 120); then it measures anyway")  # fmt: skip
    add("--skip", nargs="*", default=[], choices=["offline", "multi", "d3rlpy", "sac", "ppo", "finetune", "hybrid", "envs", "continual", "hierarchy", "rejax", "hlo"],
        help="benchmarks to leave out (sac: all online ones; ppo: the PPO ones; finetune: RO2O/WSRL/SAC fine-tuning; hybrid: H2O/SAC in the hybrid regime; envs: PathWorld and Pendulum env steps/s; continual: DT pretraining and L2M fine-tuning; hierarchy: HAMSTER's high- and low-level training; multi: the offline programs with more than one seed; hlo: accepted for old commands, "
        "the host round-trip check is tests/test_compiled.py now)")  # fmt: skip
    add("--against", metavar="REV", help="only time our offline IQL and online SAC, for this tree and for git revision REV "
        "(checked out into a temporary worktree), interleaved in one run")  # fmt: skip
    add("--rounds", type=int, default=3, help="with --against: interleaved rounds, one process per revision and benchmark each")
    args = parser.parse_args(argv)
    args.sac_chunk = args.sac_chunk or (1000 if args.quick else 5000)
    if args.learning_starts is None:
        args.learning_starts = 500 if args.quick else 1000
    if args.learning_starts > args.sac_chunk:
        parser.error("--learning-starts must be <= --sac-chunk so that every timed SAC chunk makes one update per env step")
    args.seeds = sorted(set(args.seeds or ([1, 4] if args.quick else [1, 4, 16])))
    if any(m < 1 for m in args.seeds):
        parser.error("--seeds must be positive")
    if "multi" in args.skip:
        args.seeds = [1]
    args.algos = list(dict.fromkeys(args.algos))
    if args.wait_quiet_total is None:
        args.wait_quiet_total = 120.0 if args.against else 900.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    given = argv if argv is not None else sys.argv[1:]
    command = "python scripts/bench.py" + (" " + shlex.join(given) if given else "")
    output = args.output or (ROOT / "BENCHMARKS.md" if args.write else None)
    info, date = machine_info(), utc_date()
    print(
        f"{date} | {info['cpu']} | {info['cores']} cores | jax {info['jax']} ({info['backend']}, {info['device']}) | load average {loadavg()}",
        flush=True,
    )
    QUIET.reset(args.wait_quiet_total)
    if args.against:
        settings = {
            "repeats": args.repeats or (2 if args.quick else 3),
            "dataset_size": args.dataset_size,
            "batch_size": args.batch_size,
            "hidden_dims": args.hidden_dims,
            "chunk": args.chunk or (100 if args.quick else 300),
            "sac_chunk": args.sac_chunk,
            "learning_starts": args.learning_starts,
            "buffer_size": args.buffer_size,
        }
        return against.compare(args, args.against, settings, args.rounds, info, date, command, output)

    start = time.perf_counter()
    repeats = args.repeats or (2 if args.quick else 5)
    results: list[Result] = []
    notes: list[str] = []
    theirs, default_threads, ratios = {}, None, []
    eval_env = envs.make("gymnax/Pendulum-v1")  # only needed to build the programs' evaluate; not timed
    if "offline" not in args.skip:
        chunk_seconds = args.chunk_seconds or (0.3 if args.quick else 1.5)
        offline, theirs, offline_notes, default_threads = suite.bench_offline(args, repeats, chunk_seconds, eval_env)
        results += offline
        notes += offline_notes + report.offline_notes(offline, theirs, args.algos, default_threads)
    if "sac" not in args.skip:
        online, ratios, online_notes = suite.bench_online(args, repeats, args.sac_chunk, args.learning_starts)
        results += online
        notes += online_notes
    if "continual" not in args.skip:
        results += suite.bench_continual_regime(args, repeats)
    if "hierarchy" not in args.skip:
        results += suite.bench_hierarchy_regime(args, repeats)
    notes += report.run_notes(results, info["cores"], args.wait_quiet_total, time.perf_counter() - start, args.quick)

    parts = []
    if any(r.algo for r in results):
        parts.append(report.offline_table(results, theirs, args.algos, args.seeds, default_threads))
    parts.append(report.table(results, ratios))
    body = "\n\n".join(parts)
    report.print_report(body, notes)
    if output is not None:
        key = f"{date} {info['cpu']} {info['cores']}c {info['backend']}{' quick' if args.quick else ''}"
        report.record(output, key, date, info, command, body, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
