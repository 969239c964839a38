"""Every figure of the performance targets in one command: runs each benchmark script of this
folder in turn, for several interleaved rounds, each writing its rows as JSON, and prints the
medians over the rounds with each row's ratio to its floor and how many rounds met its target.

A script, not a test. Localhost only; each part's own options bound its loops.

    .venv/bin/python benchmarks/bench_targets.py                  # 3 rounds, SQLite, ~25 min
    .venv/bin/python benchmarks/bench_targets.py --quick --rounds 1   # a smoke run, ~3 min
    .venv/bin/python benchmarks/bench_targets.py --backend postgres   # the rows that apply
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True, slots=True, kw_only=True)
class Part:
    """One benchmark script and the options it is run with."""

    name: str
    script: str
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    backends: tuple[str, ...] = ("sqlite", "postgres")


PARTS = (
    Part(
        name="runs",
        script="bench_runs.py",
        full=("--runs", "100", "--runs-concurrent", "640", "--runs-stream", "100"),
        quick=("--quick",),
    ),
    Part(name="search", script="bench_search.py", quick=("--quick",)),
    Part(name="size", script="bench_size.py", quick=("--quick",)),
    # One 300-turn conversation of the delta graph per round: fewer turns would not measure
    # turn 300, and the rounds give the repeats.
    Part(
        name="delta",
        script="bench_delta.py",
        full=("--server", "--quick"),
        quick=("--server", "--quick"),
    ),
)


@dataclass(slots=True)
class Figure:
    """One row across rounds."""

    part: str
    figure: str
    unit: str
    target: str
    floors: list[float] = field(default_factory=list)
    servers: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    met: list[bool] = field(default_factory=list)


def run_part(part: Part, args: argparse.Namespace, folder: Path, round_no: int) -> dict[str, Any]:
    """Run one script once; return what it wrote, or raise naming what failed."""
    out = folder / f"{part.name}-{round_no}.json"
    command = [
        sys.executable,
        str(HERE / part.script),
        "--json",
        str(out),
        *(part.quick if args.quick else part.full),
    ]
    if args.backend != "sqlite":
        command += ["--backend", args.backend]
    print(f"[round {round_no}] {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    took = time.monotonic() - started
    if done.returncode != 0 or not out.exists():
        tail = done.stdout.decode(errors="replace").splitlines()[-15:]
        raise RuntimeError(
            f"{part.script} failed (exit {done.returncode}) after {took:.0f} s:\n" + "\n".join(tail)
        )
    print(f"[round {round_no}] {part.name}: {took:.0f} s", flush=True)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def collect(results: list[tuple[str, dict[str, Any]]]) -> list[Figure]:
    """Group the rows of every round by part and figure, in first-seen order."""
    figures: dict[tuple[str, str], Figure] = {}
    for part, result in results:
        for row in result["rows"]:
            key = (part, row["figure"])
            figure = figures.setdefault(
                key, Figure(part=part, figure=row["figure"], unit=row["unit"], target=row["target"])
            )
            figure.floors.append(float(row["floor"]))
            figure.servers.append(float(row["server"]))
            # A row judged on another ratio than server / floor (bench_delta's paired ratio of
            # late to new turns) shows that one.
            figure.ratios.append(float(row.get("paired_ratio", row["ratio"])))
            figure.met.append(bool(row["met"]))
    return list(figures.values())


def table(figures: list[Figure]) -> list[str]:
    """The medians as a Markdown table."""
    lines = [
        "| part | figure | unit | floor | server | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        lines.append(
            f"| {f.part} | {f.figure} | {f.unit} | {_num(statistics.median(f.floors))} | "
            f"{_num(statistics.median(f.servers))} | {statistics.median(f.ratios):.2f}x | "
            f"{f.target} | {sum(f.met)} of {len(f.met)} |"
        )
    return lines


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.2f}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every part")
    parser.add_argument("--quick", action="store_true", help="each part's smoke options")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--only", default="", help="comma-separated parts to run (runs, search, size, delta)"
    )
    parser.add_argument("--json", type=Path, help="also write every round's rows here")
    return parser


def main() -> None:
    args = _parser().parse_args()
    chosen = {name for name in args.only.split(",") if name}
    unknown = chosen - {p.name for p in PARTS}
    if unknown:
        sys.exit(f"unknown parts: {', '.join(sorted(unknown))}; known: runs, search, size, delta")
    parts = [p for p in PARTS if (not chosen or p.name in chosen) and args.backend in p.backends]
    results: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-targets-") as tmp:
        for round_no in range(1, args.rounds + 1):
            for part in parts:
                try:
                    results.append((part.name, run_part(part, args, Path(tmp), round_no)))
                except RuntimeError as exc:
                    sys.exit(str(exc))
    print()
    print(f"backend {args.backend}, {args.rounds} round(s), load {os.getloadavg()}")
    print("\n".join(table(collect(results))))
    http = [r["http_floor_ms"] for name, r in results if name == "runs" and "http_floor_ms" in r]
    if http:
        print(
            f"\nHTTP floor (bench_runs.py: the first event of the same stream from a server that "
            f"answers at once, SDK and uvicorn only): median {statistics.median(http):.2f} ms "
            f"over {len(http)} round(s)"
        )
    if args.json is not None:
        args.json.write_text(
            json.dumps({"backend": args.backend, "rounds": [r for _, r in results]}, indent=1)
        )


if __name__ == "__main__":
    main()
