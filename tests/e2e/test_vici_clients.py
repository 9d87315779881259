"""Many VICI clients at once against an empty Petrel daemon, with a strongSwan peer.

While forty clients sit connected (ten of them stalled in the middle of a segment), one sends
garbage, one asks for an initiation and disconnects at once, and one more announces a
segment beyond the size limit, Debian's ``swanctl`` loads the configuration, brings the
tunnel up, rekeys and terminates, each exiting 0; the abandoned initiation completes anyway
(as charon's does); the hostile clients are closed and counted; and a client registered for
the SA events receives ``child-updown``, ``child-rekey`` and ``ike-updown`` with charon's
sections, their SPIs matching ``--list-sas``.
"""

from __future__ import annotations

import re
import socket
import threading
from typing import Any

import pytest
from test_swanctl_runtime import D_LEFT, D_RIGHT, sas, start_pair, swanctl_conf

from petrel.control.client import ViciClient
from petrel.control.vici import PacketType, encode_packet
from petrel.lab import Lab, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

EVENTS = ("ike-updown", "child-updown", "ike-rekey", "child-rekey")


class Listener:
    """A VICI client registered for the SA events, collecting them on a thread."""

    def __init__(self, path: str) -> None:
        self.client = ViciClient(path, timeout=None)
        for event in EVENTS:
            self.client.register(event)
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self.events.append(self.client.next_event())  # type: ignore[arg-type]
            except (OSError, ValueError):
                return

    def find(self, name: str, conn: str, up: bool | None = None) -> list[dict[str, Any]]:
        return [
            message[conn]
            for event, message in list(self.events)
            if event == name
            and conn in message
            and (up is None or (message.get("up") == "yes") == up)
        ]

    def close(self) -> None:
        sock = self.client._sock
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self.client.close()


def connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(path)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True


def test_many_clients_hostile_ones_and_a_vanishing_initiator(lab: Lab) -> None:
    petrel, charon, swanctl = start_pair(lab)
    path = str(petrel.vici)
    listener = Listener(path)
    idle = [connect(path) for _ in range(40)]
    try:
        for sock in idle[:10]:  # a 256-byte segment, of which only 9 bytes ever come
            sock.sendall(b"\x00\x00\x01\x00\x00\x07vers")

        garbage = connect(path)
        garbage.sendall(b"\x00\x00\x00\x05\xffjunk" + bytes(range(256)) * 4)
        assert closed_by_server(garbage)
        oversized = connect(path)
        oversized.sendall(b"\x7f\xff\xff\xff\x00")
        assert closed_by_server(oversized)

        loaded = swanctl.load_all(swanctl_conf("left", lab))
        assert "successfully loaded 2 connections, 0 unloaded" in loaded

        # asks for d's initiation and leaves before any answer: the initiation goes on
        vanishing = connect(path)
        vanishing.sendall(
            encode_packet(PacketType.CMD_REQUEST, "initiate", {"child": "net2", "timeout": "0"})
        )
        vanishing.close()

        assert "initiate completed successfully" in swanctl("--initiate", "--child", "net")
        assert wait_for(
            lambda: sas(swanctl("--list-sas")).get("d", {}).get("state") == "ESTABLISHED", 20, 0.3
        ), swanctl("--list-sas")
        listed = sas(swanctl("--list-sas"))
        assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4) == 3
        assert lab.ping(lab.left.ns, D_LEFT, D_RIGHT) == 3

        net = listed["c"]["children"]["net"]  # type: ignore[index]
        assert wait_for(lambda: listener.find("child-updown", "c", up=True), 5, 0.1)
        up = listener.find("child-updown", "c", up=True)[0]
        assert up["state"] == "ESTABLISHED" and up["remote-host"] == lab.right.outer4
        assert up["initiator-spi"] == listed["c"]["ike_spi"]
        (child,) = up["child-sas"].values()
        assert child["name"] == "net" and child["state"] == "INSTALLED"
        assert (child["spi-in"], child["spi-out"]) == (net["in"], net["out"])
        assert child["local-ts"] == [f"{lab.left.inner4}/32"]
        assert listener.find("ike-updown", "c", up=True)[0]["encr-alg"] == "AES_GCM_16"
        assert listener.find("child-updown", "d", up=True)  # the abandoned initiation

        assert "rekey completed successfully" in swanctl("--rekey", "--child", "net")
        assert wait_for(lambda: listener.find("child-rekey", "c"), 15, 0.2)
        rekey = listener.find("child-rekey", "c")[0]["child-sas"]["net"]
        assert rekey["old"]["spi-in"] == net["in"]
        assert rekey["new"]["spi-in"] != net["in"]
        assert rekey["new"]["state"] == "INSTALLED"
        assert int(rekey["old"]["bytes-in"]) > 0  # the pings above, counted to the end
        assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4) == 3

        assert "terminate completed successfully" in swanctl("--terminate", "--ike", "d")
        assert wait_for(lambda: listener.find("ike-updown", "d", up=False), 10, 0.1)
        down = listener.find("ike-updown", "d", up=False)[0]
        assert down["uniqueid"] and down["remote-id"] == "right-d"
        assert wait_for(lambda: listener.find("child-updown", "d", up=False), 5, 0.1)

        # the daemon and every well-behaved client are unharmed
        assert petrel.running
        stats = swanctl("--stats")
        assert "IKE_SAs: 1 total, 0 half-open" in stats
        for sock in idle[10:]:
            sock.sendall(encode_packet(PacketType.CMD_REQUEST, "version", {}))
        for sock in idle[10:]:
            assert b"petrel" in sock.recv(4096)
        assert "dropped: malformed VICI packet, client closed" in petrel.log_text()
        assert wait_for(lambda: "c:" in charon.list_sas(), 5, 0.3)
    finally:
        listener.close()
        for sock in idle:
            sock.close()


def test_initiate_loglevel_above_the_daemons(lab: Lab) -> None:
    """``--loglevel 2`` streams every message of the initiation although the daemon logs at
    level 1, whose log file gains none of those lines (charon's controller does the same)."""
    petrel, _charon, swanctl = start_pair(lab, log="1")
    swanctl.load_all(swanctl_conf("left", lab))
    detailed = swanctl("--initiate", "--child", "net", "--loglevel", "2")
    assert re.search(r"^\[IKE\] IKE SA \d+: sending IKE_AUTH request 1 \[ IDi", detailed, re.M), (
        detailed
    )
    assert "initiate completed successfully" in detailed
    assert "sending IKE_AUTH request" not in petrel.log_text()
    plain = swanctl("--initiate", "--child", "net2")
    assert "established with SPIs" in plain and "sending IKE_AUTH" not in plain
