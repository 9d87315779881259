"""Network-namespace lab for end-to-end tests and benchmarks (facts: /work/shared/LAB.md).

``Lab`` builds two hosts, L and R, each in its own uniquely named namespace (``pt<id>L``,
``pt<id>R``), joined by a veth pair or, with ``nat=True``, through a router namespace N that
masquerades L behind its R-facing address. Every process it starts is tracked by PID and killed
on exit; every namespace it made is deleted, even when the body raised.

Addresses (documentation ranges only)::

    direct:  L vL 192.0.2.1/24 2001:db8::1/64  <->  R vR 192.0.2.2/24 2001:db8::2/64
    nat:     L vL 192.0.2.1/25 2001:db8:a::1/64 <-> N nL 192.0.2.126 / nR 192.0.2.129
             <-> R vR 192.0.2.130/25 2001:db8:b::2/64   (IPv4 masqueraded, IPv6 routed)
    inner:   L lo 198.51.100.1/32 2001:db8:1::1/128;  R lo 203.0.113.1/32 2001:db8:2::1/128
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

PYTHON = sys.executable
CHARON = "/usr/lib/ipsec/charon"
DEFAULT_PSK = "0sdGVzdHRlc3R0ZXN0dGVzdA=="  # base64 of "testtesttesttest"
INSTALL_HINT = "bash scripts/install-deps.sh"

# Every external program that the lab, the end-to-end tests, the benchmarks and ``petrel demo``
# run (Python itself aside: they run ``sys.executable``), with the Debian package shipping it.
# tests/unit/test_prerequisites.py checks this against dpkg and against the package list of
# scripts/install-deps.sh, and that the sources run no program missing here.
LAB_PROGRAMS: dict[str, str] = {
    "ip": "iproute2",
    "nstat": "iproute2",
    "sysctl": "procps",
    "nft": "nftables",
    "conntrack": "conntrack",
    "ping": "iputils-ping",
    "iperf3": "iperf3",
    "tcpdump": "tcpdump",
    "tshark": "tshark",
    "editcap": "wireshark-common",
    "unshare": "util-linux",  # charon gets a private /run: unshare -m sh -c "mount --bind …"
    "sh": "dash",
    "mount": "mount",
    "swanctl": "strongswan-swanctl",
    CHARON: "strongswan-charon",
    "pki": "strongswan-pki",  # certificates for the tests
    "dpkg-query": "dpkg",  # tests/unit/test_prerequisites.py itself
    "/usr/bin/time": "time",  # fuzz/campaign.py: each target's peak memory (time -v)
    "systemd-analyze": "systemd",  # verify of the shipped unit (packaging/systemd)
}


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


@dataclass(frozen=True)
class Host:
    """One end of the lab: its namespace, outer interface and addresses."""

    ns: str
    ifname: str
    outer4: str
    outer6: str
    inner4: str
    inner6: str


class Lab:
    """Namespaces, links, addresses and tracked processes for one test (a context manager)."""

    def __init__(self, *, nat: bool = False, workdir: Path | str | None = None) -> None:
        self.id = secrets.token_hex(3)
        self.prefix = f"pt{self.id}"
        self.nat = nat
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.left = Host(
            f"{self.prefix}L",
            "vL",
            "192.0.2.1",
            "2001:db8:a::1" if nat else "2001:db8::1",
            "198.51.100.1",
            "2001:db8:1::1",
        )
        self.right = Host(
            f"{self.prefix}R",
            "vR",
            "192.0.2.130" if nat else "192.0.2.2",
            "2001:db8:b::2" if nat else "2001:db8::2",
            "203.0.113.1",
            "2001:db8:2::1",
        )
        self.router: str | None = f"{self.prefix}N" if nat else None
        # The address R sees L's outer IPv4 traffic coming from.
        self.left_public4 = "192.0.2.129" if nat else self.left.outer4

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Lab:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _add_ns(self, name: str) -> None:
        run_in(None, ["ip", "netns", "add", name])
        self.namespaces.append(name)
        # No duplicate address detection: addresses (incl. link-local) usable at once.
        self.sysctl(name, "net.ipv6.conf.default.accept_dad", "0")
        self.sysctl(name, "net.ipv6.conf.all.accept_dad", "0")
        self.ip(name, "link", "set", "lo", "up")

    def ip(self, ns: str, *args: str) -> None:
        run_in(None, ["ip", "-n", ns, *args])

    def sysctl(self, ns: str, key: str, value: str) -> None:
        run_in(ns, ["sysctl", "-qw", f"{key}={value}"])

    def _build(self) -> None:
        left, right = self.left, self.right
        for host in (left, right):
            self._add_ns(host.ns)
        if self.router is None:
            self.ip(
                left.ns,
                "link",
                "add",
                "vL",
                "type",
                "veth",
                "peer",
                "name",
                "vR",
                "netns",
                right.ns,
            )
            self._addr(left.ns, "vL", "192.0.2.1/24", "2001:db8::1/64")
            self._addr(right.ns, "vR", "192.0.2.2/24", "2001:db8::2/64")
        else:
            n = self.router
            self._add_ns(n)
            self.ip(left.ns, "link", "add", "vL", "type", "veth", "peer", "name", "nL", "netns", n)
            self.ip(right.ns, "link", "add", "vR", "type", "veth", "peer", "name", "nR", "netns", n)
            self._addr(left.ns, "vL", "192.0.2.1/25", "2001:db8:a::1/64")
            self._addr(n, "nL", "192.0.2.126/25", "2001:db8:a::ffff/64")
            self._addr(n, "nR", "192.0.2.129/25", "2001:db8:b::ffff/64")
            self._addr(right.ns, "vR", "192.0.2.130/25", "2001:db8:b::2/64")
            self.sysctl(n, "net.ipv4.ip_forward", "1")
            self.sysctl(n, "net.ipv6.conf.all.forwarding", "1")
            self.ip(left.ns, "route", "add", "192.0.2.128/25", "via", "192.0.2.126")
            self.ip(left.ns, "-6", "route", "add", "2001:db8:b::/64", "via", "2001:db8:a::ffff")
            self.ip(right.ns, "-6", "route", "add", "2001:db8:a::/64", "via", "2001:db8:b::ffff")
            self.nft(
                n,
                "add table ip nat\n"
                "add chain ip nat post { type nat hook postrouting priority 100; }\n"
                'add rule ip nat post oifname "nR" masquerade\n',
            )
        self._addr(left.ns, "lo", "198.51.100.1/32", "2001:db8:1::1/128")
        self._addr(right.ns, "lo", "203.0.113.1/32", "2001:db8:2::1/128")
        # The kernel activates a link's queue (linkwatch) up to ~1 s after carrier comes up;
        # until then frames are dropped, so wait for every veth to report operstate UP.
        links = [(left.ns, "vL"), (right.ns, "vR")]
        if self.router:
            links += [(self.router, "nL"), (self.router, "nR")]
        if not wait_for(lambda: all(self._oper_up(ns, dev) for ns, dev in links), 5):
            raise RuntimeError("veth links did not come up")

    def _oper_up(self, ns: str, dev: str) -> bool:
        out = run_in(None, ["ip", "-n", ns, "-j", "link", "show", "dev", dev]).stdout
        return json.loads(out)[0].get("operstate") == "UP"

    def _addr(self, ns: str, dev: str, v4: str, v6: str) -> None:
        self.ip(ns, "addr", "add", v4, "dev", dev)
        self.ip(ns, "addr", "add", v6, "dev", dev, "nodad")
        self.ip(ns, "link", "set", dev, "up")

    def close(self) -> None:
        """Kill tracked processes, then anything left in our namespaces, then delete them."""
        for proc in reversed(self.procs):
            stop_process(proc)
        self.procs.clear()
        for ns in self.namespaces:
            pids = run_in(None, ["ip", "netns", "pids", ns], check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        for ns in reversed(self.namespaces):
            run_in(None, ["ip", "netns", "del", ns], check=False)
        self.namespaces.clear()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- processes -------------------------------------------------------------------------
    def run_in(
        self, ns: str | None, argv: Sequence[str], **kw: object
    ) -> subprocess.CompletedProcess[str]:
        return run_in(ns, argv, **kw)  # type: ignore[arg-type]

    def spawn_in(
        self,
        ns: str | None,
        argv: Sequence[str],
        log_path: Path | str | None = None,
        *,
        env: dict[str, str] | None = None,
        stdout: int | IO[bytes] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in ``ns``, output to ``log_path`` (or ``stdout``); tracked by PID."""
        full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
        if log_path is not None:
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(
                    full, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
                )
        else:
            proc = subprocess.Popen(full, stdout=stdout, stdin=subprocess.DEVNULL, env=env)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int | None:
        """Stop a tracked process by PID and forget it; return its exit status."""
        stop_process(proc, sig)
        if proc in self.procs:
            self.procs.remove(proc)
        return proc.returncode

    # -- network knobs ---------------------------------------------------------------------
    def nft(self, ns: str, script: str) -> None:
        run_in(ns, ["nft", "-f", "-"], input=script.encode())

    def set_loss(self, percent: int, ns: str | None = None, match: str = "") -> None:
        """Drop ``percent``% of packets at random (nftables ``numgen``; tc netem is absent).

        In the router (NAT lab, the default there): forwarded packets. In a host ``ns``
        (default L): what arrives on its outer interface — dropped on arrival, as a lossy
        link would, not on departure (an output drop makes ``sendmsg`` fail with EPERM).
        ``match`` narrows it, e.g. ``"udp dport 4500"``. 0 removes the rule.
        """
        target = ns or self.router or self.left.ns
        if target == self.router:
            hook, where = "forward", ""
        else:
            host = self.left if target == self.left.ns else self.right
            hook, where = "input", f'iifname "{host.ifname}"'
        run_in(target, ["nft", "delete", "table", "inet", "petrel_loss"], check=False)
        if percent > 0:
            chance = "" if percent >= 100 else f"numgen random mod 100 < {percent}"
            self.nft(
                target,
                "add table inet petrel_loss\n"
                f"add chain inet petrel_loss drop_some {{ type filter hook {hook} priority 0; }}\n"
                f"add rule inet petrel_loss drop_some {where} {match} {chance} drop\n",
            )

    def capture(self, ns: str, iface: str, name: str, bpf: str = "") -> Capture:
        """Start tcpdump on ``iface`` in ``ns`` writing ``workdir/name.pcap``."""
        cap = Capture(self, ns, iface, self.workdir / f"{name}.pcap", bpf)
        cap.start()
        return cap

    # -- traffic ---------------------------------------------------------------------------
    def ping(self, ns: str, src: str, dst: str, count: int = 3, **kw: object) -> int:
        return ping(ns, src, dst, count, **kw)  # type: ignore[arg-type]

    def tcp_transfer(
        self, ns_a: str, ns_b: str, src: str, dst: str, size: int, **kw: object
    ) -> bool:
        return tcp_transfer(ns_a, ns_b, src, dst, size, **kw)  # type: ignore[arg-type]


