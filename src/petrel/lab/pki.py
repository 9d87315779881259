"""Certificate chains for lab peers, made with strongSwan's ``pki`` or with ``petrel pki``.

Both tools take the same flags, so one recipe makes a root CA, an intermediate CA and an
end-entity certificate per peer, and lays each peer's credentials out in swanctl's folders
(``x509ca/``, ``x509/``, ``private/``) beside its swanctl.conf.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .netns import Lab
from .process import PYTHON, wait_for

STRONGSWAN_PKI = ("pki",)
PETREL_PKI = (PYTHON, "-m", "petrel.cli", "pki")

KeySpec = tuple[str, int | None]  # ("rsa", 3072), ("ecdsa", 256), ("ed25519", None)


@dataclass(frozen=True)
class Peer:
    """One peer's end-entity: its DN and subjectAltNames."""

    name: str
    dn: str
    sans: tuple[str, ...]


@dataclass(frozen=True)
class Chain:
    tool: tuple[str, ...]
    work: Path
    root: KeySpec
    intermediate: KeySpec
    end_entity: KeySpec
    pss: bool = False  # RSA certificates signed with RSASSA-PSS

    def run(self, *args: str | Path, stdin: bytes | None = None) -> bytes:
        result = subprocess.run(
            [*self.tool, *map(str, args)], input=stdin, capture_output=True, timeout=120
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(self.tool)} {' '.join(map(str, args))}: "
                f"{result.stderr.decode(errors='replace').strip()}"
            )
        return result.stdout

    def key(self, name: str, spec: KeySpec) -> Path:
        kind, size = spec
        path = self.work / f"{name}.key"
        size_args = ["--size", str(size)] if size else []
        path.write_bytes(self.run("--gen", "--type", kind, *size_args, "--outform", "pem"))
        return path

    def _padding(self) -> list[str]:
        return ["--rsa-padding", "pss"] if self.pss else []

    def make(self, peers: Sequence[Peer]) -> dict[str, dict[str, bytes]]:
        """Root, intermediate and one end entity per peer; returns, per peer name, the
        files of its swanctl folders: ``{"x509ca/root.pem": …, "x509/…": …, …}``."""
        self.work.mkdir(parents=True, exist_ok=True)
        root_key = self.key("root", self.root)
        root = self.work / "root.pem"
        root.write_bytes(
            self.run(
                "--self", "--ca", "--in", root_key, "--dn", "C=CH, O=Petrel Lab, CN=Lab Root CA",
                *self._padding(), "--outform", "pem",
            )
        )  # fmt: skip
        mid_key = self.key("intermediate", self.intermediate)
        mid = self.work / "intermediate.pem"
        mid.write_bytes(self._issue(mid_key, root, root_key, "C=CH, O=Petrel Lab, CN=Lab Sub CA",
                                    ["--ca"]))  # fmt: skip
        files: dict[str, dict[str, bytes]] = {}
        for peer in peers:
            key = self.key(peer.name, self.end_entity)
            sans = [a for san in peer.sans for a in ("--san", san)]
            cert = self._issue(key, mid, mid_key, peer.dn, sans)
            files[peer.name] = {
                "x509ca/root.pem": root.read_bytes(),
                "x509/intermediate.pem": mid.read_bytes(),
                f"x509/{peer.name}.pem": cert,
                f"private/{peer.name}.key": key.read_bytes(),
            }
        return files

    def reissue(self, peer: Peer, *extra: str, issuer: str = "intermediate") -> bytes:
        """Another certificate for ``peer``'s key (made by :meth:`make`), signed by the CA
        whose files are ``<issuer>.pem``/``<issuer>.key`` in ``work``, with extra flags (e.g.
        ``--not-before``/``--not-after`` in the past for an expired certificate)."""
        sans = [a for san in peer.sans for a in ("--san", san)]
        work = self.work
        return self._issue(
            work / f"{peer.name}.key", work / f"{issuer}.pem", work / f"{issuer}.key", peer.dn,
            [*sans, *extra],
        )  # fmt: skip

    def non_ca_issuer(self, name: str = "notca") -> bytes:
        """A certificate without CA:TRUE, issued by the root, with its key as
        ``<name>.pem``/``<name>.key`` in ``work``: to be misused as an issuing CA."""
        key = self.key(name, self.intermediate)
        cert = self._issue(key, self.work / "root.pem", self.work / "root.key",
                           "C=CH, O=Petrel Lab, CN=Not A CA", [])  # fmt: skip
        (self.work / f"{name}.pem").write_bytes(cert)
        return cert

    def _issue(self, key: Path, ca: Path, ca_key: Path, dn: str, extra: list[str]) -> bytes:
        public = self.run("--pub", "--in", key)
        return self.run(
            "--issue", "--cacert", ca, "--cakey", ca_key, "--dn", dn, *extra,
            *self._padding(), "--outform", "pem", stdin=public,
        )  # fmt: skip


def tamper_signature(pem: bytes) -> bytes:
    """``pem`` with the last byte of its issuer's signature flipped (DER stays well formed:
    the signature BIT STRING, or the ECDSA ``s`` INTEGER inside it, ends the encoding)."""
    body = b"".join(line for line in pem.splitlines() if line and not line.startswith(b"-----"))
    der = bytearray(base64.b64decode(body))
    der[-1] ^= 0x01
    text = base64.encodebytes(bytes(der)).replace(b"\n", b"")
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return b"\n".join([b"-----BEGIN CERTIFICATE-----", *lines, b"-----END CERTIFICATE-----", b""])


def install(folder: Path, files: dict[str, bytes]) -> None:
    """Write one peer's credential files below ``folder`` (its swanctl.conf's folder)."""
    for relative, data in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if relative.startswith("private/"):
            path.chmod(0o600)


_SLOW_SERVER = """
import functools, http.server, sys, time
address, port, folder, delay = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
class Slow(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        time.sleep(delay)
        super().do_GET()
handler = functools.partial(Slow, directory=folder)
server = http.server.ThreadingHTTPServer((address, port), handler)
print(f"Serving HTTP on {address} port {port}", flush=True)
server.serve_forever()
"""


@dataclass
class FileServer:
    """``python -m http.server`` serving ``folder`` in a lab namespace (CRL distribution
    points for the tests); its request log is ``log``."""

    lab: Lab
    ns: str
    address: str
    port: int
    folder: Path
    delay: float = 0.0  # seconds each answer waits (a slow distribution point)

    def __post_init__(self) -> None:
        self.log = self.folder.parent / f"http-{self.port}.log"
        argv = [PYTHON, "-u", "-c", _SLOW_SERVER, self.address, str(self.port),
                str(self.folder), str(self.delay)]  # fmt: skip
        self.proc = self.lab.spawn_in(self.ns, argv, self.log)
        if not wait_for(lambda: "Serving HTTP" in self.log_text(), 10):
            raise RuntimeError(f"http.server did not start: {self.log_text()}")

    def url(self, name: str) -> str:
        return f"http://{self.address}:{self.port}/{name}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
