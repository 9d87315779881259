"""Certificate authentication against strongSwan 5.9.8 (issue 8): chains of a root CA and an
intermediate made by strongSwan's ``pki`` and, separately, by ``petrel pki``; RSA-3072 with
PKCS#1 v1.5 and with PSS, ECDSA P-256 and P-384, Ed25519 under a mixed chain (ECDSA root,
RSA intermediate); identities as DN, FQDN and email; both sides initiating; ping both ways
and a checksummed TCP transfer through each tunnel.  Refusals: AUTHENTICATION_FAILED on the
wire and Petrel's log line saying why."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from petrel.lab import Lab, PetrelPeer, StrongSwan, strongswan_pair_confs, tcp_transfer, wait_for
from petrel.lab.pairs import child_spis, logs
from petrel.lab.pki import PETREL_PKI, STRONGSWAN_PKI, Chain, Peer, install

pytestmark = [pytest.mark.e2e, pytest.mark.interop]

LEFT = Peer(
    "left", "C=CH, O=Petrel Lab, CN=left.petrel.test", ("left.petrel.test", "left@petrel.test")
)
RIGHT = Peer(
    "right", "C=CH, O=Petrel Lab, CN=right.petrel.test", ("right.petrel.test", "right@petrel.test")
)
IDS = {"dn": lambda p: f'"{p.dn}"', "fqdn": lambda p: p.sans[0], "email": lambda p: p.sans[1]}

# name: root, intermediate, end entity, PSS, identity style, auth constraint
KINDS = {
    "rsa3072": (("rsa", 3072), ("rsa", 3072), ("rsa", 3072), False, "dn", "rsa-3072"),
    "rsa3072-pss": (("rsa", 3072), ("rsa", 3072), ("rsa", 3072), True, "fqdn", "rsa/pss"),
    "ecdsa256": (("ecdsa", 256), ("ecdsa", 256), ("ecdsa", 256), False, "email", "ecdsa-256"),
    "ecdsa384": (("ecdsa", 384), ("ecdsa", 384), ("ecdsa", 384), False, "dn", "ecdsa-384"),
    "ed25519-mixed": (("ecdsa", 384), ("rsa", 3072), ("ed25519", None), False, "fqdn", "pubkey"),
}
TOOLS = {"strongswan-pki": STRONGSWAN_PKI, "petrel-pki": PETREL_PKI}


def cert_conf(psk_conf: str, me: Peer, other: Peer, id_style: str, auth: str) -> str:
    """The lab's PSK configuration with certificate rounds instead (and no secrets)."""
    text = psk_conf[: psk_conf.index("secrets {")]
    local = (
        f"local {{\n      auth = {auth}\n      certs = {me.name}.pem\n"
        f"      id = {IDS[id_style](me)}\n    }}"
    )
    remote = f"remote {{\n      auth = {auth}\n      id = {IDS[id_style](other)}\n    }}"
    text = re.sub(r"local \{\n\s+auth = psk\n\s+id = \S+\n\s+\}", local, text)
    return re.sub(r"remote \{\n\s+auth = psk\n\s+id = \S+\n\s+\}", remote, text)


def start(
    lab: Lab, pair: str, files: dict[str, dict[str, bytes]], id_style: str, auth: str
) -> tuple[PetrelPeer | StrongSwan, PetrelPeer | StrongSwan]:
    """R then L (the initiator) of ``pair``, each with its own credentials."""
    l_kind, r_kind = pair.split("->")
    encap = ["encap = yes"] if (l_kind, r_kind) == ("petrel", "strongswan") else []
    l_psk, _ = strongswan_pair_confs(lab, conn_extra=encap)
    _, r_psk = strongswan_pair_confs(lab)
    started = []
    for kind, host, me, other, psk in (
        (r_kind, lab.right, RIGHT, LEFT, r_psk),
        (l_kind, lab.left, LEFT, RIGHT, l_psk),
    ):
        text = cert_conf(psk, me, other, id_style, auth)
        if kind == "petrel":
            peer = PetrelPeer(lab, host.ns, me.name, text)
            install(peer.dir, files[me.name])
            started.append(peer.start())
        else:
            swan = StrongSwan(lab, host.ns, me.name, text).start()
            install(swan.dir, files[me.name])
            swan.load()
            started.append(swan)
    right, left = started
    return left, right


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict]:
    """Every chain, made once per module by each tool."""
    made = {}
    for tool_name, tool in TOOLS.items():
        for kind, (root, mid, ee, pss, *_rest) in KINDS.items():
            work = tmp_path_factory.mktemp(f"{tool_name}-{kind}")
            made[(tool_name, kind)] = Chain(tool, work, root, mid, ee, pss).make([LEFT, RIGHT])
    return made


