"""Run a fuzzing campaign: every target (or those named) for a time and/or a number of
executions, ``--parallel`` at a time, and report executions, crashes, hangs and peak memory.

    python3 fuzz/campaign.py --hours 24 --parallel 2 --out /var/tmp/petrel-campaign
    python3 fuzz/campaign.py --runs 10000000 --hours 48 engine swanctl

Each target runs as ``fuzz/fuzz_<name>.py -max_total_time=… -rss_limit_mb=2048 -timeout=10
-print_final_stats=1 <out>/<name>/corpus`` (``-atheris_runs=N`` too with ``--runs``) under
``/usr/bin/time -v``; its corpus starts from ``fuzz/seeds/<name>/`` and grows in ``<out>``
(pass the same ``--out`` again to continue a campaign).  Crashes and hangs are the
``crash-*``/``timeout-*``/``oom-*`` files libFuzzer leaves in ``<out>/<name>/``; reproduce one
with ``python3 fuzz/fuzz_<name>.py <file>``.  A summary table (Markdown, the format of
fuzz/README.md) is printed and written to ``<out>/summary.md``.

    python3 fuzz/campaign.py --report --out /var/tmp/petrel-campaign

reads every run's log under ``--out`` (lane subfolders too) and prints each run and each
target's totals: a campaign continued over several runs, figures read from the logs alone (a
run killed part-way counts up to its last status line).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

FUZZ_DIR = Path(__file__).resolve().parent
TARGETS = ("engine", "swanctl", "esp", "vici", "decode")


@dataclass
class RunStats:
    """What one libFuzzer run's log says: executions, time, peak memory, artifacts."""

    target: str
    log: Path
    executions: int = 0
    seconds: int = 0
    peak_rss_mb: int | None = None
    finished: bool = False  # final statistics printed (not killed part-way)
    crashes: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    exit: int | None = None


_STATUS = re.compile(r"^#(\d+)\s", re.MULTILINE)  # libFuzzer's "#N NEW/REDUCE/pulse" lines
_WALL = re.compile(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)")


def parse_log(target: str, log: Path) -> RunStats:
    """Read a run's figures from its log (see ``run``).  A run killed part-way counts the
    executions of its last status line; its time is the log's age when last written."""
    text = log.read_text(errors="replace")
    stats = RunStats(target, log)
    final = re.findall(r"stat::number_of_executed_units:\s+(\d+)", text)
    done = re.findall(r"^Done (\d+) (?:runs )?in \d+ second", text, re.MULTILINE)
    statuses = _STATUS.findall(text)
    counts = final or done or statuses
    stats.executions = int(counts[-1]) if counts else 0
    stats.finished = bool(final or done)
    wall = _WALL.findall(text)
    if wall:
        seconds = 0.0
        for part in wall[-1].split(":"):
            seconds = seconds * 60 + float(part)
        stats.seconds = round(seconds)
    else:
        started = datetime.datetime.strptime(log.stem.removeprefix("log-"), "%Y%m%d-%H%M%S")
        stats.seconds = round(log.stat().st_mtime - started.timestamp())
    peak = re.findall(r"Maximum resident set size \(kbytes\): (\d+)", text)
    rss = re.findall(r"stat::peak_rss_mb:\s+(\d+)", text) or re.findall(r" rss: (\d+)Mb", text)
    stats.peak_rss_mb = int(peak[-1]) // 1024 if peak else (int(rss[-1]) if rss else None)
    for path in re.findall(r"Test unit written to (\S+)", text):
        name = Path(path).name
        (stats.hangs if name.startswith(("timeout-", "slow-")) else stats.crashes).append(name)
    status = re.findall(r"Exit status: (\d+)", text)
    stats.exit = int(status[-1]) if status else None
    return stats


