"""Errors a user or the machine causes: one line on stderr and a documented exit status."""

from __future__ import annotations

import errno
import os
import subprocess
from types import FrameType, TracebackType

EXIT_OK = 0
"""The command did what was asked."""
EXIT_FAILED = 1
"""The daemon (or the configuration) refused or failed it: ``success = no``, a bad file."""
EXIT_USAGE = 2
"""The command line is wrong (argparse's own status as well)."""
EXIT_UNREACHABLE = 3
"""No daemon answers on the control socket (not running, wrong ``--socket``, no rights)."""


class DaemonUnreachable(Exception):
    """The VICI socket cannot be reached; ``str()`` is the one-line reason."""


class UsageError(Exception):
    """A mistake in the command line that argparse cannot see (a bad ``--log`` spec, …)."""


# Where in Petrel an OSError arose (the innermost petrel function on its traceback) → what was
# being done, for the one-line message; f_locals of that frame fill in the details.
_DOING = {
    "open_udp": "cannot bind UDP {host}:{port}",
    "open_esp_raw": "cannot open a raw ESP socket on {host}",
    "open_tun": "cannot open a TUN device ({name})",
    "_remove_stale": "control socket {path}",
    "start_server": "control socket {path}",
}


def _petrel_frame(tb: TracebackType | None) -> FrameType | None:
    """The innermost frame of the petrel package on a traceback."""
    found = None
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith(package):
            found = tb.tb_frame
        tb = tb.tb_next
    return found


def _hint(exc: OSError, doing: str) -> str:
    code = exc.errno
    if code in (errno.EACCES, errno.EPERM):
        return "run it as root"
    if code == errno.EADDRINUSE and doing.startswith("cannot bind"):
        return "another IKE daemon, charon or petrel, holds the port: stop it first"
    if code == errno.EADDRINUSE:
        return "another petrel daemon is running: stop it or give --socket another path"
    if doing.startswith("cannot open a TUN") and code in (errno.ENOENT, errno.ENODEV):
        return "the kernel's TUN driver is missing: modprobe tun"
    if code == errno.EADDRNOTAVAIL:
        return "no interface holds that address: check local_addrs"
    if isinstance(exc, ConnectionError | FileNotFoundError) and "vici" in str(exc).lower():
        return "is the daemon running? (petrel daemon, or --socket)"
    return ""


def describe_error(exc: BaseException) -> str:
    """One line saying what went wrong (and, when known, what to do) for a user-facing error."""
    from ..lab.prerequisites import INSTALL_HINT, LAB_PROGRAMS, PeerStartError

    if isinstance(exc, PeerStartError):
        return exc.summary
    if isinstance(exc, subprocess.CalledProcessError):
        argv = exc.cmd if isinstance(exc.cmd, list | tuple) else [exc.cmd]
        shown = " ".join(str(a) for a in argv if "\n" not in str(a))
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        last = (err or "").strip().splitlines()[-1:] or [f"exit status {exc.returncode}"]
        return f"command failed: {shown}: {last[0]}"
    if isinstance(exc, FileNotFoundError) and exc.filename in LAB_PROGRAMS:
        package = LAB_PROGRAMS[exc.filename]
        return f"program not found: {exc.filename}; install {package} ({INSTALL_HINT})"
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc) or type(exc).__name__
        if exc.filename is not None:
            text = f"{exc.filename}: {text}"
        doing = ""
        frame = _petrel_frame(exc.__traceback__)
        if frame is not None and frame.f_code.co_name in _DOING:
            values = {k: v for k, v in frame.f_locals.items() if isinstance(v, str | int)}
            try:
                doing = _DOING[frame.f_code.co_name].format(**values)
            except (KeyError, IndexError):
                doing = ""
        if doing and not (exc.filename is not None and str(exc.filename) in doing):
            text = f"{doing}: {text}"
        hint = _hint(exc, doing)
        return f"{text} ({hint})" if hint else text
    return str(exc) or type(exc).__name__


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the user's or the machine's, not Petrel's: one line, no traceback.
    Anything else is a bug and keeps its traceback."""
    from ..config.errors import ConfigError
    from ..control.vici import ViciError
    from ..lab.prerequisites import PeerStartError

    return (
        DaemonUnreachable,
        OSError,
        ConfigError,
        ViciError,
        UsageError,
        PeerStartError,
        subprocess.CalledProcessError,
    )
