"""ViciServer + ViciClient over a real UNIX socket; wire compatibility with strongSwan's swanctl."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from petrel.control import server as server_module
from petrel.control.client import ViciClient, ViciCommandUnknown, ViciEventUnknown
from petrel.control.server import Command, Emitter, ViciServer
from petrel.control.vici import Packet, PacketReader, PacketType, ViciError, encode_packet

VERSION = {
    "daemon": "petrel",
    "version": "0.1.0",
    "sysname": "Linux",
    "release": "6.1.0",
    "machine": "x86_64",
}

STATS = {
    "uptime": {"running": "42 seconds", "since": "Jan 01 00:00:00 2025"},
    "workers": {
        "total": "16",
        "idle": "11",
        "active": {"critical": "4", "high": "1", "medium": "0", "low": "0"},
    },
    "queues": {"critical": "0", "high": "0", "medium": "2", "low": "0"},
    "scheduled": "7",
    "ikesas": {"total": "3", "half-open": "1"},
    "plugins": ["petrel-ike", "petrel-esp"],
}


def ike_sa(name: str, uniqueid: int) -> dict[str, Any]:
    """One list-sa event body shaped as in vici.md."""
    return {
        name: {
            "uniqueid": str(uniqueid),
            "version": "2",
            "state": "ESTABLISHED",
            "local-host": "192.0.2.1",
            "local-port": "500",
            "local-id": "moon.example",
            "remote-host": "192.0.2.2",
            "remote-port": "4500",
            "remote-id": "sun.example",
            "initiator": "yes",
            "initiator-spi": "0123456789abcdef",
            "responder-spi": "fedcba9876543210",
            "nat-remote": "yes",
            "encr-alg": "AES_GCM_16",
            "encr-keysize": "256",
            "prf-alg": "PRF_HMAC_SHA2_256",
            "dh-group": "CURVE_25519",
            "established": "30",
            "rekey-time": "3500",
            "child-sas": {
                f"net-{uniqueid + 100}": {
                    "name": "net",
                    "uniqueid": str(uniqueid + 100),
                    "reqid": "1",
                    "state": "INSTALLED",
                    "mode": "TUNNEL",
                    "protocol": "ESP",
                    "encap": "yes",
                    "spi-in": "c1a0f00d",
                    "spi-out": "0badcafe",
                    "encr-alg": "AES_GCM_16",
                    "encr-keysize": "256",
                    "bytes-in": "1234",
                    "packets-in": "10",
                    "bytes-out": "5678",
                    "packets-out": "20",
                    "rekey-time": "900",
                    "life-time": "1200",
                    "install-time": "30",
                    "local-ts": ["10.1.0.0/16"],
                    "remote-ts": ["10.2.0.0/16"],
                }
            },
        }
    }


class ServerThread:
    """A ViciServer running on its own event loop in a background thread."""

    def __init__(self, path: str, commands: Mapping[str, Command]) -> None:
        self.server = ViciServer(path, commands)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.call(self.server.start())

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def broadcast(self, event: str, message: Mapping[str, Any]) -> int:
        async def go() -> int:
            return self.server.broadcast(event, message)

        return int(self.call(go()))

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.call(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


async def cmd_version(message: dict[str, Any], emit: Emitter) -> dict[str, Any]:
    return dict(VERSION)


async def cmd_stats(message: dict[str, Any], emit: Emitter) -> dict[str, Any]:
    return STATS


async def cmd_list_sas(message: dict[str, Any], emit: Emitter) -> dict[str, Any]:
    sas = [ike_sa("home", 1), ike_sa("office", 2)]
    if "ike" in message:
        sas = [sa for sa in sas if message["ike"] in sa]
    for sa in sas:
        await emit.emit("list-sa", sa)
    return {}


async def cmd_echo(message: dict[str, Any], emit: Emitter) -> dict[str, Any]:
    return {
        "echo": message,
        "sent": "yes" if await emit.emit("control-log", {"msg": "hi"}) else "no",
    }


async def cmd_slow(message: dict[str, Any], emit: Emitter) -> dict[str, Any]:
    await asyncio.sleep(0.2)
    return {"which": "slow"}


async def cmd_fail(message: dict[str, Any], emit: Emitter) -> dict[str, Any]:
    raise RuntimeError("boom")


async def cmd_bad_response(message: dict[str, Any], emit: Emitter) -> dict[str, Any]:
    return {"k": "v" * 70000}


COMMANDS: dict[str, Command] = {
    "version": cmd_version,
    "stats": cmd_stats,
    "list-sas": cmd_list_sas,
    "echo": cmd_echo,
    "slow": cmd_slow,
    "fail": cmd_fail,
    "bad-response": cmd_bad_response,
}


@pytest.fixture
def sock_path(tmp_path: Path) -> str:
    return str(tmp_path / "petrel.vici")


@pytest.fixture
def server(sock_path: str) -> Iterator[ServerThread]:
    srv = ServerThread(sock_path, COMMANDS)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def client(server: ServerThread, sock_path: str) -> Iterator[ViciClient]:
    with ViciClient(sock_path, timeout=5) as c:
        yield c


def raw_exchange(path: str, data: bytes, expect: int) -> list[Packet]:
    """Send raw bytes, read until ``expect`` packets (or EOF)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(data)
        reader = PacketReader()
        got: list[Packet] = []
        while len(got) < expect:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += reader.feed(chunk)
        return got


