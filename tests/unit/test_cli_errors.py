"""A user's mistake or a missing prerequisite is one line on stderr and a non-zero exit, never a
traceback; a bug keeps its traceback, and ``--debug`` shows one for any error."""

from __future__ import annotations

import argparse
import errno
import subprocess
import sys
from pathlib import Path

import pytest

from petrel import cli, demo
from petrel.lab.prerequisites import PeerStartError
from petrel.lab.strongswan import charon_failure

PETREL = [sys.executable, "-m", "petrel.cli"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PETREL, *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_missing_config_file(tmp_path: Path) -> None:
    result = run("--socket", str(tmp_path / "s"), "daemon", "--config", str(tmp_path / "none"))
    assert result.returncode == 2
    assert one_line(result) == f"petrel daemon: {tmp_path / 'none'}:0: file not found"


def test_config_syntax_error(tmp_path: Path) -> None:
    conf = tmp_path / "swanctl.conf"
    conf.write_text("connections {\n  c {\n    version = 2\n")
    line = one_line(run("--socket", str(tmp_path / "s"), "daemon", "--config", str(conf)))
    assert line.startswith(f"petrel daemon: {conf}:"), line


def test_unknown_setting(tmp_path: Path) -> None:
    conf = tmp_path / "swanctl.conf"
    conf.write_text("connections {\n  c {\n    bogus = 1\n  }\n}\n")
    line = one_line(run("--socket", str(tmp_path / "s"), "daemon", "--config", str(conf)))
    assert line == f"petrel daemon: {conf}:3: unknown setting 'connections.c.bogus'"


def test_bad_log_spec(tmp_path: Path) -> None:
    conf = tmp_path / "swanctl.conf"
    conf.write_text("")
    line = one_line(
        run("--socket", str(tmp_path / "s"), "daemon", "--config", str(conf), "--log", "x=2")
    )
    assert line.startswith("petrel daemon: --log 'x=2': unknown log subsystem 'x'"), line


@pytest.mark.parametrize(
    "command",
    [["list-sas"], ["stats"], ["initiate", "--child", "net"], ["terminate", "--ike", "c"]],
)
def test_daemon_not_reachable(tmp_path: Path, command: list[str]) -> None:
    sock = tmp_path / "petrel.vici"
    line = one_line(run("--socket", str(sock), *command))
    assert line == (
        f"petrel {command[0]}: cannot reach the daemon at {sock}: No such file or directory "
        "(is petrel daemon running?)"
    )


def test_not_a_socket(tmp_path: Path) -> None:
    line = one_line(run("--socket", str(tmp_path), "list-sas"))
    assert line.startswith(f"petrel list-sas: cannot reach the daemon at {tmp_path}: "), line


def test_decode_missing_file(tmp_path: Path) -> None:
    result = run("decode", str(tmp_path / "none.pcap"))
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr


def test_usage_errors_are_argparse_messages() -> None:
    result = run("initiate")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "one of the arguments --child --ike is required" in result.stderr


# -- in-process: cli.main's handler ---------------------------------------------------------


def _fail_with(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    def boom(args: argparse.Namespace) -> int:
        raise exc

    monkeypatch.setattr(cli, "_cmd_stats", boom)


def test_missing_program_names_its_package(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fail_with(monkeypatch, FileNotFoundError(errno.ENOENT, "No such file or directory", "ip"))
    assert cli.main(["stats"]) == 1
    assert capsys.readouterr().err == (
        "petrel stats: program not found: ip; install iproute2 (bash scripts/install-deps.sh)\n"
    )


def test_failed_command_shows_its_last_stderr_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    exc = subprocess.CalledProcessError(1, ["ip", "netns", "add", "x"], "", "warn\nFile exists\n")
    _fail_with(monkeypatch, exc)
    assert cli.main(["stats"]) == 1
    assert capsys.readouterr().err == "petrel stats: command failed: ip netns add x: File exists\n"


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_with(monkeypatch, ZeroDivisionError("a bug"))
    with pytest.raises(ZeroDivisionError):
        cli.main(["stats"])


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    _fail_with(monkeypatch, PermissionError(errno.EACCES, "Permission denied"))
    if how == "env":
        monkeypatch.setenv("PETREL_DEBUG", "1")
    with pytest.raises(PermissionError):
        cli.main(["--debug", "stats"] if how == "flag" else ["stats"])


def test_debug_flag_reaches_decode(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--debug", "decode", "--help"]) == 0
    assert "usage" in capsys.readouterr().out.lower()


def test_demo_needs_root(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(demo.os, "geteuid", lambda: 1000)
    assert cli.main(["demo"]) == 2
    out = capsys.readouterr()
    assert out.err == "petrel demo: needs root (network namespaces, TUN devices)\n" and not out.out


def test_demo_names_missing_programs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(demo.os, "geteuid", lambda: 0)
    monkeypatch.setattr(demo, "DEMO_PROGRAMS", ("ip", "petrel-no-such-program"))
    monkeypatch.setattr(
        "petrel.lab.prerequisites.LAB_PROGRAMS", {"petrel-no-such-program": "pkg-x"}
    )
    assert cli.main(["demo"]) == 1
    assert capsys.readouterr().err == (
        "petrel demo: petrel-no-such-program not found; install pkg-x "
        "(bash scripts/install-deps.sh)\n"
    )


def test_demo_peer_start_failure_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(*args: object) -> bool:
        raise PeerStartError(
            "strongSwan (charon, right)",
            "plugin 'openssl': failed to load - openssl_plugin_create not found",
            "libstrongswan-standard-plugins",
            "a long log\nthat is not shown",
        )

    monkeypatch.setattr(demo.os, "geteuid", lambda: 0)
    monkeypatch.setattr(demo, "_run_pair", fail)
    assert cli.main(["demo"]) == 1
    assert capsys.readouterr().err == (
        "petrel demo: strongSwan (charon, right) failed to start: plugin 'openssl': failed to "
        "load - openssl_plugin_create not found; install libstrongswan-standard-plugins "
        "(bash scripts/install-deps.sh)\n"
    )


# -- charon's log: the line that says why -------------------------------------------------------

# charon 5.9.8 on a fresh Debian 12 without libstrongswan-standard-plugins, started with the
# lab's strongswan.conf (the failure of issue 7).
CHARON_WITHOUT_OPENSSL = """\
00[DMN] Starting IKE charon daemon (strongSwan 5.9.8, Linux 6.18.44-fc-v1045, x86_64)
00[LIB] plugin 'openssl': failed to load - openssl_plugin_create not found and no plugin file available
00[LIB] created TUN device: ipsec0
00[LIB] feature CUSTOM:libcharon-sa-managers in critical plugin 'charon' has unmet dependency: HASHER:HASH_SHA1
00[LIB] feature CUSTOM:libcharon in critical plugin 'charon' has unmet dependency: CUSTOM:libcharon-sa-managers
00[LIB] feature CUSTOM:libcharon-receiver in critical plugin 'charon' has unmet dependency: HASHER:HASH_SHA1
00[LIB] failed to load 3 critical plugin features
00[DMN] initialization failed - aborting charon
"""  # noqa: E501


def test_charon_failure_names_the_missing_plugin_and_its_package() -> None:
    reason, package = charon_failure(CHARON_WITHOUT_OPENSSL)
    assert reason == (
        "plugin 'openssl': failed to load - openssl_plugin_create not found and no plugin file "
        "available"
    )
    assert package == "libstrongswan-standard-plugins"


def test_charon_failure_without_a_plugin_line() -> None:
    log = "12:00:00.001 00[DMN] Starting IKE charon daemon\n12:00:00.002 00[NET] could not open socket: Address in use\n"  # noqa: E501
    assert charon_failure(log) == ("could not open socket: Address in use", None)
    assert charon_failure("") == ("no log output", None)


def test_peer_start_error_summary_is_one_line() -> None:
    exc = PeerStartError("Petrel daemon (left)", "petrel daemon: bad", None, "log\nlines")
    assert exc.summary == "Petrel daemon (left) failed to start: petrel daemon: bad"
    assert "log\nlines" in str(exc) and isinstance(exc, RuntimeError)
