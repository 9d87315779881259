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
from pathlib import Path

FUZZ_DIR = Path(__file__).resolve().parent
TARGETS = ("engine", "swanctl", "esp", "vici", "decode")


def run(name: str, out: Path, seconds: int, runs: int | None) -> dict[str, object]:
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
    started = time.time()
    start = time.monotonic()
    with log.open("w") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False)
    elapsed = time.monotonic() - start
    text = log.read_text(errors="replace")
    executions = re.findall(r"stat::number_of_executed_units:\s+(\d+)", text) or [
        n for n, _ in re.findall(r"^Done (\d+) (?:runs )?in (\d+) second", text, re.MULTILINE)
    ]
    peak_libfuzzer = re.findall(r"stat::peak_rss_mb:\s+(\d+)", text)
    peak_time = re.findall(r"Maximum resident set size \(kbytes\): (\d+)", text)
    new = [p for p in work.iterdir() if p.stat().st_mtime >= started]  # this run's artifacts
    artifacts = sorted(p.name for p in new if p.name.startswith(("crash-", "oom-")))
    hangs = sorted(p.name for p in new if p.name.startswith(("timeout-", "slow-")))
    return {
        "target": name,
        "exit": done.returncode,
        "executions": int(executions[-1]) if executions else None,
        "seconds": round(elapsed),
        "peak_rss_mb": int(peak_time[-1]) // 1024 if peak_time else None,
        "libfuzzer_peak_rss_mb": int(peak_libfuzzer[-1]) if peak_libfuzzer else None,
        "crashes": artifacts,
        "hangs": hangs,
        "corpus": sum(1 for _ in corpus.iterdir()),
        "log": str(log),
    }


def table(results: list[dict[str, object]]) -> str:
    lines = [
        "| target | executions | time | exec/s | crashes | hangs | peak RSS | corpus |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        executions = r["executions"] or 0
        rate = executions / r["seconds"] if r["seconds"] else 0  # type: ignore[operator]
        lines.append(
            f"| {r['target']} | {executions:,} | {r['seconds']} s | {rate:,.0f} | "
            f"{len(r['crashes'])} | {len(r['hangs'])} | {r['peak_rss_mb']} MB | "  # type: ignore[arg-type]
            f"{r['corpus']} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", default=list(TARGETS))
    parser.add_argument("--hours", type=float, default=1.0, help="per target (default 1)")
    parser.add_argument("--runs", type=int, help="stop a target after this many executions")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/var/tmp/petrel-fuzz-campaign"))
    args = parser.parse_args(argv[1:])
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
        for artifact in [*r["crashes"], *r["hangs"]]:  # type: ignore[misc]
            summary += f"\n- {r['target']}: {args.out / str(r['target']) / artifact}"
    (args.out / "summary.md").write_text(summary)
    print(summary)
    return 1 if any(r["crashes"] or r["hangs"] or r["exit"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