# --------------------------------------------------------------------------- commands


def test_version(client: ViciClient) -> None:
    assert client.request("version") == VERSION


def test_request_message_reaches_command(client: ViciClient) -> None:
    msg = {"child": "net", "opts": {"timeout": "0"}, "list": ["a", "b"]}
    assert client.request("echo", msg) == {"echo": msg, "sent": "no"}


def test_unknown_command_keeps_connection(client: ViciClient) -> None:
    with pytest.raises(ViciCommandUnknown):
        client.request("no-such-command")
    assert client.request("version")["daemon"] == "petrel"


def test_unknown_command_raw(server: ServerThread, sock_path: str) -> None:
    got = raw_exchange(sock_path, encode_packet(PacketType.CMD_REQUEST, "nope"), 1)
    assert got == [Packet(PacketType.CMD_UNKNOWN, None, None)]


def test_failing_command_answers_success_no(client: ViciClient) -> None:
    reply = client.request("fail")
    assert reply["success"] == "no"
    assert "boom" in reply["errmsg"]
    reply = client.request("bad-response")
    assert reply["success"] == "no"
    assert client.request("version") == VERSION


def test_streamed_list_sas(client: ViciClient) -> None:
    events, response = client.streamed("list-sas", "list-sa")
    assert response == {}
    assert events == [ike_sa("home", 1), ike_sa("office", 2)]
    events, _ = client.streamed("list-sas", "list-sa", {"ike": "office"})
    assert events == [ike_sa("office", 2)]
    seen: list[object] = []  # each event as it arrives, before the response returns
    events, _ = client.streamed("list-sas", "list-sa", None, seen.append)
    assert seen == events == [ike_sa("home", 1), ike_sa("office", 2)]


def test_events_only_to_registered(server: ServerThread, sock_path: str) -> None:
    # Without registering, list-sas yields only the (empty) response.
    got = raw_exchange(sock_path, encode_packet(PacketType.CMD_REQUEST, "list-sas", {}), 1)
    assert got == [Packet(PacketType.CMD_RESPONSE, None, {})]


def test_emitter_reports_registration(client: ViciClient) -> None:
    events, response = client.streamed("echo", "control-log")
    assert events == [{"msg": "hi"}]
    assert response["sent"] == "yes"
    assert client.request("echo")["sent"] == "no"  # unregistered afterwards


