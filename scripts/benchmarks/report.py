"""The report: the tables, the notes under them, and the dated sections of BENCHMARKS.md."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

from benchmarks.machine import loadavg
from benchmarks.timing import QUIET, Result

# The project's throughput goals: ours (1 seed) / d3rlpy.
GOALS = {"iql": 4.0, "td3bc": 4.0, "cql": 10.0, "sac-n": 10.0}
SECTION_BEGIN = "<!-- bench-section {key} -->"
SECTION_END = "<!-- /bench-section -->"
HEADER = """# Benchmarks

Throughput of the compiled training programs, measured with `scripts/bench.py` (`make bench`).
Newest section first. "First call" is compile + one chunk; throughput is the median over the timed
chunks after it (min-max in brackets). "Background load" is the CPU time other processes used during
the timed chunks, in cores: numbers taken with a background load near the core count are not comparable.
"""


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def fmt_load(r: Result) -> str:
    return f"{statistics.median(r.background):.2f}" if r.background else "n/a"


def fmt_throughput(r: Result) -> str:
    """The median member rate in bold, with its unit and the [min-max] over the timed chunks."""
    member_rates = [x * r.members for x in r.rates]
    return f"**{fmt_rate(r.member_rate)}** {r.unit} [{fmt_rate(min(member_rates))}-{fmt_rate(max(member_rates))}]"


def thread_label(threads: int, default: int | None) -> str:
    return f"{threads} thread{'s' if threads > 1 else ''}" + (" (torch default)" if threads == default else "")


def ratios(one: Result, theirs: list[Result], default: int | None) -> tuple[float | None, float | None]:
    """ours(1 seed) / d3rlpy with torch's default threads, and / the fastest d3rlpy thread setting."""
    if not theirs:
        return None, None
    base = next((r for r in theirs if r.threads == default), None)
    fastest = max(theirs, key=lambda r: r.rate)
    return (one.member_rate / base.rate if base else None), one.member_rate / fastest.rate


