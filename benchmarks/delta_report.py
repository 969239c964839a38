"""What `bench_delta.py` prints and writes: each variant's figures, the paired ratio the target
is judged on, and issue 18's rows for `--json`."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

WINDOW = 10
RATIO_TARGET = 1.2


@dataclass(frozen=True, slots=True, kw_only=True)
class Figures:
    """One channel kind's measurements; times in seconds."""

    turns: list[list[float]]
    """Wall time of each turn of the long thread, in order, for each conversation."""
    fresh: list[list[float]]
    """Wall time of turns 1-10 of a new thread, each run just before one of the long thread's
    last ten turns, for each conversation."""
    cpu: list[list[float]]
    """CPU time of the process (all threads) for the same turns: the long thread's last ten
    followed by the new thread's ten, for each conversation."""
    cpu_of: str
    """Whose CPU time `cpu` is."""
    outside_model: list[list[float]]
    """Wall time outside the chat model call for the same turns, in the same order; empty
    through the server."""
    database_bytes: int
    """The SQLite file after the WAL is folded back into it, or Postgres's tables with their
    indexes and TOAST."""
    messages: int
    """Messages in the long thread at the end."""
    state_bytes: int
    """The thread's state as JSON at the end: what the runtime writes to the threads table."""
    costs: dict[str, float]
    """Median cost of single steps, measured on the thread as the last turn left it."""


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _per_turn(runs: list[list[float]], turns: range) -> str:
    # Each turn's median over the conversations.
    return " ".join(f"{statistics.median(one[t - 1] for one in runs) * 1000:.1f}" for t in turns)


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    """What the target is judged on, for one variant; times in seconds."""

    late: float
    """Median of the long thread's last ten turns."""
    new: float
    """Median of the new thread's turns 1-10 run alongside them."""
    paired: float
    """Median over the pairs of a late turn and the new turn run just before it."""


def report(name: str, figures: Figures) -> Summary:
    """Prints one variant's figures; returns those the target is judged on."""
    runs = figures.turns
    count = len(runs[0])
    first_turns, last_turns = range(1, WINDOW + 1), range(count - WINDOW + 1, count + 1)
    first = statistics.median(t for one in runs for t in one[:WINDOW])
    last = statistics.median(t for one in runs for t in one[-WINDOW:])
    fresh = statistics.median(t for one in figures.fresh for t in one)
    cpu_last = statistics.median(t for one in figures.cpu for t in one[:WINDOW])
    cpu_fresh = statistics.median(t for one in figures.cpu for t in one[WINDOW:])
    print(f"\n{name}: {len(runs)} conversations of {count} turns, {figures.messages} messages")
    print(f"  per turn, ms, turns {first_turns.start}-{first_turns.stop - 1}: ", end="")
    print(_per_turn(runs, first_turns))
    print(f"  per turn, ms, turns {last_turns.start}-{last_turns.stop - 1}: ", end="")
    print(_per_turn(runs, last_turns))
    print(
        f"  per turn, ms, a new thread's turns 1-{WINDOW}, each just before one of those: ",
        end="",
    )
    print(_per_turn(figures.fresh, first_turns))
    # Each late turn over the new thread's turn run just before it: pairs a minute apart at
    # most, so the machine's slow and fast spells cancel out.
    pairs = [
        late / new
        for one, fresh_turns in zip(runs, figures.fresh, strict=True)
        for late, new in zip(one[-WINDOW:], fresh_turns, strict=True)
    ]
    interleaved = statistics.median(pairs)
    each = [
        statistics.median(one[-WINDOW:]) / statistics.median(new)
        for one, new in zip(runs, figures.fresh, strict=True)
    ]
    print(
        f"  median turns {last_turns.start}-{last_turns.stop - 1}: {_ms(last)}; ",
        end="",
    )
    print(f"the new thread's turns 1-{WINDOW} run alongside: {_ms(fresh)}")
    print(
        f"  ratio, median over the {len(pairs)} pairs of a late turn and the new turn before it: ",
        end="",
    )
    print(f"{interleaved:.2f}x (each conversation: " + ", ".join(f"{r:.2f}x" for r in each) + ")")
    print(
        f"  ratio to this thread's own turns 1-{WINDOW} ({_ms(first)}), minutes earlier: ",
        end="",
    )
    print(f"{last / first:.2f}x")
    print(f"  CPU of {figures.cpu_of} (all threads) per turn, late over new: ", end="")
    print(f"{_ms(cpu_last)} / {_ms(cpu_fresh)} = {cpu_last / cpu_fresh:.2f}x")
    if figures.outside_model:
        out_last = statistics.median(t for one in figures.outside_model for t in one[:WINDOW])
        out_fresh = statistics.median(t for one in figures.outside_model for t in one[WINDOW:])
        print("  wall time outside the chat model call, late over new: ", end="")
        print(f"{_ms(out_last)} / {_ms(out_fresh)} = {out_last / out_fresh:.2f}x")
    print(f"  database size: {figures.database_bytes / 1024:.0f} KiB")
    print(f"  state as JSON at the end: {figures.state_bytes / 1024:.0f} KiB")
    for step, seconds in figures.costs.items():
        print(f"  at the end, {step}: {_ms(seconds)}")
    return Summary(late=last, new=fresh, paired=interleaved)