def run(name: str, out: Path, seconds: int, runs: int | None) -> RunStats:
    work = out / name
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in (FUZZ_DIR / "seeds" / name).iterdir():
        if not (corpus / seed.name).exists():
            shutil.copy(seed, corpus)
    command = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        str(FUZZ_DIR / f"fuzz_{name}.py"),
        f"-max_total_time={seconds}",
        "-rss_limit_mb=2048",
        "-timeout=10",
        "-print_final_stats=1",
        f"-artifact_prefix={work}/",
        *([f"-atheris_runs={runs}"] if runs else []),
        str(corpus),
    ]
    log = work / f"log-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    with log.open("w") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False)
    stats = parse_log(name, log)
    stats.exit = done.returncode
    return stats


def corpus_size(stats: RunStats) -> int:
    corpus = stats.log.parent / "corpus"
    return sum(1 for _ in corpus.iterdir()) if corpus.is_dir() else 0


def table(results: list[RunStats]) -> str:
    lines = [
        "| target | executions | time | exec/s | crashes | hangs | peak RSS | corpus |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        rate = r.executions / r.seconds if r.seconds else 0
        lines.append(
            f"| {r.target} | {r.executions:,} | {r.seconds} s | {rate:,.0f} | "
            f"{len(r.crashes)} | {len(r.hangs)} | {r.peak_rss_mb} MB | {corpus_size(r)} |"
        )
    return "\n".join(lines)


def report(out: Path) -> str:
    """Every run recorded under ``out`` (``<out>/<target>/log-*.txt``, lanes included), one
    line each, then each target's totals: a campaign continued over several runs."""
    runs = sorted(
        (
            parse_log(log.parent.name, log)
            for log in out.rglob("log-*.txt")
            if log.parent.name in TARGETS
        ),
        key=lambda r: (TARGETS.index(r.target), r.log.name),
    )
    lines = [
        "| target | run | executions | time | crashes | hangs | peak RSS |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in runs:
        when = r.log.stem.removeprefix("log-")
        state = "" if r.finished else " (running, or killed)"
        lines.append(
            f"| {r.target} | {when}{state} | {r.executions:,} | {r.seconds} s | "
            f"{len(r.crashes)} | {len(r.hangs)} | {r.peak_rss_mb} MB |"
        )
    lines += [
        "",
        "| target | runs | executions | time | crashes | hangs | peak RSS | corpus |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for target in TARGETS:
        mine = [r for r in runs if r.target == target]
        if not mine:
            continue
        peaks = [r.peak_rss_mb for r in mine if r.peak_rss_mb is not None]
        hours = sum(r.seconds for r in mine) / 3600
        lines.append(
            f"| {target} | {len(mine)} | {sum(r.executions for r in mine):,} | {hours:.1f} h | "
            f"{sum(len(r.crashes) for r in mine)} | {sum(len(r.hangs) for r in mine)} | "
            f"{max(peaks) if peaks else '?'} MB | {corpus_size(mine[-1])} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", default=list(TARGETS))
    parser.add_argument("--hours", type=float, default=1.0, help="per target (default 1)")
    parser.add_argument("--runs", type=int, help="stop a target after this many executions")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/var/tmp/petrel-fuzz-campaign"))
    parser.add_argument(
        "--report", action="store_true", help="summarize the runs recorded under --out; run none"
    )
    args = parser.parse_args(argv[1:])
    if args.report:
        print(report(args.out), end="")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    seconds = int(args.hours * 3600)
    started = datetime.datetime.now().astimezone()
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        futures = [pool.submit(run, t, args.out, seconds, args.runs) for t in args.targets]
        results = [f.result() for f in futures]
    header = (
        f"Campaign of {started:%Y-%m-%d %H:%M %Z} on {platform.node()} "
        f"({os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}), "
        f"{args.parallel} targets at a time, up to {seconds} s each"
        + (f", up to {args.runs:,} executions" if args.runs else "")
    )
    summary = header + "\n\n" + table(results) + "\n"
    for r in results:
        for artifact in [*r.crashes, *r.hangs]:
            summary += f"\n- {r.target}: {args.out / r.target / artifact}"
    (args.out / "summary.md").write_text(summary)
    print(summary)
    return 1 if any(r.crashes or r.hangs or r.exit for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