def test_register_unknown_event(client: ViciClient, sock_path: str) -> None:
    with pytest.raises(ViciEventUnknown):
        client.register("no-such-event")
    with pytest.raises(ViciEventUnknown):
        client.unregister("ike-updown")  # never registered
    got = raw_exchange(sock_path, encode_packet(PacketType.EVENT_REGISTER, "bogus"), 1)
    assert got == [Packet(PacketType.EVENT_UNKNOWN, None, None)]
    stream = encode_packet(PacketType.EVENT_REGISTER, "log") + encode_packet(
        PacketType.EVENT_UNREGISTER, "log"
    )
    got = raw_exchange(sock_path, stream, 2)
    assert [p.type for p in got] == [PacketType.EVENT_CONFIRM, PacketType.EVENT_CONFIRM]


def test_broadcast(server: ServerThread, sock_path: str) -> None:
    with ViciClient(sock_path, timeout=5) as listener, ViciClient(sock_path, timeout=5) as other:
        listener.register("ike-updown")
        other.register("child-updown")
        up = {"up": "yes", **ike_sa("home", 1)}
        assert server.broadcast("ike-updown", up) == 1
        assert listener.next_event() == ("ike-updown", up)
        assert server.broadcast("log", {"msg": "nobody"}) == 0
        # An event that arrives during a request is queued, not mixed into the reply.
        assert server.broadcast("ike-updown", {"up": "no"}) == 1
        assert listener.request("version") == VERSION
        assert listener.next_event() == ("ike-updown", {"up": "no"})
        listener.unregister("ike-updown")
        assert server.broadcast("ike-updown", up) == 0
        assert other.request("version") == VERSION


def test_one_command_at_a_time(server: ServerThread, sock_path: str) -> None:
    stream = encode_packet(PacketType.CMD_REQUEST, "slow", {}) + encode_packet(
        PacketType.CMD_REQUEST, "version", {}
    )
    got = raw_exchange(sock_path, stream, 2)
    assert [p.message for p in got] == [{"which": "slow"}, VERSION]


def test_client_sent_server_types_ignored(server: ServerThread, sock_path: str) -> None:
    stream = b"".join(
        [
            encode_packet(PacketType.CMD_RESPONSE, None, {"x": "y"}),
            encode_packet(PacketType.CMD_UNKNOWN),
            encode_packet(PacketType.EVENT_CONFIRM),
            encode_packet(PacketType.EVENT_UNKNOWN),
            encode_packet(PacketType.EVENT, "log", {}),
            encode_packet(PacketType.CMD_REQUEST, "version", {}),
        ]
    )
    assert raw_exchange(sock_path, stream, 1) == [Packet(PacketType.CMD_RESPONSE, None, VERSION)]


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\x00\x00\x02\x01\x09",  # bad element type
        b"\x00\x00\x00\x01\x08",  # bad packet type
        b"\x00\x00\x00\x00",  # empty segment
        b"\xff\xff\xff\xff",  # oversized segment
        b"\x00\x00\x00\x03\x00\x05v",  # truncated name
    ],
)
def test_malformed_packet_closes_only_that_client(
    server: ServerThread, sock_path: str, garbage: bytes
) -> None:
    with ViciClient(sock_path, timeout=5) as good:
        good.register("log")
        got = raw_exchange(sock_path, garbage + encode_packet(PacketType.CMD_REQUEST, "version"), 1)
        assert got == []  # closed without answering
        assert good.request("version") == VERSION
        assert server.broadcast("log", {"msg": "still here"}) == 1
        assert good.next_event() == ("log", {"msg": "still here"})


