"""The shipped systemd unit passes ``systemd-analyze verify`` and keeps what Petrel needs
(TUN, raw sockets, netlink) while hardened; sd_notify sends systemd's datagrams."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from petrel.service.notify import sd_notify

UNIT = Path(__file__).resolve().parents[3] / "packaging" / "systemd" / "petrel.service"


def _settings() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """The unit as shipped, its ExecStart pointed at this checkout's petrel (verify checks
    that the program exists and is executable)."""
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze missing: install systemd (scripts/install-deps.sh)")
    petrel = str(Path(sys.executable).with_name("petrel"))  # the venv's console script
    assert os.access(petrel, os.X_OK), petrel
    unit = tmp_path / "petrel.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/petrel", petrel))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "petrel.service" not in result.stderr, result.stderr  # no warning about it


def test_unit_readiness_restart_and_capabilities() -> None:
    s = _settings()
    assert s["Type"] == ["notify"] and s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["Restart"] == ["on-failure"] and s["RestartPreventExitStatus"] == ["2"]
    caps = set(s["CapabilityBoundingSet"][0].split())
    assert caps == {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"}
    assert s["DeviceAllow"] == ["/dev/net/tun rw"] and s["DevicePolicy"] == ["closed"]
    assert "AF_NETLINK" in s["RestrictAddressFamilies"][0]
    assert "PrivateDevices" not in s  # it would hide /dev/net/tun
    exec_start = s["ExecStart"][0].split()
    assert exec_start[1:3] == ["--socket", "/run/petrel/petrel.vici"]
    assert exec_start[exec_start.index("--config") + 1] == "/etc/petrel/swanctl.conf"
    assert s["RuntimeDirectory"] == ["petrel"] and s["ConfigurationDirectory"] == ["petrel"]


def test_sd_notify_datagram(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert sd_notify("READY=1", "STATUS=running")
        assert server.recv(4096) == b"READY=1\nSTATUS=running"
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))  # gone now: logged, not raised
    assert not sd_notify("STOPPING=1")
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not sd_notify("READY=1")


def test_sd_notify_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"petrel-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sd_notify("RELOADING=1")
        assert server.recv(4096) == b"RELOADING=1"
