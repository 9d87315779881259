"""Running programs for the lab: in a namespace, polled, stopped by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

PYTHON = sys.executable


def run_in(
    ns: str | None,
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 60,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to completion inside namespace ``ns`` (None: here); capture text output."""
    full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    proc = subprocess.run(
        full,
        capture_output=True,
        timeout=timeout,
        input=input.decode() if input is not None else None,
        text=True,
        env=env,
    )
    if check and proc.returncode != 0:
        raise CommandFailed(proc.returncode, full, proc.stdout, proc.stderr)
    return proc


class CommandFailed(subprocess.CalledProcessError):
    """A failed command whose message shows the end of its stderr (and not the whole argv)."""

    def __str__(self) -> str:
        argv = " ".join(str(a) for a in self.cmd if "\n" not in str(a))
        return f"{argv!r} exited {self.returncode}: {(self.stderr or '')[-2000:]}"


def wait_for(predicate: Callable[[], object], timeout: float = 10, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is truthy or ``timeout`` seconds pass; return the outcome."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def stop_process(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, grace: float = 5) -> None:
    """Signal ``proc`` by PID, then SIGKILL it if it has not exited after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, sig)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(grace)
