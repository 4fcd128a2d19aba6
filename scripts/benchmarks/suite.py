"""The comparisons `bench.py` runs: every offline agent against d3rlpy, and SAC, TD3 and PPO online against rejax."""

from __future__ import annotations

from benchmarks.continual import bench_continual
from benchmarks.d3rlpy_side import D3rlpySide
from benchmarks.env_steps import SETTINGS as ENV_SETTINGS
from benchmarks.env_steps import bench_env_steps
from benchmarks.hierarchy import bench_hierarchy
from benchmarks.machine import LoadMeter, matmul_gflops
from benchmarks.ours import (
    PPOSetting,
    bench_finetune_ours,
    bench_hybrid_ours,
    bench_offpolicy_ours,
    bench_ours,
    bench_ppo_ours,
    calibrate,
    our_agent,
    random_arrays,
)
from benchmarks.rejax_side import bench_offpolicy_rejax, bench_ppo_rejax, rejax_notes
from benchmarks.timing import Result, nice, wait_quiet
from jaxrl.data.dataset import Dataset


def bench_offline(args, repeats: int, chunk_seconds: float, eval_env) -> tuple[list[Result], dict, list[str], int | None]:
    """For every algorithm: ours with 1 seed, d3rlpy's equivalent, ours with more seeds. Returns the results,
    the d3rlpy results of each algorithm (one per torch thread setting), notes, and torch's default thread count."""
    hidden = tuple(args.hidden_dims)
    arrays = random_arrays(args.dataset_size)
    dataset = Dataset.from_numpy(**arrays)
    theirs_side = None if "d3rlpy" in args.skip else D3rlpySide(args, arrays, repeats, chunk_seconds)
    results: list[Result] = []
    theirs: dict[str, list[Result]] = {}
    for algo in args.algos:
        agent = our_agent(algo, hidden)
        print(f"{algo} (jaxrl): calibrating", flush=True)
        cal = calibrate(agent, dataset, args.batch_size, 0.5 if not args.quick else 0.2)
        flop_text = f"{cal.flops / 1e6:.0f} MFLOP/update, " if cal.flops else ""
        print(f"  {flop_text}~{cal.update_s * 1e3:.2f} ms per jitted update", flush=True)
        update_s = cal.update_s
        for members in args.seeds:
            if args.chunk:
                chunk = args.chunk if members == 1 else nice(args.chunk / members, 2, args.chunk)
            else:
                chunk = nice(chunk_seconds / (update_s * members), 2, 5000)
            print(f"{algo} offline (jaxrl), {members} seed{'s' if members > 1 else ''}, chunk {chunk}", flush=True)
            wait_quiet(args.wait_quiet)
            result = bench_ours(
                algo, agent, dataset, members, chunk, repeats, args.batch_size, eval_env, args.wait_quiet, cal.flops, hidden
            )
            results.append(result)
            if members == 1:
                update_s = 1.0 / result.rate  # the measured program rate sizes the multi-seed chunks
            if members == args.seeds[0] and theirs_side is not None:  # right after ours with 1 seed
                measured, new = theirs_side.measure(algo)
                if measured:
                    theirs[algo] = measured
                    if new:
                        results += measured
    wait_quiet(args.wait_quiet)
    with LoadMeter() as meter:
        peak = matmul_gflops()
    print(f"XLA float32 2048x2048 matmul: {peak:.0f} GFLOP/s (background load {meter.background:.2f} cores)", flush=True)
    notes = [
        f"reference ceiling: a 2048x2048 float32 matmul runs at {peak:.0f} GFLOP/s through XLA here "
        f"(background load {meter.background:.2f} cores); the GFLOP/s columns use XLA's flop count of one update"
    ]
    default_threads = None
    if theirs_side is not None:
        notes += theirs_side.method_notes()
        default_threads = theirs_side.default_threads
    return results, theirs, notes, default_threads


# PPO workloads: rejax's defaults on Pendulum (64 envs x 64 steps, 8 epochs x 16 minibatches), and the
# brax-scale hopper one (2,048 envs) with the rollout shape of our `small` brax suites' generator, on brax's
# spring physics on both sides: the comparison is of the two PPO programs, and rejax's brax adapter is spring's.
PPO_SETTINGS = (
    PPOSetting("gymnax/Pendulum-v1", num_envs=64, rollout_length=64, epochs=8, num_minibatches=16, iterations_per_chunk=10),
    PPOSetting(
        "brax/hopper", num_envs=2048, rollout_length=32, epochs=4, num_minibatches=8, iterations_per_chunk=1, backend="spring"
    ),
)
PPO_QUICK = (
    PPOSetting("gymnax/Pendulum-v1", num_envs=64, rollout_length=64, epochs=8, num_minibatches=16, iterations_per_chunk=2),
    PPOSetting(
        "brax/hopper", num_envs=256, rollout_length=8, epochs=1, num_minibatches=4, iterations_per_chunk=1, backend="spring"
    ),
)


