"""`bench.py --against REV`: our offline IQL and online SAC throughput for this tree and REV, side by side.

REV is checked out into a temporary `git worktree`. Every measurement runs in a fresh subprocess
(`python -m benchmarks.against JOB`, started in the measured tree) whose PYTHONPATH holds this
checkout's scripts/ (the measuring code: `benchmarks.ours` and `benchmarks.timing`, the same for both)
and then the measured tree (its `jaxrl` and `envs`). The two trees' subprocesses alternate, round
after round and with the one that goes first alternating too, so that both see the same machine.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from benchmarks.report import fmt_load, fmt_rate, fmt_throughput, print_report, record, run_notes
from benchmarks.timing import QUIET, Result, wait_quiet

SCRIPTS = Path(__file__).resolve().parents[1]
ROOT = SCRIPTS.parent
MARK = "BENCH-RESULT "
KINDS = {"offline": "IQL offline, 1 seed", "online": "SAC online"}


def git(*args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def current_label() -> str:
    dirty = git("status", "--porcelain", "--", "jaxrl", "envs")
    return f"HEAD {git('rev-parse', '--short', 'HEAD')}" + (" + uncommitted changes" if dirty else "")


def run_worker(tree: Path, job: dict, label: str) -> dict:
    """One measurement in a fresh process that imports `tree`'s library; its progress is printed as it comes."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SCRIPTS), str(tree)]))
    command = [sys.executable, "-m", "benchmarks.against", json.dumps({**job, "tree": str(tree)})]
    proc = subprocess.Popen(command, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail, answer = deque(maxlen=30), None
    for line in proc.stdout:
        if line.startswith(MARK):
            answer = json.loads(line[len(MARK) :])
        else:
            tail.append(line)
            if line.startswith("  "):
                print(f"  [{label}]{line.rstrip()}", flush=True)
    if proc.wait() != 0 or answer is None:
        raise RuntimeError(f"the {job['kind']} measurement of {label} failed (exit {proc.returncode}):\n{''.join(tail)}")
    return answer


def merge(results: list[Result]) -> Result:
    """One result of all rounds: every timed chunk, the median first call and compile time."""
    return dataclasses.replace(
        results[0],
        first_call_s=statistics.median(r.first_call_s for r in results),
        compile_s=statistics.median(r.compile_s for r in results),
        chunk_s=[t for r in results for t in r.chunk_s],
        background=[b for r in results for b in r.background],
        recompiles=[c for r in results for c in r.recompiles],
        discarded=sum(r.discarded for r in results),
    )


def compare(args, rev: str, settings: dict, rounds: int, info: dict, date: str, command: str, output: Path | None) -> int:
    start = time.perf_counter()
    base_label = rev if git("rev-parse", "--short", f"{rev}^{{commit}}") == rev else f"{rev} ({git('rev-parse', '--short', rev)})"
    labels = [current_label(), base_label]
    kinds = [k for k in KINDS if not (k == "offline" and "offline" in args.skip) and not (k == "online" and "sac" in args.skip)]
    measured: dict[tuple[str, str], list[Result]] = {}
    with tempfile.TemporaryDirectory(prefix="jaxrl-against-") as tmp:
        base = Path(tmp) / "tree"
        git("worktree", "add", "--detach", "--quiet", str(base), rev)
        trees = [ROOT, base]
        try:
            for round_ in range(rounds):
                order = [0, 1] if round_ % 2 == 0 else [1, 0]
                for kind in kinds:
                    for i in order:
                        print(f"round {round_ + 1}/{rounds}: {KINDS[kind]}, {labels[i]}", flush=True)
                        wait_quiet(args.wait_quiet)
                        job = {**settings, "kind": kind, "quiet_wait": args.wait_quiet, "quiet_budget": QUIET.left}
                        answer = run_worker(trees[i], job, labels[i])
                        QUIET.charge(answer["quiet_spent"])
                        measured.setdefault((kind, labels[i]), []).append(Result(**answer["result"]))
        finally:
            git("worktree", "remove", "--force", str(base))
    body, merged = comparison_table(measured, kinds, labels, rounds)
    plural = "s" if rounds > 1 else ""
    notes = [
        f"{rounds} round{plural}; in each, every benchmark ran once per revision, each in a fresh process (the revision that "
        "goes first alternates between rounds); throughput is the median over all timed chunks of all rounds; the ratio's "
        "brackets hold each round's ratio of the two revisions' medians (measured back to back, so less exposed to changes in the load)",
        f"the measuring code (scripts/benchmarks) is this checkout's for both; each process imports its revision's `jaxrl` and "
        f"`envs` (PYTHONPATH=<that tree>, {rev} checked out into a temporary git worktree)",
        *run_notes(merged, info["cores"], args.wait_quiet_total, time.perf_counter() - start, args.quick),
    ]
    print_report(body, notes)
    if output is not None:
        key = f"{date} {info['cpu']} {info['cores']}c {info['backend']} against {rev}"
        title = f"{labels[0]} against {labels[1]}, offline IQL and online SAC; {info['cpu']}, {info['cores']} cores"
        record(output, key, date, info, command, body, notes, title)
    return 0


def comparison_table(measured: dict, kinds: list[str], labels: list[str], rounds: int) -> tuple[str, list[Result]]:
    """Both revisions' rows of each benchmark and their ratio; and the merged results, named by revision."""
    rows = [
        "| benchmark | revision | setting | first call s (compile s), median | steady-state throughput [min-max] | round medians | background load (cores) |",
        "|---|---|---|---|---|---|---|",
    ]
    all_merged = []
    for kind in kinds:
        merged = {label: merge(measured[kind, label]) for label in labels}
        for label, r in merged.items():
            per_round = ", ".join(fmt_rate(x.member_rate) for x in measured[kind, label])
            timed = f"{rounds} round{'s' if rounds > 1 else ''} x {len(measured[kind, label][0].chunk_s)} x {r.steps_per_chunk}"
            rows.append(
                f"| {KINDS[kind]} | {label} | {r.config}; timed {timed} | {r.first_call_s:.1f} ({r.compile_s:.1f}) "
                f"| {fmt_throughput(r)} | {per_round} | {fmt_load(r)} |"
            )
            all_merged.append(dataclasses.replace(r, name=f"{KINDS[kind]}, {label}"))
        ratio = merged[labels[0]].member_rate / merged[labels[1]].member_rate
        pairs = zip(measured[kind, labels[0]], measured[kind, labels[1]], strict=True)
        per_round = ", ".join(f"{a.member_rate / b.member_rate:.2f}" for a, b in pairs)
        rows.append(f"| {KINDS[kind]} | {labels[0]} / {labels[1]} | | | **{ratio:.3f}x** [{per_round}] | | |")
    return "\n".join(rows), all_merged


def isolate(tree: Path) -> None:
    """Import the library from `tree` alone: drop the finders of an editable install (pip install -e of
    another checkout), which would add that checkout's jaxrl/ to the `jaxrl` namespace package."""
    editable = lambda x: getattr(x, "__module__", "").startswith("__editable__")  # noqa: E731
    sys.meta_path[:] = [f for f in sys.meta_path if not editable(f)]
    sys.path_hooks[:] = [h for h in sys.path_hooks if not editable(h)]
    sys.path[:] = [p for p in sys.path if not p.startswith("__editable__")]
    sys.path_importer_cache.clear()


def worker(job: dict) -> None:
    tree = Path(job["tree"]).resolve()
    isolate(tree)
    import envs
    from benchmarks import ours

    QUIET.reset(job["quiet_budget"])
    if job["kind"] == "offline":
        dataset = ours.Dataset.from_numpy(**ours.random_arrays(job["dataset_size"]))
        hidden = tuple(job["hidden_dims"])
        agent = ours.our_agent("iql", hidden)
        result = ours.bench_ours(
            "iql", agent, dataset, 1, job["chunk"], job["repeats"], job["batch_size"], envs.make("gymnax/Pendulum-v1"),
            job["quiet_wait"], None, hidden,
        )  # fmt: skip
    else:
        result = ours.bench_offpolicy_ours(
            "sac",
            job["sac_chunk"],
            job["repeats"],
            job["learning_starts"],
            job["buffer_size"],
            job["batch_size"],
            job["quiet_wait"],
        )
    outside = sorted(
        f"{name}: {m.__file__}"
        for name, m in list(sys.modules.items())
        if name.split(".")[0] in ("jaxrl", "envs")
        and getattr(m, "__file__", None)
        and not Path(m.__file__).resolve().is_relative_to(tree)
    )
    if outside:
        raise RuntimeError(f"modules imported from outside {tree}: {outside}")
    print(MARK + json.dumps({"result": dataclasses.asdict(result), "quiet_spent": QUIET.spent}), flush=True)


if __name__ == "__main__":
    worker(json.loads(sys.argv[1]))
