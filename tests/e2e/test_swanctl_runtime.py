"""Petrel configured at run time: Debian's ``swanctl`` (and the ``vici`` Python package) drive
an *empty* Petrel daemon over its VICI socket, exactly as they drive charon.

L runs ``petrel daemon`` without a swanctl.conf; R runs charon with its mirror configuration.
``swanctl --uri unix://<petrel socket>`` loads connections and PSK secrets, lists, initiates,
rekeys, installs and removes a trap policy, reads counters and terminates, each exiting 0 with
charon's output; the tunnel carries pings.  A second ``--load-all`` after editing one of two
connections leaves the other's SAs (same SPIs) and the edited one applies on its next
initiation.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from petrel.cli import build_parser
from petrel.lab import Lab, PetrelPeer, StrongSwan, run_in, wait_for
from petrel.lab.strongswan import DEFAULT_PSK

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

# Two connections between the same hosts: c (the lab's inner addresses) and d (a second pair).
D_LEFT, D_RIGHT = "198.51.100.2", "203.0.113.2"


def config_optional() -> bool:
    """True once ``petrel daemon`` runs without ``--config``; until then an empty swanctl.conf
    stands in (the daemon is just as empty)."""
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            daemon = action.choices["daemon"]
            return not any(a.required for a in daemon._actions if "--config" in a.option_strings)
    return False


def connection(
    name: str,
    local: str,
    remote: str,
    ids: tuple[str, str],
    ts: tuple[str, str],
    child: str,
    esp: str = "aes256gcm16",
) -> str:
    return f"""\
  {name} {{
    local_addrs = {local}
    remote_addrs = {remote}
    version = 2
    proposals = aes256gcm16-prfsha256-x25519
    local {{
      auth = psk
      id = {ids[0]}
    }}
    remote {{
      auth = psk
      id = {ids[1]}
    }}
    children {{
      {child} {{
        local_ts = {ts[0]}/32
        remote_ts = {ts[1]}/32
        esp_proposals = {esp}
      }}
    }}
  }}
