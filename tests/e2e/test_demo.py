"""README's main job: `petrel demo` brings real tunnels up, moves traffic, and cleans up."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.interop]


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def test_demo_runs_both_pairs_and_leaves_nothing_behind() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "petrel.cli", "demo", "--seconds", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    for title in ("Petrel <-> Petrel", "Petrel <-> strongSwan"):
        assert re.search(rf"cleaned up; {re.escape(title)}[^\n]*: OK$", out, re.M), out
    assert out.count("SHA-256 matches at the far end") == 2, out
    assert out.count("3/3 answered; back: 3/3 answered") == 2, out
    # The demo's own namespaces are gone (other labs on the machine may come and go meanwhile).
    made = set(re.findall(r"namespaces (\S+) \(.*?\) and (\S+) \(", out))
    assert len(made) == 2, out
    assert not {ns for pair in made for ns in pair} & namespaces(), out