class Capture:
    """tcpdump into a pcap file; ``stop()`` flushes it; ``frames()`` reads it back."""

    def __init__(self, lab: Lab, ns: str, iface: str, path: Path, bpf: str = "") -> None:
        self.lab, self.ns, self.iface, self.path, self.bpf = lab, ns, iface, path, bpf
        self.log = path.with_suffix(".tcpdump.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10) -> None:
        argv = [
            "tcpdump",
            "-i",
            self.iface,
            "-n",
            "-U",
            "--immediate-mode",
            "-B",
            "65536",  # KiB of capture buffer: a 10 MiB transfer must not overrun it
            "-Z",
            "root",
            "-s",
            "0",
            "-w",
            str(self.path),
        ]
        if self.bpf:
            argv.append(self.bpf)
        self.proc = self.lab.spawn_in(self.ns, argv, self.log)
        if not wait_for(lambda: "listening on" in self.log.read_text(errors="replace"), timeout):
            raise RuntimeError(f"tcpdump did not start: {self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.proc is not None:
            self.lab.stop(self.proc, signal.SIGINT)
            self.proc = None

    def frames(self) -> list[bytes]:
        """Link-layer frames in the pcap (Ethernet on veth)."""
        import dpkt

        with open(self.path, "rb") as fh:
            return [bytes(buf) for _ts, buf in dpkt.pcap.Reader(fh)]

    def raw(self) -> bytes:
        return self.path.read_bytes()


# -- traffic helpers (tiny Python programs run inside the namespaces) -------------------------
_PING = r"""
import os, socket, struct, sys, time
src, dst, count, wait, pad = sys.argv[1:6]
count, wait, pad = int(count), float(wait), bytes.fromhex(pad)
v6 = ":" in dst
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW,
                  socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
s.bind((src, 0))
ident = os.getpid() & 0xFFFF
def csum(b):
    b += b"\0" * (len(b) & 1)
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16: t = (t & 0xFFFF) + (t >> 16)
    return ~t & 0xFFFF
got = 0
for seq in range(count):
    body = struct.pack("!HH", ident, seq) + pad
    msg = struct.pack("!BBH", 128 if v6 else 8, 0, 0) + body
    if not v6:
        msg = msg[:2] + struct.pack("!H", csum(msg)) + msg[4:]
    try:
        s.sendto(msg, (dst, 0))
    except OSError:  # no route (yet): counts as unanswered
        time.sleep(wait)
        continue
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        s.settimeout(left)
        try:
            data, addr = s.recvfrom(65535)
        except socket.timeout:
            break
        if not v6:
            data = data[(data[0] & 15) * 4:]
        if addr[0] == dst and data[:1] == bytes([129 if v6 else 0]) and data[4:8] == body[:4]:
            got += 1
            break
print(got)
"""


def ping(
    ns: str, src: str, dst: str, count: int = 3, wait: float = 1.0, payload: bytes = b"petrel-ping"
) -> int:
    """Send ``count`` ICMP/ICMPv6 echo requests from ``src`` to ``dst`` in ``ns``; return how
    many were answered (each waits up to ``wait`` seconds)."""
    argv = [PYTHON, "-c", _PING, src, dst, str(count), str(wait), payload.hex()]
    out = run_in(ns, argv, timeout=count * wait + 30)
    return int(out.stdout.strip() or 0)


_TCP_SERVER = r"""
import hashlib, socket, sys
host, timeout = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
s.bind((host, 0)); s.listen(1); s.settimeout(timeout)
print(s.getsockname()[1], flush=True)
c, _ = s.accept(); c.settimeout(timeout)
h, n = hashlib.sha256(), 0
while b := c.recv(1 << 20):
    h.update(b); n += len(b)
c.close()
print(n, h.hexdigest(), flush=True)
"""

_TCP_CLIENT = r"""
import hashlib, os, socket, sys
src, dst, port, size, timeout, marker = sys.argv[1:7]
port, size, timeout, marker = int(port), int(size), float(timeout), bytes.fromhex(marker)
if marker:
    step = 1024
    data = b"".join(marker + os.urandom(step - len(marker)) for _ in range(0, size, step))[:size]
else:
    data = os.urandom(size)
c = socket.create_connection((dst, port), timeout, source_address=(src, 0))
c.sendall(data); c.shutdown(socket.SHUT_WR); c.recv(1); c.close()
print(len(data), hashlib.sha256(data).hexdigest())
"""


def tcp_transfer(
    ns_a: str,
    ns_b: str,
    src: str,
    dst: str,
    size: int,
    *,
    marker: bytes = b"",
    timeout: float = 60,
) -> bool:
    """Send ``size`` random bytes over TCP from ``src`` (in ``ns_a``) to ``dst`` (in ``ns_b``);
    True when the far end received exactly that many bytes with the same SHA-256.

    With ``marker`` (< 1024 bytes), each 1 KiB block starts with it, so a capture can be
    searched for plaintext leaks.
    """
    server = subprocess.Popen(
        ["ip", "netns", "exec", ns_b, PYTHON, "-c", _TCP_SERVER, dst, str(timeout)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()
        if not port:
            return False
        client = run_in(
            ns_a,
            [PYTHON, "-c", _TCP_CLIENT, src, dst, port, str(size), str(timeout), marker.hex()],
            check=False,
            timeout=timeout + 10,
        )
        received, _ = server.communicate(timeout=timeout)
        return (
            client.returncode == 0
            and server.returncode == 0
            and received.split() == client.stdout.split()
            and client.stdout.split()[:1] == [str(size)]
        )
    except subprocess.TimeoutExpired:
        return False
    finally:
        stop_process(server)


# -- strongSwan as the reference peer ---------------------------------------------------------
_CHARON_PLUGINS = (
    "random nonce openssl pem pkcs1 pkcs8 x509 revocation constraints pubkey kdf curve25519 "
    "socket-default kernel-libipsec kernel-netlink vici updown"
)
# The Debian package shipping each plugin of the ``load =`` line above (checked against dpkg by
# tests/unit/test_prerequisites.py): what to install when charon reports one missing.
CHARON_PLUGIN_PACKAGES: dict[str, str] = {
    **{
        name: "libstrongswan"
        for name in (
            *("random", "nonce", "pem", "pkcs1", "pkcs8", "x509", "revocation"),
            *("constraints", "pubkey", "kdf", "kernel-netlink"),
        )
    },
    "openssl": "libstrongswan-standard-plugins",
    "curve25519": "libstrongswan-extra-plugins",
    "kernel-libipsec": "libcharon-extra-plugins",
    "socket-default": "strongswan-libcharon",
    "updown": "strongswan-libcharon",
    "vici": "strongswan-swanctl",
}


class PeerStartError(RuntimeError):
    """A lab peer (charon or a Petrel daemon) that could not start.

    ``summary`` is one line for users: what failed, the log line that says why and, when known,
    what to install; ``str()`` adds the end of the peer's log, for test reports.
    """

    def __init__(self, what: str, reason: str, install: str | None = None, log: str = "") -> None:
        self.what, self.reason, self.install, self.log = what, reason, install, log
        hint = f"; install {install} ({INSTALL_HINT})" if install else ""
        self.summary = f"{what} failed to start: {reason}{hint}"
        super().__init__(self.summary + (f"\n{log[-3000:]}" if log else ""))


_CHARON_WHY = (
    "failed to load",
    "unmet dependency",
    "failed",
    "error",
    "unable",
    "aborting",
)


def charon_failure(log: str) -> tuple[str, str | None]:
    """The line of a charon log that says why it did not start, and the package to install.

    A plugin that failed to load (its file missing) comes first: the "unmet dependency" and
    "initialization failed" lines after it are its consequences.
    """
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in lines:
        match = re.search(r"plugin '([\w-]+)'(?::)? failed to load", line)
        if match:
            return _strip_charon_prefix(line), CHARON_PLUGIN_PACKAGES.get(match.group(1))
    for word in _CHARON_WHY:
        for line in lines:
            if word in line.lower():
                return _strip_charon_prefix(line), None
    return (_strip_charon_prefix(lines[-1]) if lines else "no log output"), None


def _strip_charon_prefix(line: str) -> str:
    """``12:00:00.123 00[LIB] text`` → ``text``."""
    return re.sub(r"^(?:[\d:.]+ )?\d+\[\w+\] ", "", line)


def swanctl_psk_conf(
    *,
    local_addr: str,
    remote_addr: str,
    local_id: str,
    remote_id: str,
    local_ts: str,
    remote_ts: str,
    secret: str = DEFAULT_PSK,
    proposals: str = "aes256gcm16-prfsha256-x25519",
    esp_proposals: str = "aes256gcm16",
    conn: str = "c",
    child: str = "net",
    conn_extra: Sequence[str] = (),
    child_extra: Sequence[str] = (),
) -> str:
    """A swanctl.conf for one PSK connection (one ``key = value`` per line, as swanctl needs)."""
    lines = [
        "connections {",
        f"  {conn} {{",
        f"    local_addrs = {local_addr}",
        f"    remote_addrs = {remote_addr}",
        "    version = 2",
        f"    proposals = {proposals}",
        *(f"    {x}" for x in conn_extra),
        "    local {",
        "      auth = psk",
        f"      id = {local_id}",
        "    }",
        "    remote {",
        "      auth = psk",
        f"      id = {remote_id}",
        "    }",
        "    children {",
        f"      {child} {{",
        f"        local_ts = {local_ts}",
        f"        remote_ts = {remote_ts}",
        f"        esp_proposals = {esp_proposals}",
        *(f"        {x}" for x in child_extra),
        "      }",
        "    }",
        "  }",
        "}",
        "secrets {",
        "  ike-1 {",
        f"    id-1 = {local_id}",
        f"    id-2 = {remote_id}",
        f"    secret = {secret}",
        "  }",
        "}",
        "",
    ]
    return "\n".join(lines)


def strongswan_pair_confs(lab: Lab, v6: bool = False, **kw: str) -> tuple[str, str]:
    """Mirror swanctl.conf texts for L (initiator side, id ``left``) and R (id ``right``)."""
    left, right = lab.left, lab.right
    fam = "6" if v6 else "4"
    la, ra = getattr(left, f"outer{fam}"), getattr(right, f"outer{fam}")
    lt = f"{getattr(left, f'inner{fam}')}/{128 if v6 else 32}"
    rt = f"{getattr(right, f'inner{fam}')}/{128 if v6 else 32}"
    # Behind the NAT, R sees L as the router's address: accept any remote address there.
    r_remote = "%any" if lab.nat and not v6 else la
    l_conf = swanctl_psk_conf(
        local_addr=la, remote_addr=ra, local_id="left", remote_id="right",
        local_ts=lt, remote_ts=rt, **kw,
    )  # fmt: skip
    r_conf = swanctl_psk_conf(
        local_addr=ra, remote_addr=r_remote, local_id="right", remote_id="left",
        local_ts=rt, remote_ts=lt, **kw,
    )  # fmt: skip
    return l_conf, r_conf


class StrongSwan:
    """One charon instance (kernel-libipsec) in a namespace, with its own /run and vici socket.

    Recipe from LAB.md: ``unshare -m`` + bind-mount a private /run, own strongswan.conf.
    """

    def __init__(
        self, lab: Lab, ns: str, name: str, swanctl_conf: str, charon_extra: str = ""
    ) -> None:
        self.lab, self.ns, self.name = lab, ns, name
        self.charon_extra = charon_extra  # more strongswan.conf lines inside charon { }
        self.dir = lab.workdir / f"swan-{name}"
        self.run_dir = self.dir / "run"
        self.vici = self.run_dir / "charon.vici"
        self.log = self.dir / "charon.log"
        self.conf = self.dir / "swanctl.conf"
        self.swanctl_conf = swanctl_conf
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15) -> StrongSwan:
        what = f"strongSwan (charon, {self.name})"
        missing = strongswan_available()
        if missing:
            raise PeerStartError(what, missing, "strongswan-charon strongswan-swanctl")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.run_dir.iterdir():  # a killed charon leaves its socket and pid file
            if not stale.is_dir():
                stale.unlink()
        (self.dir / "strongswan.conf").write_text(
            "charon {\n"
            f"{self.charon_extra}\n"
            "  load_modular = no\n"
            f"  load = {_CHARON_PLUGINS}\n"
            "  plugins {\n"
            f"    vici {{\n      socket = unix://{self.vici}\n    }}\n"
            "    kernel-libipsec {\n      allow_peer_ts = yes\n    }\n"
            "  }\n"
            "  filelog {\n"
            f"    f {{\n      path = {self.log}\n      default = 1\n      ike = 2\n"
            "      flush_line = yes\n      time_format = %H:%M:%S\n      time_add_ms = yes\n    }\n"
            "  }\n"
            "}\n"
        )
        self.conf.write_text(self.swanctl_conf)
        shell = (
            f"mount --bind {self.run_dir} /run && "
            f"STRONGSWAN_CONF={self.dir}/strongswan.conf exec {CHARON}"
        )
        self.proc = self.lab.spawn_in(
            self.ns, ["unshare", "-m", "sh", "-c", shell], self.dir / "charon.stdout"
        )
        # charon opens its vici socket while loading plugins, before it checks their features
        # and may abort: started means answering on it (or gone, reported below).
        if not wait_for(lambda: self.proc.poll() is not None or self._answers(), timeout, 0.1):
            log = self._start_output()
            last = _strip_charon_prefix(log.strip().splitlines()[-1]) if log.strip() else ""
            raise PeerStartError(
                what, f"no vici socket after {timeout:g} s; last log line: {last!r}", log=log
            )
        if self.proc.poll() is not None:
            log = self._start_output()
            reason, package = charon_failure(log)
            raise PeerStartError(what, reason, package, log)
        return self

    def _answers(self) -> bool:
        if not self.vici.exists():
            return False
        try:
            return self.swanctl("--stats", check=False, timeout=5).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def _start_output(self) -> str:
        """charon's log, then what it (or the mount before it) wrote on stdout/stderr."""
        stdout = self.dir / "charon.stdout"
        text = stdout.read_text(errors="replace") if stdout.exists() else ""
        return self.log_text() + text

    def swanctl(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        # Credentials (x509/, x509ca/, private/, …) come from this instance's folder.
        env = {**os.environ, "SWANCTL_DIR": str(self.dir)}
        return run_in(
            None,
            ["swanctl", *args, "--uri", f"unix://{self.vici}"],
            check=check,
            timeout=timeout,
            env=env,
        )

    def load(self) -> str:
        return self.swanctl("--load-all", "--noprompt", "--file", str(self.conf)).stdout

    def initiate(self, child: str = "net", ike: str | None = None, timeout: int = 30) -> bool:
        args = ["--initiate", "--child", child, "--timeout", str(timeout)]
        if ike:
            args += ["--ike", ike]
        return self.swanctl(*args, check=False, timeout=timeout + 10).returncode == 0

    def list_sas(self) -> str:
        return self.swanctl("--list-sas").stdout

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            self.lab.stop(self.proc)
            self.proc = None


def strongswan_available() -> str | None:
    """None when charon and swanctl are installed, else the reason they are not usable."""
    if not os.path.exists(CHARON):
        return f"{CHARON} missing (apt-get install strongswan-charon, or {INSTALL_HINT})"
    if shutil.which("swanctl") is None:
        return f"swanctl missing (apt-get install strongswan-swanctl, or {INSTALL_HINT})"
    return None


def missing_programs(programs: Sequence[str] = tuple(LAB_PROGRAMS)) -> dict[str, str]:
    """Those of ``programs`` not installed here, each with the Debian package that ships it."""
    return {
        prog: LAB_PROGRAMS.get(prog, "?")
        for prog in programs
        if not (os.path.exists(prog) if prog.startswith("/") else shutil.which(prog))
    }