def test_client_rejects_malformed_reply(tmp_path: Path) -> None:
    path = str(tmp_path / "fake.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        with ViciClient(path, timeout=5) as c:
            peer, _ = listener.accept()
            with peer:
                peer.sendall(b"\x00\x00\x00\x02\x01\x02")  # response with stray section end
                with pytest.raises(ViciError):
                    c.request("version")
                with pytest.raises(ConnectionError):
                    c.request("version")


def test_client_server_closed(server: ServerThread, sock_path: str) -> None:
    c = ViciClient(sock_path, timeout=5)
    server.stop()
    with pytest.raises(ConnectionError):
        c.request("version")


# --------------------------------------------------------------------------- socket file


def test_socket_mode_and_removal(sock_path: str) -> None:
    srv = ServerThread(sock_path, COMMANDS)
    try:
        st = os.stat(sock_path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
    finally:
        srv.stop()
    assert not os.path.exists(sock_path)


def test_stale_socket_replaced(sock_path: str) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(sock_path)
    stale.close()  # file remains, nobody listens
    srv = ServerThread(sock_path, COMMANDS)
    try:
        with ViciClient(sock_path, timeout=5) as c:
            assert c.request("version") == VERSION
    finally:
        srv.stop()


def test_live_socket_not_stolen(server: ServerThread, sock_path: str) -> None:
    other = ViciServer(sock_path, COMMANDS)
    with pytest.raises(OSError) as info:
        asyncio.run(other.start())
    assert info.value.errno == errno.EADDRINUSE
    with ViciClient(sock_path, timeout=5) as c:
        assert c.request("version") == VERSION


def test_regular_file_not_replaced(sock_path: str) -> None:
    Path(sock_path).write_text("precious")
    with pytest.raises(FileExistsError):
        asyncio.run(ViciServer(sock_path, COMMANDS).start())
    assert Path(sock_path).read_text() == "precious"


def test_close_drops_clients(sock_path: str) -> None:
    srv = ServerThread(sock_path, COMMANDS)
    c = ViciClient(sock_path, timeout=5)
    assert c.request("version") == VERSION
    srv.stop()
    with pytest.raises(ConnectionError):
        c.request("version")


# --------------------------------------------------------------------------- swanctl

SWANCTL = shutil.which("swanctl") or (
    "/usr/sbin/swanctl" if os.path.exists("/usr/sbin/swanctl") else None
)
needs_swanctl = pytest.mark.skipif(SWANCTL is None, reason="strongSwan swanctl not installed")


def swanctl(path: str, *args: str) -> str:
    assert SWANCTL is not None
    proc = subprocess.run(
        [SWANCTL, *args, "--uri", f"unix://{path}"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@needs_swanctl
def test_swanctl_list_sas(server: ServerThread, sock_path: str) -> None:
    out = swanctl(sock_path, "--list-sas")
    assert "home: #1, ESTABLISHED, IKEv2, 0123456789abcdef_i* fedcba9876543210_r" in out
    assert "office: #2, ESTABLISHED" in out
    assert "remote 'sun.example' @ 192.0.2.2[4500]" in out
    assert "net: #101, reqid 1, INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-256" in out
    assert "in  c1a0f00d,   1234 bytes,    10 packets" in out
    out = swanctl(sock_path, "--list-sas", "--ike", "office")
    assert "office: #2" in out
    assert "home" not in out


@needs_swanctl
def test_swanctl_stats(server: ServerThread, sock_path: str) -> None:
    out = swanctl(sock_path, "--stats")
    assert "uptime: 42 seconds, since Jan 01 00:00:00 2025" in out
    assert "worker threads: 16 total, 11 idle, working: 4/1/0/0" in out
    assert "IKE_SAs: 3 total, 1 half-open" in out
    assert "petrel-ike" in out


@needs_swanctl
def test_swanctl_version_daemon(server: ServerThread, sock_path: str) -> None:
    out = swanctl(sock_path, "--version", "--daemon")
    assert "petrel" in out
    assert "0.1.0" in out


# --------------------------------------------------------------------------- hostile clients


def test_stalled_mid_segment_is_dropped(
    monkeypatch: pytest.MonkeyPatch, server: ServerThread, sock_path: str
) -> None:
    monkeypatch.setattr(server_module, "STALL_TIMEOUT", 0.3)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s, ViciClient(sock_path) as other:
        s.settimeout(5)
        s.connect(sock_path)
        s.sendall(b"\x00\x00\x01\x00\x00\x07vers")  # 9 of 256 bytes, then nothing
        assert s.recv(10) == b""  # dropped after the stall timeout
        assert other.request("version") == VERSION
    stalled = server.server.drops.counts
    assert wait_until(lambda: stalled["VICI client stalled mid-message"] == 1)


def test_idle_client_between_segments_is_kept(
    monkeypatch: pytest.MonkeyPatch, server: ServerThread, sock_path: str
) -> None:
    monkeypatch.setattr(server_module, "STALL_TIMEOUT", 0.2)
    with ViciClient(sock_path, timeout=5) as c:
        time.sleep(0.5)  # nothing half-sent: an idle client is not a stalled one
        assert c.request("version") == VERSION


def test_disconnect_cancels_the_running_command(sock_path: str) -> None:
    started, cancelled = threading.Event(), threading.Event()

    async def cmd_forever(message: dict[str, Any], emit: Emitter) -> dict[str, Any]:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return {}

    srv = ServerThread(sock_path, {**COMMANDS, "forever": cmd_forever})
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(sock_path)
            s.sendall(encode_packet(PacketType.CMD_REQUEST, "forever", {}))
            assert started.wait(5)
        assert cancelled.wait(5)
        assert wait_until(lambda: srv.server.connections == 0)
        with ViciClient(sock_path, timeout=5) as c:
            assert c.request("version") == VERSION
    finally:
        srv.stop()


def test_clients_beyond_the_cap_are_refused(
    monkeypatch: pytest.MonkeyPatch, server: ServerThread, sock_path: str
) -> None:
    monkeypatch.setattr(server_module, "MAX_CLIENTS", 3)
    held = [ViciClient(sock_path, timeout=5) for _ in range(3)]
    try:
        assert all(c.request("version") == VERSION for c in held)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(sock_path)
            assert s.recv(10) == b""
        refused = server.server.drops.counts
        assert wait_until(lambda: refused["VICI client refused: too many clients"] == 1)
    finally:
        for c in held:
            c.close()
    assert wait_until(lambda: server.server.connections == 0)
    with ViciClient(sock_path, timeout=5) as c:
        assert c.request("version") == VERSION


def test_emit_nowait_and_listening(server: ServerThread, sock_path: str) -> None:
    with ViciClient(sock_path, timeout=5) as c:
        assert not server.server.listening("log")
        c.register("log")
        assert wait_until(lambda: server.server.listening("log"))


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_client_not_reading_its_events_is_dropped(server: ServerThread, sock_path: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s, ViciClient(sock_path) as other:
        s.settimeout(5)
        s.connect(sock_path)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(encode_packet(PacketType.EVENT_REGISTER, "log"))
        assert wait_until(lambda: server.server.listening("log"))
        big = {"msg": "x" * 60000}
        sent = 0
        while server.broadcast("log", big) and sent < 1000:  # never read: dropped at ~1 MiB
            sent += 1
        assert 10 < sent < 1000
        assert other.request("version") == VERSION
        assert not server.server.listening("log")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    chunks=st.lists(
        st.one_of(
            st.binary(max_size=64),
            st.builds(  # a well-framed segment of arbitrary contents
                lambda body: len(body).to_bytes(4, "big") + body, st.binary(min_size=1, max_size=64)
            ),
        ),
        max_size=6,
    )
)
def test_arbitrary_client_bytes_never_disturb_the_server(
    server: ServerThread, sock_path: str, chunks: list[bytes]
) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(sock_path)
        for chunk in chunks:
            try:
                s.sendall(chunk)
            except OSError:  # closed by the server after a malformed packet
                break
    with ViciClient(sock_path, timeout=5) as c:
        assert c.request("version") == VERSION
