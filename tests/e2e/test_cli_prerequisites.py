"""A missing prerequisite at start is one line and a non-zero exit: `petrel daemon` without
privileges, without /dev/net/tun, with its port or control socket taken; `petrel demo` when
charon cannot start (the failure of issue 7, with the openssl plugin made unloadable)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from petrel import cli
from petrel.lab import Lab, PetrelPeer, strongswan_pair_confs
from petrel.lab import strongswan as lab_strongswan
from petrel.lab.prerequisites import PeerStartError
from petrel.lab.process import PYTHON

pytestmark = [pytest.mark.e2e]


def daemon(
    lab: Lab, conf: Path, sock: Path, *wrap: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    argv = [*wrap, PYTHON, "-m", "petrel.cli", "--socket", str(sock), "daemon"]
    return subprocess.run(
        ["ip", "netns", "exec", lab.left.ns, *argv, "--config", str(conf)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The daemon's last stderr line, after checking it exited non-zero without a traceback."""
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


@pytest.fixture
def conf(lab: Lab) -> Path:
    path = lab.workdir / "swanctl.conf"
    path.write_text(strongswan_pair_confs(lab)[0])
    return path


def test_without_privileges(lab: Lab, conf: Path) -> None:
    no_caps = ("setpriv", "--bounding-set", "-all", "--inh-caps", "-all")
    line = error_line(daemon(lab, conf, lab.workdir / "s.vici", *no_caps))
    assert (
        line == "petrel daemon: cannot bind UDP 192.0.2.1:500: Permission denied (run it as root)"
    )


def test_without_tun(lab: Lab, conf: Path) -> None:
    sock = lab.workdir / "s.vici"
    shell = f"mount -t tmpfs none /dev/net && exec {PYTHON} -m petrel.cli --socket {sock} "
    shell += f"daemon --config {conf}"
    line = error_line(daemon(lab, conf, sock, "unshare", "-m", "sh", "-c", shell, "--"))
    assert line == (
        "petrel daemon: cannot open a TUN device (petrel%d): /dev/net/tun: No such file or "
        "directory (the kernel's TUN driver is missing: modprobe tun)"
    )


_HOLD_PORT = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("192.0.2.1", 500))
print("bound", flush=True)
time.sleep(60)
"""


def test_port_in_use(lab: Lab, conf: Path) -> None:
    holder = lab.spawn_in(lab.left.ns, [PYTHON, "-c", _HOLD_PORT], stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline() == b"bound\n"
    line = error_line(daemon(lab, conf, lab.workdir / "s.vici"))
    assert line == (
        "petrel daemon: cannot bind UDP 192.0.2.1:500: Address already in use "
        "(another IKE daemon, charon or petrel, holds the port: stop it first)"
    )


def test_control_socket_in_use(lab: Lab, conf: Path) -> None:
    first = PetrelPeer(lab, lab.right.ns, "right", strongswan_pair_confs(lab)[1]).start()
    result = subprocess.run(
        [
            *("ip", "netns", "exec", lab.left.ns, PYTHON, "-m", "petrel.cli"),
            *("--socket", str(first.vici), "daemon", "--config", str(conf)),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert error_line(result) == (
        f"petrel daemon: {first.vici}: a VICI server is already listening "
        "(another petrel daemon is running: stop it or give --socket another path)"
    )
    assert first.running


def test_petrel_peer_reports_the_daemons_line(lab: Lab) -> None:
    peer = PetrelPeer(lab, lab.left.ns, "left", "connections {\n  c {\n    bogus = 1\n  }\n}\n")
    with pytest.raises(PeerStartError) as info:
        peer.start()
    assert re.fullmatch(
        r"Petrel daemon \(left\) failed to start: petrel daemon: \S+swanctl.conf:3: "
        r"unknown setting 'connections.c.bogus'",
        info.value.summary,
    ), info.value.summary


@pytest.mark.interop
def test_demo_when_charon_cannot_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """charon with the openssl plugin unloadable (as without libstrongswan-standard-plugins):
    the Petrel pair passes, then one line says what failed, why, and what to install."""
    plugins = lab_strongswan._CHARON_PLUGINS.replace("openssl", "openssl-gone")
    monkeypatch.setattr(lab_strongswan, "_CHARON_PLUGINS", plugins)
    packages = {**lab_strongswan.CHARON_PLUGIN_PACKAGES, "openssl-gone": "pkg-with-openssl"}
    monkeypatch.setattr(lab_strongswan, "CHARON_PLUGIN_PACKAGES", packages)
    status = cli.main(["demo", "--seconds", "0"])
    out = capsys.readouterr()
    assert status == 1, out
    assert "cleaned up; Petrel <-> Petrel (ESP over IP protocol 50): OK" in out.out
    assert out.err == (
        "petrel demo: strongSwan (charon, right) failed to start: plugin 'openssl-gone': failed "
        "to load - openssl_gone_plugin_create not found and no plugin file available; install "
        "pkg-with-openssl (bash scripts/install-deps.sh)\n"
    ), out.err