def compare(results: dict[str, Figures], where: str) -> Summary:
    """Prints each graph's figures and the verdict; returns the delta graph's summary."""
    summaries = {name: report(f"{name} ({where})", figures) for name, figures in results.items()}
    delta = summaries["delta"]
    if "plain" in results:
        shrink = results["plain"].database_bytes / results["delta"].database_bytes
        print(f"\n{where}: database plain/delta {shrink:.1f}x", end="")
    print(f"\n{where}: delta late/new {delta.paired:.2f}x; ", end="")
    verdict = "met" if delta.paired <= RATIO_TARGET else "MISSED"
    print(f"target delta late turns <= {RATIO_TARGET}x turns 1-{WINDOW}: {verdict}")
    return delta


def rows(in_process: Summary, served: dict[str, Summary], turns: int) -> list[dict[str, Any]]:
    """Issue 18's rows (the contract of `--json`). Each row's floor and server are median
    turn times in ms, `ratio` their quotient: in-process, a new thread's turns 1-10 and the
    long thread's last ten; through the server, the in-process late turns of the same
    invocation and the server's. Each is judged on its own paired late/new ratio, which the
    row also carries (`paired_ratio`), against the 1.2x target."""
    late = f"turns {turns - WINDOW + 1}-{turns}"
    found = [
        _row(
            f"in-process: {late} / a new thread's turns 1-{WINDOW}",
            in_process.new,
            in_process.late,
            in_process.paired,
        )
    ]
    for call, summary in served.items():
        found.append(
            _row(
                f"server, runs.{call}: {late} / in-process {late}",
                in_process.late,
                summary.late,
                summary.paired,
            )
        )
    return found


def _row(figure: str, floor: float, server: float, paired: float) -> dict[str, Any]:
    return {
        "figure": figure,
        "unit": "ms",
        "floor": round(floor * 1000, 3),
        "server": round(server * 1000, 3),
        "ratio": round(server / floor, 3),
        "paired_ratio": round(paired, 3),
        "target": f"paired late/new <= {RATIO_TARGET}x",
        "met": paired <= RATIO_TARGET,
    }


def print_rows(found: list[dict[str, Any]]) -> None:
    print(f"\n{'figure':<62} {'floor':>8} {'server':>8} {'ratio':>6} {'paired':>7}  met")
    for row in found:
        print(
            f"{row['figure']:<62} {row['floor']:>8.2f} {row['server']:>8.2f}"
            f" {row['ratio']:>5.2f}x {row['paired_ratio']:>6.2f}x  {'yes' if row['met'] else 'NO'}"
        )