"""


def swanctl_conf(side: str, lab: Lab, d_esp: str = "aes256gcm16") -> str:
    """Both connections and their secrets, as L (``left``) or R (``right``) writes them."""
    left, right = lab.left, lab.right
    if side == "left":
        c = connection(
            "c", left.outer4, right.outer4, ("left", "right"), (left.inner4, right.inner4), "net"
        )
        d = connection(
            "d", left.outer4, right.outer4, ("left-d", "right-d"), (D_LEFT, D_RIGHT), "net2", d_esp
        )
    else:
        c = connection(
            "c", right.outer4, left.outer4, ("right", "left"), (right.inner4, left.inner4), "net"
        )
        d = connection(
            "d", right.outer4, left.outer4, ("right-d", "left-d"), (D_RIGHT, D_LEFT), "net2", d_esp
        )
    secrets = "".join(
        f"  ike-{n} {{\n    id-1 = {a}\n    id-2 = {b}\n    secret = {DEFAULT_PSK}\n  }}\n"
        for n, (a, b) in enumerate((("left", "right"), ("left-d", "right-d")), 1)
    )
    return f"connections {{\n{c}{d}}}\nsecrets {{\n{secrets}}}\n"


class Swanctl:
    """Debian's swanctl against the Petrel daemon's socket (credentials folder: ``dir``)."""

    def __init__(self, peer: PetrelPeer, folder: Path) -> None:
        self.peer, self.dir = peer, folder
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "swanctl.conf"

    def __call__(self, *args: str, timeout: float = 60) -> str:
        env = {**os.environ, "SWANCTL_DIR": str(self.dir)}
        result = run_in(
            None,
            ["swanctl", *args, "--uri", f"unix://{self.peer.vici}"],
            check=False,
            timeout=timeout,
            env=env,
        )
        assert result.returncode == 0, (
            f"swanctl {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout}{result.stderr}\n--- petrel log ---\n{self.peer.log_text()[-4000:]}"
        )
        return result.stdout

    @contextmanager
    def follow_log(self) -> Iterator[list[str]]:
        """``swanctl --log`` in the background; the list holds its lines once the block ends."""
        out: list[str] = []
        env = {**os.environ, "SWANCTL_DIR": str(self.dir)}
        proc = subprocess.Popen(
            ["swanctl", "--log", "--uri", f"unix://{self.peer.vici}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        try:
            yield out
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                text, _ = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                text, _ = proc.communicate()
            out.extend(text.splitlines())

    def load_all(self, text: str) -> str:
        self.conf.write_text(text)
        self.conf.chmod(0o600)
        return self("--load-all", "--noprompt", "--file", str(self.conf))


def sas(text: str) -> dict[str, dict[str, object]]:
    """``swanctl --list-sas`` output → {conn: {ike_spi, children: {child: (in, out)}, algs}}."""
    out: dict[str, dict[str, object]] = {}
    current: dict[str, object] | None = None
    for line in text.splitlines():
        head = re.match(r"^(\S+): #\d+, (\w+), IKEv2, ([0-9a-f]{16})_i", line)
        if head:
            current = {"state": head.group(2), "ike_spi": head.group(3), "children": {}}
            out[head.group(1)] = current
            continue
        child = re.match(r"^  (\S+): #\d+, reqid \d+, (\w+), \S+, ESP:(\S+)", line)
        if child and current is not None:
            current["children"][child.group(1)] = {"state": child.group(2), "alg": child.group(3)}  # type: ignore[index]
            last = child.group(1)
            continue
        spi = re.match(r"^    (in|out)\s+([0-9a-f]{8})", line)
        if spi and current is not None:
            current["children"][last][spi.group(1)] = spi.group(2)  # type: ignore[index]
    return out


def start_pair(lab: Lab, log: str = "2") -> tuple[PetrelPeer, StrongSwan, Swanctl]:
    lab.ip(lab.left.ns, "addr", "add", f"{D_LEFT}/32", "dev", "lo")
    lab.ip(lab.right.ns, "addr", "add", f"{D_RIGHT}/32", "dev", "lo")
    charon = StrongSwan(
        lab, lab.right.ns, "r", swanctl_conf("right", lab, d_esp="aes256gcm16, aes128gcm16")
    ).start()
    charon.load()
    petrel = PetrelPeer(lab, lab.left.ns, "l", None if config_optional() else "", log=log).start()
    return petrel, charon, Swanctl(petrel, lab.workdir / "swanctl-l")


def test_swanctl_drives_an_empty_petrel(lab: Lab) -> None:
    _petrel, charon, swanctl = start_pair(lab)

    version = swanctl("--version", "--daemon")
    assert "petrel" in version
    stats = swanctl("--stats")
    assert "uptime:" in stats and "IKE_SAs: 0 total, 0 half-open" in stats
    assert swanctl("--list-conns").strip() == ""

    loaded = swanctl.load_all(swanctl_conf("left", lab))
    assert "loaded ike secret 'ike-1'" in loaded and "loaded ike secret 'ike-2'" in loaded
    assert "loaded connection 'c'" in loaded and "loaded connection 'd'" in loaded
    assert "successfully loaded 2 connections, 0 unloaded" in loaded
    conns = swanctl("--list-conns")
    assert "c: IKEv2, no reauthentication, rekeying every 14400s" in conns
    assert "  local pre-shared key authentication:\n    id: left" in conns
    assert f"  net: TUNNEL, rekeying every 3600s\n    local:  {lab.left.inner4}/32" in conns

    with swanctl.follow_log() as log_lines:
        time.sleep(2)  # swanctl --log connects and registers (its output is block-buffered)
        initiated = swanctl("--initiate", "--child", "net")
    # swanctl prints the control-log lines streamed while the initiation ran, then its verdict
    assert re.search(r"^\[IKE\] IKE SA (\d+) \(c\): initiating to ", initiated, re.M), initiated
    assert re.search(r"^\[IKE\] CHILD_SA net\{\d+\} established with SPIs", initiated, re.M)
    assert initiated.rstrip().endswith("initiate completed successfully"), initiated
    # swanctl --log prints every line of level ≤ 1 as charon's vici logger sends them
    assert any(re.match(r"^\d\d\[IKE\] .*initiating to ", line) for line in log_lines), log_lines
    assert any(re.match(r"^\d\d\[CFG\] ", line) for line in log_lines), log_lines
    listed = sas(swanctl("--list-sas"))
    assert listed["c"]["state"] == "ESTABLISHED"
    net = listed["c"]["children"]["net"]  # type: ignore[index]
    assert net["state"] == "INSTALLED" and net["alg"] == "AES_GCM_16-256"
    assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4) == 3

    assert "rekey completed successfully" in swanctl("--rekey", "--child", "net")
    assert wait_for(
        lambda: (
            (now := sas(swanctl("--list-sas"))["c"]["children"]).get("net", {}).get("in")  # type: ignore[union-attr]
            not in (None, net["in"])
            and len(now) == 1
        ),
        15,
        0.3,
    ), swanctl("--list-sas")
    assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4) == 3
    counters = swanctl("--counters")
    assert re.search(r"child-rekey\s+: 1", counters), counters
    # charon's per-exchange message counters: one IKE_SA_INIT and IKE_AUTH each way, the rekey
    for name, value in (
        ("ike-init-out-req", "1"),
        ("ike-init-in-resp", "1"),
        ("ike-auth-out-req", "1"),
        ("ike-auth-in-resp", "1"),
        ("create-child-out-req", "1"),
        ("create-child-in-resp", "1"),
    ):
        assert re.search(rf"^  {name}\s+: {value}$", counters, re.M), (name, counters)
    assert "c:" in swanctl("--counters", "--name", "c")

    # trap policy: install, list, uninstall
    assert "install completed successfully" in swanctl("--install", "--child", "net2")
    policies = swanctl("--list-pols")
    assert f"d/net2, TUNNEL\n  local:  {D_LEFT}/32\n  remote: {D_RIGHT}/32" in policies
    assert "uninstall completed successfully" in swanctl("--uninstall", "--child", "net2")
    assert swanctl("--list-pols").strip() == ""

    # a Child SA alone, then the IKE SA, each printing its streamed log lines
    terminated = swanctl("--terminate", "--child", "net")
    assert re.search(r"^\[IKE\] CHILD_SA net\{\d+\} down", terminated, re.M), terminated
    assert "terminate completed successfully" in terminated
    assert wait_for(lambda: "net" not in sas(swanctl("--list-sas"))["c"]["children"], 10, 0.3)
    assert sas(swanctl("--list-sas"))["c"]["state"] == "ESTABLISHED"
    terminated = swanctl("--terminate", "--ike", "c")
    assert re.search(r"^\[IKE\] IKE SA \d+ \(c\) down", terminated, re.M), terminated
    assert "terminate completed successfully" in terminated
    assert wait_for(lambda: "c" not in sas(swanctl("--list-sas")), 10, 0.3)
    assert wait_for(lambda: "c:" not in charon.list_sas(), 10, 0.3)


def test_reload_keeps_unchanged_sas_and_changes_apply_next_time(lab: Lab) -> None:
    _petrel, _charon, swanctl = start_pair(lab)
    swanctl.load_all(swanctl_conf("left", lab))
    swanctl("--initiate", "--child", "net")
    swanctl("--initiate", "--child", "net2")
    before = sas(swanctl("--list-sas"))
    assert before["d"]["children"]["net2"]["alg"] == "AES_GCM_16-256"  # type: ignore[index]

    # d's ESP proposal edited: c's and d's SAs stay as they are (same SPIs)
    reloaded = swanctl.load_all(swanctl_conf("left", lab, d_esp="aes128gcm16"))
    assert "successfully loaded 2 connections, 0 unloaded" in reloaded
    after = sas(swanctl("--list-sas"))
    assert after == before
    assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4) == 3
    assert lab.ping(lab.left.ns, D_LEFT, D_RIGHT) == 3

    # the edited definition applies to d's next initiation; c is untouched
    swanctl("--terminate", "--ike", "d")
    assert wait_for(lambda: "d" not in sas(swanctl("--list-sas")), 10, 0.3)
    swanctl("--initiate", "--child", "net2")
    again = sas(swanctl("--list-sas"))
    assert again["d"]["children"]["net2"]["alg"] == "AES_GCM_16-128"  # type: ignore[index]
    assert again["c"] == before["c"]
    assert lab.ping(lab.left.ns, D_LEFT, D_RIGHT) == 3

    # a connection gone from the file is unloaded; its SA stays until it ends (as charon)
    text = swanctl_conf("left", lab, d_esp="aes128gcm16")
    only_c = re.sub(r"  d \{.*?\n  \}\n", "", text, flags=re.S)
    assert "successfully loaded 1 connections, 1 unloaded" in swanctl.load_all(only_c)
    assert "d" not in swanctl("--list-conns").split(":")[0:1]
    assert re.search(r"^d: ", swanctl("--list-conns"), re.M) is None
    assert sas(swanctl("--list-sas"))["c"] == before["c"]


def test_vici_python_package_against_petrel(lab: Lab) -> None:
    vici = pytest.importorskip("vici", reason="the vici package (pip install vici, dev extra)")
    petrel, _charon, _swanctl = start_pair(lab)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(petrel.vici))
    session = vici.Session(sock)
    psk = base64.b64decode(DEFAULT_PSK.removeprefix("0s"))  # swanctl sends the decoded secret
    try:
        assert session.version()["daemon"] == b"petrel"
        assert list(session.list_sas()) == []
        session.load_shared(
            {"id": "ike-1", "type": "IKE", "data": psk, "owners": ["left", "right"]}
        )
        left, right = lab.left, lab.right
        session.load_conn(
            {
                "c": {
                    "local_addrs": [left.outer4],
                    "remote_addrs": [right.outer4],
                    "version": "2",
                    "proposals": ["aes256gcm16-prfsha256-x25519"],
                    "local": {"auth": "psk", "id": "left"},
                    "remote": {"auth": "psk", "id": "right"},
                    "children": {
                        "net": {
                            "local_ts": [f"{left.inner4}/32"],
                            "remote_ts": [f"{right.inner4}/32"],
                            "esp_proposals": ["aes256gcm16"],
                        }
                    },
                }
            }
        )
        assert session.get_conns() == {"conns": [b"c"]}
        logs = list(session.initiate({"child": "net", "timeout": "20000"}))
        # the control-log lines the package yields while initiate runs, charon's keys
        assert logs and all(set(m) >= {"group", "level", "msg"} for m in logs), logs
        assert any(b"initiating to" in m["msg"] and m["ikesa-name"] == b"c" for m in logs)
        listed = list(session.list_sas())
        assert len(listed) == 1 and listed[0]["c"]["state"] == b"ESTABLISHED"
        child = next(iter(listed[0]["c"]["child-sas"].values()))
        assert child["state"] == b"INSTALLED"
        assert lab.ping(lab.left.ns, left.inner4, right.inner4) == 3
        with pytest.raises(vici.exception.CommandException, match="unknown option: bogus"):
            session.load_conn({"x": {"bogus": "1"}})
    finally:
        sock.close()