def bench_online(
    args, repeats: int, sac_chunk: int, learning_starts: int
) -> tuple[list[Result], list[tuple[str, float]], list[str]]:
    """SAC and TD3 on Pendulum, PPO on Pendulum and brax hopper with 1 and 8 seeds: ours and (unless skipped)
    rejax's, each right after ours. Returns the results, (label, ours / rejax) pairs, and notes."""
    results, ratios, notes = [], [], []

    def pair(label, ours_fn, theirs_fn, *fn_args):
        print(f"{label} (jaxrl)", flush=True)
        wait_quiet(args.wait_quiet)
        ours = ours_fn(*fn_args)
        results.append(ours)
        if "rejax" in args.skip:
            return
        print(f"{label} (rejax)", flush=True)
        wait_quiet(args.wait_quiet)
        theirs = theirs_fn(*fn_args)
        if isinstance(theirs, str):
            print(f"  {theirs}")
            if theirs not in notes:
                notes.append(theirs)
            return
        results.append(theirs)
        ratios.append((label, ours.rate / theirs.rate))

    settings = (sac_chunk, repeats, learning_starts, args.buffer_size, args.batch_size, args.wait_quiet)
    for algo in ("sac", "td3"):
        pair(f"{algo.upper()} online", bench_offpolicy_ours, bench_offpolicy_rejax, algo, *settings)
    if "ppo" not in args.skip:
        for setting in PPO_QUICK if args.quick else PPO_SETTINGS:
            for members in (1, 8):
                pair(f"PPO {setting.env} x{members}", bench_ppo_ours, bench_ppo_rejax, setting, members, repeats, args.wait_quiet)
    if "finetune" not in args.skip:  # offline-to-online's online phase: RO2O and WSRL next to SAC (no rejax side)
        for algo in ("sac", "ro2o", "wsrl"):
            for members in (1, 8):
                print(f"{algo} fine-tuning x{members} (jaxrl)", flush=True)
                wait_quiet(args.wait_quiet)
                chunk = 20 if args.quick else (1000 if algo == "sac" else 50)
                results.append(bench_finetune_ours(algo, members, chunk, repeats, args.batch_size, args.wait_quiet))
    if "hybrid" not in args.skip:  # the hybrid regime: H2O's iteration next to SAC's on the same mixed batches
        for algo in ("sac", "h2o"):
            for members in (1, 8):
                print(f"{algo} hybrid x{members} (jaxrl)", flush=True)
                wait_quiet(args.wait_quiet)
                chunk = 20 if args.quick else 500
                results.append(bench_hybrid_ours(algo, members, chunk, repeats, args.batch_size, args.wait_quiet))
    if "envs" not in args.skip:  # env throughput: PathWorld's observation modes, gymnax Pendulum, brax hopper's physics
        for name, options in ENV_SETTINGS:
            for num_envs in (1, 1024):
                wait_quiet(args.wait_quiet)
                steps = (50 if args.quick else 500) if num_envs == 1 else (5 if args.quick else 50)
                results.append(bench_env_steps(name, options, num_envs, steps, repeats, args.wait_quiet))
    if ratios:
        notes += rejax_notes(learning_starts, args.buffer_size)
    return results, ratios, notes


def bench_continual_regime(args, repeats: int) -> list[Result]:
    """L2M's regime: DT multi-task pretraining and the pool's fine-tuning, 1 and 8 seeds."""
    results = []
    for method in ("pretrain", "l2m"):
        for members in (1, 8):
            print(f"{method} continual x{members} (jaxrl)", flush=True)
            wait_quiet(args.wait_quiet)
            results.append(bench_continual(method, members, 10 if args.quick else 100, repeats, args.wait_quiet))
    return results


def bench_hierarchy_regime(args, repeats: int) -> list[Result]:
    """HAMSTER's high-level and low-level training, 32 and 64 px, 1 and 8 seeds."""
    results = []
    for level in ("high", "low"):
        for size in (32, 64):
            for members in (1, 8):
                print(f"hamster {level} level {size} px x{members} (jaxrl)", flush=True)
                wait_quiet(args.wait_quiet)
                results.append(bench_hierarchy(level, size, members, 10 if args.quick else 100, repeats, args.wait_quiet))
    return results