@pytest.mark.parametrize("pair", ["petrel->strongswan", "strongswan->petrel"])
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_certificate_tunnel_with_strongswan(
    lab: Lab, chains: dict, tool: str, kind: str, pair: str
) -> None:
    *_keys, id_style, auth = KINDS[kind]
    left, right = start(lab, pair, chains[(tool, kind)], id_style, auth)
    assert left.initiate("net"), logs(left, right)
    petrel = left if isinstance(left, PetrelPeer) else right
    assert wait_for(lambda: len(child_spis(petrel)) == 1, 10), logs(left, right)
    assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=2) == 2
    assert lab.ping(lab.right.ns, lab.right.inner4, lab.left.inner4, count=2) == 2
    assert tcp_transfer(lab.left.ns, lab.right.ns, lab.left.inner4, lab.right.inner4, 1 << 20)
    assert "authenticated with" in petrel.log_text()
    swan = right if isinstance(right, StrongSwan) else left
    assert "authentication of" in swan.log_text() and "successful" in swan.log_text()


def _refusal(lab: Lab, tmp_path: Path, petrel_files: dict, swan_files: dict, auth: str) -> str:
    """strongSwan initiates with ``swan_files``; Petrel (responder) must refuse it."""
    _, r_psk = strongswan_pair_confs(lab)
    l_psk, _ = strongswan_pair_confs(lab)
    petrel = PetrelPeer(lab, lab.right.ns, "right", cert_conf(r_psk, RIGHT, LEFT, "fqdn", auth))
    install(petrel.dir, petrel_files)
    petrel.start()
    swan = StrongSwan(lab, lab.left.ns, "left", cert_conf(l_psk, LEFT, RIGHT, "fqdn", "pubkey"))
    swan.start()
    install(swan.dir, swan_files)
    swan.load()
    assert not swan.initiate("net", timeout=10)
    assert wait_for(lambda: "AUTHENTICATION_FAILED" in swan.log_text(), 10), swan.log_text()
    assert child_spis(petrel) == []
    return petrel.log_text()


def test_untrusted_ca_refused(lab: Lab, tmp_path: Path) -> None:
    ours = Chain(PETREL_PKI, tmp_path / "a", ("ecdsa", 256), ("ecdsa", 256), ("ecdsa", 256))
    theirs = Chain(PETREL_PKI, tmp_path / "b", ("ecdsa", 256), ("ecdsa", 256), ("ecdsa", 256))
    mine, other = ours.make([LEFT, RIGHT]), theirs.make([LEFT, RIGHT])
    log = _refusal(lab, tmp_path, mine["right"], other["left"], "pubkey")
    assert "failed authentication" in log and "untrusted" in log.lower()


def test_key_type_forbidden_by_constraint_refused(lab: Lab, tmp_path: Path) -> None:
    files = Chain(PETREL_PKI, tmp_path, ("ecdsa", 256), ("ecdsa", 256), ("ecdsa", 256)).make(
        [LEFT, RIGHT]
    )
    log = _refusal(lab, tmp_path, files["right"], files["left"], "rsa-3072")
    assert "failed authentication" in log and "constraint" in log


def test_revoked_certificate_refused(lab: Lab, tmp_path: Path) -> None:
    chain = Chain(STRONGSWAN_PKI, tmp_path, ("ecdsa", 256), ("ecdsa", 256), ("ecdsa", 256))
    files = chain.make([LEFT, RIGHT])
    crl = _revoke(chain, tmp_path, files["left"]["x509/left.pem"])
    petrel_files = {**files["right"], "x509crl/sub.crl": crl}
    log = _refusal(lab, tmp_path, petrel_files, files["left"], "pubkey")
    assert "failed authentication" in log and "revoked" in log


def _revoke(chain: Chain, work: Path, cert: bytes) -> bytes:
    """A CRL of the intermediate CA revoking ``cert`` (strongSwan's pki)."""
    path = work / "revoked.pem"
    path.write_bytes(cert)
    return chain.run(
        "--signcrl", "--cacert", work / "intermediate.pem", "--cakey", work / "intermediate.key",
        "--cert", path, "--outform", "pem",
    )  # fmt: skip


def test_null_authentication_between_petrels(lab: Lab) -> None:
    """RFC 7619 NULL authentication (strongSwan 5.9 lacks it): Petrel↔Petrel, ID_NULL on both
    sides, traffic flows, and each side warns that its peer is unauthenticated."""
    l_psk, r_psk = strongswan_pair_confs(lab)
    null = "auth = null\n    }"
    texts = []
    for psk in (l_psk, r_psk):
        text = psk[: psk.index("secrets {")]
        text = re.sub(r"auth = psk\n\s+id = \S+\n\s+\}", null, text)
        texts.append(text)
    right = PetrelPeer(lab, lab.right.ns, "right", texts[1]).start()
    left = PetrelPeer(lab, lab.left.ns, "left", texts[0]).start()
    assert left.initiate("net"), logs(left, right)
    assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=2) == 2
    assert lab.ping(lab.right.ns, lab.right.inner4, lab.left.inner4, count=2) == 2
    for peer in (left, right):
        assert "UNAUTHENTICATED" in peer.log_text()
        assert "'%null' authenticated with NULL authentication" in peer.log_text()
