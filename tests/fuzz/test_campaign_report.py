"""fuzz/campaign.py reads a run's figures from its log: finished, crashed, or killed part-way."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

CAMPAIGN = Path(__file__).resolve().parents[2] / "fuzz" / "campaign.py"

FINISHED = """INFO: Seed: 1
#2\tINITED cov: 10 ft: 10 corp: 3/30b exec/s: 0 rss: 40Mb
#1048576\tpulse  cov: 12 ft: 14 corp: 5/50b lim: 4096 exec/s: 2000 rss: 55Mb
Done 3000000 runs in 1500 second(s)
stat::number_of_executed_units: 3000000
stat::peak_rss_mb:              57
\tElapsed (wall clock) time (h:mm:ss or m:ss): 25:01.50
\tMaximum resident set size (kbytes): 58368
\tExit status: 0
"""

CRASHED = """#600000\tNEW    cov: 1 ft: 1 corp: 1/1b exec/s: 296 rss: 69Mb
==1== ERROR: libFuzzer: fuzz target exited
artifact_prefix='/x/engine/'; Test unit written to /x/engine/crash-12db22
stat::number_of_executed_units: 662795
stat::peak_rss_mb:              69
\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02:03
\tExit status: 1
"""

KILLED = """#4194304\tpulse  cov: 276 ft: 811 corp: 159/18Kb lim: 4096 exec/s: 12590 rss: 48Mb
#4300000\tREDUCE cov: 276 ft: 811 corp: 159/18Kb lim: 4096 exec/s: 12600 rss: 49Mb L: 1/2
==2== ERROR: libFuzzer: timeout after 10 seconds
artifact_prefix='/x/vici/'; Test unit written to /x/vici/timeout-ab
"""


def _campaign() -> ModuleType:
    spec = importlib.util.spec_from_file_location("petrel_fuzz_campaign", CAMPAIGN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _log(folder: Path, target: str, stamp: str, text: str) -> Path:
    (folder / target).mkdir(parents=True, exist_ok=True)
    path = folder / target / f"log-{stamp}.txt"
    path.write_text(text)
    return path


def test_a_finished_run(tmp_path: Path) -> None:
    stats = _campaign().parse_log("esp", _log(tmp_path, "esp", "20261201-224323", FINISHED))
    assert (stats.executions, stats.seconds, stats.peak_rss_mb) == (3_000_000, 1502, 57)
    assert stats.finished and stats.exit == 0
    assert stats.crashes == stats.hangs == []


def test_a_crashed_run_names_its_artifact(tmp_path: Path) -> None:
    stats = _campaign().parse_log("engine", _log(tmp_path, "engine", "20261201-215402", CRASHED))
    assert (stats.executions, stats.seconds, stats.peak_rss_mb) == (662_795, 3723, 69)
    assert stats.crashes == ["crash-12db22"] and stats.hangs == []


def test_a_killed_run_counts_to_its_last_status_line(tmp_path: Path) -> None:
    stats = _campaign().parse_log("vici", _log(tmp_path, "vici", "20261202-033424", KILLED))
    assert stats.executions == 4_300_000 and not stats.finished
    assert stats.peak_rss_mb == 49
    assert stats.hangs == ["timeout-ab"] and stats.crashes == []


def test_report_sums_each_targets_runs_across_lanes(tmp_path: Path) -> None:
    campaign = _campaign()
    _log(tmp_path / "laneA", "engine", "20261201-215402", CRASHED)
    _log(tmp_path / "laneB", "engine", "20261201-223318", FINISHED)
    _log(tmp_path / "laneB", "vici", "20261202-033424", KILLED)
    _log(tmp_path / "laneB", "notatarget", "20261202-033424", FINISHED)
    text = campaign.report(tmp_path)
    assert "| engine | 2 | 3,662,795 |" in text
    assert "| vici | 1 | 4,300,000 |" in text
    assert "(running, or killed)" in text
    assert "notatarget" not in text