def offline_table(
    results: list[Result], theirs: dict[str, list[Result]], algos: list[str], seeds: list[int], default: int | None
) -> str:
    """One row per offline algorithm: d3rlpy, ours for each seed count, the ratio ours(1 seed)/d3rlpy."""
    multi = [m for m in seeds if m != 1]
    settings = list(dict.fromkeys(r.threads for rs in theirs.values() for r in rs))
    head = ["algorithm", "d3rlpy equivalent"]
    head += [f"d3rlpy updates/s, {thread_label(t, default)}" for t in settings]
    head += ["jaxrl 1 seed updates/s", "jaxrl / d3rlpy" + (f" ({default} threads)" if len(settings) > 1 else "")]
    if len(settings) > 1:
        head.append("jaxrl / fastest d3rlpy")
    head.append("goal (ours / d3rlpy" + (f", {default} threads)" if len(settings) > 1 else ")"))
    head += [f"jaxrl {m} seeds member-updates/s (per program step)" for m in multi]
    head += [f"first call s (compile s), {' / '.join(map(str, seeds))} seeds", "MFLOP per update", "GFLOP/s, 1 seed"]
    head += ["background load (cores, max)"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for algo in algos:
        ours = {r.members: r for r in results if r.algo == algo and r.library == "jaxrl"}
        if not ours:
            continue
        d3 = {r.threads: r for r in theirs.get(algo, [])}
        one = ours.get(1)
        base, best = ratios(one, list(d3.values()), default) if one else (None, None)
        goal = ""
        if algo in GOALS:
            status = lambda x, g=GOALS[algo]: "met" if x >= g else "missed"  # noqa: E731
            goal = f">= {GOALS[algo]:g}x" + ("" if base is None else f": {status(base)}")
            if len(settings) > 1 and best is not None:
                goal += f" (vs fastest: {status(best)})"
        label = next(iter(d3.values())).name.split(", d3rlpy")[0] if d3 else "-"
        cells = [algo, label]
        for t in settings:
            r = d3.get(t)
            cells.append(f"{fmt_rate(r.rate)} [{fmt_rate(min(r.rates))}-{fmt_rate(max(r.rates))}]" if r else "-")
        cells.append(f"**{fmt_rate(one.member_rate)}** [{fmt_rate(min(one.rates))}-{fmt_rate(max(one.rates))}]" if one else "-")
        cells.append(f"**{base:.1f}x**" if base is not None else "-")
        if len(settings) > 1:
            cells.append(f"{best:.1f}x" if best is not None else "-")
        cells.append(goal)
        for m in multi:
            r = ours.get(m)
            cells.append(f"{fmt_rate(r.member_rate)} ({fmt_rate(r.rate)})" if r else "-")
        cells.append(" / ".join(f"{ours[m].first_call_s:.1f} ({ours[m].compile_s:.1f})" if m in ours else "-" for m in seeds))
        flops = next((r.flops for r in ours.values() if r.flops), None)
        cells.append(f"{flops / 1e6:.0f}" if flops else "n/a")
        cells.append(f"{one.member_rate * flops / 1e9:.0f}" if (one and flops) else "n/a")
        loads = [statistics.median(r.background) for r in [*ours.values(), *d3.values()] if r.background]
        cells.append(f"{max(loads):.2f}" if loads else "n/a")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def table(results: list[Result], ratios: list[tuple[str, float]]) -> str:
    rows = [
        "| benchmark | setting | first call s (compile s) | steady-state throughput [min-max] | per program step | background load (cores) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        step_unit = "updates/s" if "updates" in r.unit else r.unit
        per_step = f"{fmt_rate(r.rate)} {step_unit}"
        if r.flops:
            per_step += f" ({r.member_rate * r.flops / 1e9:.0f} GFLOP/s)"
        timed = f"{len(r.chunk_s)} x {r.steps_per_chunk}"
        compile_note = f"{r.first_call_s:.1f} ({r.compile_s:.1f})" + (f" + {len(r.recompiles)} recompile" if r.recompiles else "")
        rows.append(
            f"| {r.name} | {r.config}; timed {timed} | {compile_note} | {fmt_throughput(r)} | {per_step} | {fmt_load(r)} |"
        )
    for label, ratio in ratios:
        rows.append(f"| {label}: jaxrl / rejax | same settings | | **{ratio:.2f}x** | | |")
    return "\n".join(rows)


def offline_notes(
    results: list[Result], theirs: dict[str, list[Result]], algos: list[str], default_threads: int | None
) -> list[str]:
    """Where d3rlpy is faster with another thread count than torch's default, and how far a missed goal is."""
    notes = []
    for algo in algos:
        one = next((r for r in results if r.algo == algo and r.members == 1 and r.library == "jaxrl"), None)
        if one is None or not theirs.get(algo):
            continue
        base, best = ratios(one, theirs[algo], default_threads)
        fastest = max(theirs[algo], key=lambda r: r.rate)
        default = next((r for r in theirs[algo] if r.threads == default_threads), None)
        if default is not None and fastest is not default:
            notes.append(
                f"{algo}: d3rlpy is faster with {thread_label(fastest.threads, None)} than with torch's default "
                f"({fmt_rate(fastest.rate)} vs {fmt_rate(default.rate)} updates/s); against that, ours is {best:.1f}x"
            )
        if algo in GOALS and base is not None and base < GOALS[algo]:
            d3_rate = one.member_rate / base
            needed = GOALS[algo] * d3_rate
            compute = ""
            if one.flops:
                compute = (
                    f"; at XLA's {one.flops / 1e6:.0f} MFLOP per update that takes {needed * one.flops / 1e9:.0f} GFLOP/s, "
                    f"ours runs at {one.member_rate * one.flops / 1e9:.0f} GFLOP/s (d3rlpy's rate with the same flop count "
                    f"would be {d3_rate * one.flops / 1e9:.0f} GFLOP/s)"
                )
            notes.append(
                f"{algo}: goal >= {GOALS[algo]:g}x d3rlpy missed: {base:.1f}x, i.e. {base / GOALS[algo]:.0%} of the goal "
                f"({fmt_rate(one.member_rate)} vs the {fmt_rate(needed)} updates/s it would take){compute}"
            )
    if any(a in algos for a in ("td3bc", "rebrac")):
        notes.append(
            "td3bc/rebrac: like d3rlpy, ours computes the actor gradient only on every 2nd update (policy_freq=2, a `lax.cond` "
            "on the trainer's unbatched step); on the other updates it still evaluates the actor loss, forward only, for the log"
        )
    return notes


def run_notes(results: list[Result], cores: int, wait_total: float, seconds: float, quick: bool) -> list[str]:
    """Recompiles, re-run chunks, the load the results were taken under, the waiting, and the run's length."""
    notes = []
    for r in results:
        for rc in r.recompiles:
            notes.append(f"{r.name}: {rc}; that call is not counted and its compile time is included in the compile column")
        if r.discarded:
            notes.append(
                f"{r.name}: {r.discarded} timed chunk(s) ran while other processes were busy and were dropped and re-run"
            )
    loads = [statistics.median(r.background) for r in results if r.background]
    if loads and max(loads) > 0.5:
        busy = [r.name for r in results if r.background and statistics.median(r.background) > 0.5]
        notes.append(
            f"taken under load: {len(busy)} of {len(results)} benchmarks ran with a median background load above 0.5 cores "
            f"(max {max(loads):.2f} on {cores} cores); those numbers are lower than on a quiet machine"
        )
    if QUIET.spent > 0:
        notes.append(f"waited {QUIET.spent:.0f} s in all for other processes to go quiet (budget {wait_total:.0f} s)")
    notes.append(f"load average at the end of the run: {loadavg()}; whole run {seconds:.0f} s")
    if quick:
        notes.append("quick mode: short chunks, few repeats; indicative only")
    return notes


def section(key: str, date: str, info: dict, command: str, body: str, notes: list[str], title: str | None = None) -> str:
    flags = ", ".join(info["cpu_flags"]) or "n/a"
    title = title or f"{info['cpu']}, {info['cores']} cores"
    lines = [
        SECTION_BEGIN.format(key=key),
        f"## {date}: {title}",
        "",
        f"- date (UTC): {date}",
        f"- machine: {info['cpu']} ({info['cores']} cores available; {flags}), Python {info['python']}",
        f"- jax {info['jax']}, backend `{info['backend']}`, device {info['device']} x{info['devices']}"
        + (f", XLA_FLAGS=`{info['xla_flags']}`" if info["xla_flags"] else ""),
        f"- command: `{command}`",
        "",
        body,
        "",
        *[f"- {n}" for n in notes],
        SECTION_END,
    ]
    return "\n".join(lines).rstrip() + "\n"


def write_section(path: Path, key: str, text: str) -> None:
    """Insert `text` at the top of the sections, replacing an older section with the same key."""
    old = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(SECTION_BEGIN.format(key=key)) + r".*?" + re.escape(SECTION_END) + r"\n?", re.S)
    old = pattern.sub("", old)
    first = old.find("<!-- bench-section ")
    if first >= 0:
        head, rest = old[:first], old[first:]
    else:
        head, rest = old, ""
    if not head.strip():
        head = HEADER
    path.write_text(head.rstrip() + "\n\n" + text + ("\n" + rest.lstrip() if rest.strip() else ""))


def print_report(body: str, notes: list[str]) -> None:
    print()
    print(body)
    for n in notes:
        print(f"- {n}")


def record(output: Path, key: str, date: str, info: dict, command: str, body: str, notes: list[str], title: str | None = None):
    """Write the run as the section `key` of `output` (replacing an older one with that key)."""
    write_section(output, key, section(key, date, info, command, body, notes, title))
    print(f"\nwrote a section to {output}")
