"""Certificate authentication against strongSwan 5.9.8 (issue 8): chains of a root CA and an
intermediate made by strongSwan's ``pki`` and, separately, by ``petrel pki``; RSA-3072 with
PKCS#1 v1.5 and with PSS, ECDSA P-256 and P-384, Ed25519 under a mixed chain (ECDSA root,
RSA intermediate); identities as DN, FQDN and email; both sides initiating; ping both ways
and a checksummed TCP transfer through each tunnel.  Refusals: AUTHENTICATION_FAILED on the
wire and Petrel's log line saying why — untrusted CA, revoked certificate, key type forbidden
by the ``auth`` constraint (strongSwan initiating), and an expired certificate, an IKE ID its
certificate does not contain, a tampered certificate signature and a CA:FALSE issuer (either
side initiating)."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from petrel.lab import Lab, PetrelPeer, StrongSwan, strongswan_pair_confs, tcp_transfer, wait_for
from petrel.lab.pairs import child_spis, logs, swan_child_count
from petrel.lab.pki import (
    PETREL_PKI,
    STRONGSWAN_PKI,
    Chain,
    FileServer,
    Peer,
    install,
    tamper_signature,
)

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


def cert_conf(
    psk_conf: str,
    me: Peer,
    other: Peer,
    id_style: str,
    auth: str,
    local_id: str | None = None,
    remote_id: str | None = None,
    revocation: str | None = None,
) -> str:
    """The lab's PSK configuration with certificate rounds instead (and no secrets);
    ``local_id``/``remote_id`` replace the identities ``id_style`` gives."""
    text = psk_conf[: psk_conf.index("secrets {")]
    local = (
        f"local {{\n      auth = {auth}\n      certs = {me.name}.pem\n"
        f"      id = {local_id or IDS[id_style](me)}\n    }}"
    )
    policy = f"      revocation = {revocation}\n" if revocation else ""
    remote = (
        f"remote {{\n      auth = {auth}\n      id = {remote_id or IDS[id_style](other)}\n"
        f"{policy}    }}"
    )
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


# Refusals in both initiation directions: strongSwan presents a bad credential and Petrel,
# initiator or responder, refuses it with AUTHENTICATION_FAILED on the wire (in its IKE_AUTH
# response, or in an INFORMATIONAL request after the responder's IKE_AUTH response, RFC 7296
# §2.21.2) and a log line saying why.
PAIRS = ["strongswan->petrel", "petrel->strongswan"]
IMPOSTOR_ID = "impostor.petrel.test"  # an identity neither certificate contains


def _mixed_pair(
    lab: Lab,
    pair: str,
    petrel_files: dict,
    swan_files: dict,
    swan_id: str | None = None,
    revocation: str | None = None,
    swan_revocation: str | None = None,
) -> tuple[PetrelPeer, StrongSwan]:
    """Petrel and strongSwan, each with its credentials, L initiating as ``pair`` says;
    strongSwan uses IKE ID ``swan_id`` (default: the FQDN in its certificate), Petrel checks
    it with ``revocation``."""
    l_kind, _ = pair.split("->")
    swan_host, petrel_host = (
        (lab.left, lab.right) if l_kind == "strongswan" else (lab.right, lab.left)
    )
    swan_me, petrel_me = (LEFT, RIGHT) if l_kind == "strongswan" else (RIGHT, LEFT)
    l_psk, _ = strongswan_pair_confs(
        lab, conn_extra=[] if l_kind == "strongswan" else ["encap = yes"]
    )
    _, r_psk = strongswan_pair_confs(lab)
    swan_psk, petrel_psk = (l_psk, r_psk) if l_kind == "strongswan" else (r_psk, l_psk)
    petrel_text = cert_conf(
        petrel_psk, petrel_me, swan_me, "fqdn", "pubkey", remote_id=swan_id, revocation=revocation
    )
    swan_text = cert_conf(
        swan_psk, swan_me, petrel_me, "fqdn", "pubkey", local_id=swan_id, revocation=swan_revocation
    )
    petrel = PetrelPeer(lab, petrel_host.ns, petrel_me.name, petrel_text)
    install(petrel.dir, petrel_files)
    swan = StrongSwan(lab, swan_host.ns, swan_me.name, swan_text).start()
    install(swan.dir, swan_files)
    swan.load()
    petrel.start()
    return petrel, swan


def _refused_both_ways(
    lab: Lab,
    pair: str,
    petrel_files: dict,
    swan_files: dict,
    swan_id: str | None = None,
    revocation: str | None = None,
) -> str:
    """strongSwan authenticates with ``swan_files`` (and IKE ID ``swan_id``); Petrel must
    refuse it whichever side initiates. Returns the Petrel log line that says why."""
    l_kind, _ = pair.split("->")
    petrel, swan = _mixed_pair(lab, pair, petrel_files, swan_files, swan_id, revocation)
    initiator = swan if l_kind == "strongswan" else petrel
    assert not initiator.initiate("net", timeout=10), logs(swan, petrel)
    # charon logs each message it parses with its payloads: N(AUTH_FAILED) is the notify
    # AUTHENTICATION_FAILED, in the IKE_AUTH response (Petrel responder) or in an
    # INFORMATIONAL request (Petrel initiator).
    exchange = "IKE_AUTH response" if l_kind == "strongswan" else "INFORMATIONAL request"
    wire = re.compile(rf"parsed {exchange} \d+ \[ [^]]*N\(AUTH_FAILED\)")
    assert wait_for(lambda: wire.search(swan.log_text()) is not None, 10), logs(swan, petrel)
    assert child_spis(petrel) == []
    # charon treats a late AUTHENTICATION_FAILED like a Delete of the IKE SA it established.
    assert wait_for(lambda: swan_child_count(swan) == 0, 10), swan.list_sas()
    role = "initiator" if l_kind == "strongswan" else "responder"
    lines = [
        ln
        for ln in petrel.log_text().splitlines()
        if f"{role} '" in ln and "failed authentication" in ln
    ]
    assert lines, logs(swan, petrel)
    return lines[0]


def _ecdsa_chain(
    tmp_path: Path, tool: tuple[str, ...] = STRONGSWAN_PKI
) -> tuple[Chain, dict[str, dict[str, bytes]]]:
    chain = Chain(tool, tmp_path, ("ecdsa", 256), ("ecdsa", 256), ("ecdsa", 256))
    return chain, chain.make([LEFT, RIGHT])


def _swan_side(pair: str) -> Peer:
    return LEFT if pair.startswith("strongswan") else RIGHT


@pytest.mark.parametrize("pair", PAIRS)
def test_expired_certificate_refused(lab: Lab, tmp_path: Path, pair: str) -> None:
    chain, files = _ecdsa_chain(tmp_path)
    swan = _swan_side(pair)
    expired = chain.reissue(
        swan, "--not-before", "01.01.20 00:00:00", "--not-after", "01.01.21 00:00:00"
    )
    petrel = RIGHT if swan is LEFT else LEFT
    line = _refused_both_ways(
        lab, pair, files[petrel.name], {**files[swan.name], f"x509/{swan.name}.pem": expired}
    )
    assert "certificate expired" in line and swan.dn in line, line


@pytest.mark.parametrize("pair", PAIRS)
def test_identity_not_in_certificate_refused(lab: Lab, tmp_path: Path, pair: str) -> None:
    """charon's vici config keeps a ``local.id`` its certificate does not contain (it only
    defaults an absent id to the subject) and sends it as IDi/IDr with that certificate."""
    _chain, files = _ecdsa_chain(tmp_path)
    swan = _swan_side(pair)
    petrel = RIGHT if swan is LEFT else LEFT
    line = _refused_both_ways(lab, pair, files[petrel.name], files[swan.name], IMPOSTOR_ID)
    assert f"does not confirm '{IMPOSTOR_ID}'" in line and swan.dn in line, line


@pytest.mark.parametrize("pair", PAIRS)
def test_tampered_certificate_signature_refused(lab: Lab, tmp_path: Path, pair: str) -> None:
    _chain, files = _ecdsa_chain(tmp_path)
    swan = _swan_side(pair)
    petrel = RIGHT if swan is LEFT else LEFT
    tampered = tamper_signature(files[swan.name][f"x509/{swan.name}.pem"])
    line = _refused_both_ways(
        lab, pair, files[petrel.name], {**files[swan.name], f"x509/{swan.name}.pem": tampered}
    )
    assert "certificate signature invalid" in line and swan.dn in line, line


@pytest.mark.parametrize("pair", PAIRS)
def test_ca_false_certificate_as_issuer_refused(lab: Lab, tmp_path: Path, pair: str) -> None:
    """strongSwan's end entity is issued by a certificate without CA:TRUE (itself issued by
    the trusted root). charon never sends such an issuer (its x509 ``issued_by`` requires CA
    on the issuer, so its trust chain stops at the end entity), so Petrel holds it in
    ``x509/`` as a locally provisioned intermediate. strongSwan's ``pki`` refuses to issue from
    it ("CA certificate misses CA basicConstraint"): this chain is made by ``petrel pki``."""
    chain, files = _ecdsa_chain(tmp_path, PETREL_PKI)
    swan = _swan_side(pair)
    petrel = RIGHT if swan is LEFT else LEFT
    not_ca = chain.non_ca_issuer()
    cert = chain.reissue(swan, issuer="notca")
    swan_files = {**files[swan.name], f"x509/{swan.name}.pem": cert}
    petrel_files = {**files[petrel.name], "x509/notca.pem": not_ca}
    line = _refused_both_ways(lab, pair, petrel_files, swan_files)
    assert 'CA:FALSE used as issuer: "C=CH, O=Petrel Lab, CN=Not A CA"' in line, line


# CRLs fetched from a distribution point over HTTP (issue 8): strongSwan's end entity names
# http://<strongSwan's host>:8080/sub.crl, served by a Python HTTP server in strongSwan's
# namespace; Petrel fetches it during IKE_AUTH. An unreachable point is a closed port there.
CRL_PORT = 8080


def _cdp_case(
    lab: Lab, tmp_path: Path, pair: str, served: str, delay: float = 0.0
) -> tuple[dict, dict, FileServer, str]:
    """Credentials whose strongSwan end entity names a CRL distribution point, and the
    server; ``served``: ``good`` (a CRL revoking nothing of ours), ``revoked`` (revoking
    strongSwan's certificate), ``unreachable`` (the URI names a closed port) or ``file`` (a
    good CRL at a ``file://`` URI)."""
    chain, files = _ecdsa_chain(tmp_path)
    swan = _swan_side(pair)
    petrel = RIGHT if swan is LEFT else LEFT
    host = lab.left if swan is LEFT else lab.right
    folder = tmp_path / "www"
    folder.mkdir()
    server = FileServer(lab, host.ns, host.outer4, CRL_PORT, folder, delay)
    port = CRL_PORT if served != "unreachable" else CRL_PORT + 1
    uri = f"http://{host.outer4}:{port}/sub.crl"
    if served == "file":  # the namespaces share the file system
        uri = (folder / "sub.crl").as_uri()
    cert = chain.reissue(swan, "--crl", uri)
    revoked = tmp_path / "revoked.pem"
    revoked.write_bytes(
        cert if served == "revoked" else files[petrel.name][f"x509/{petrel.name}.pem"]
    )
    (folder / "sub.crl").write_bytes(
        chain.run(
            "--signcrl", "--cacert", tmp_path / "intermediate.pem",
            "--cakey", tmp_path / "intermediate.key", "--cert", revoked, "--outform", "der",
        )
    )  # fmt: skip
    # The root's CRL (revoking nothing) is at hand in x509crl/, so ``strict`` can find the
    # intermediate good too, as charon's strict would need.
    root_crl = chain.run(
        "--signcrl", "--cacert", tmp_path / "root.pem", "--cakey", tmp_path / "root.key",
        "--outform", "pem",
    )  # fmt: skip
    petrel_files = {**files[petrel.name], "x509crl/root.crl": root_crl}
    return petrel_files, {**files[swan.name], f"x509/{swan.name}.pem": cert}, server, uri


@pytest.mark.parametrize(
    ("pair", "revocation", "served"),
    [
        ("strongswan->petrel", "strict", "good"),
        ("petrel->strongswan", "strict", "good"),
        ("strongswan->petrel", "relaxed", "unreachable"),
        ("strongswan->petrel", "strict", "file"),
    ],
)
def test_crl_fetched_from_distribution_point_accepts(
    lab: Lab, tmp_path: Path, pair: str, revocation: str, served: str
) -> None:
    """A current CRL fetched from the distribution point satisfies even ``strict``;
    ``relaxed`` accepts a peer whose CRL cannot be fetched (charon: VALIDATION_FAILED is no
    constraint)."""
    petrel_files, swan_files, server, uri = _cdp_case(lab, tmp_path, pair, served)
    petrel, swan = _mixed_pair(lab, pair, petrel_files, swan_files, revocation=revocation)
    initiator = swan if pair.startswith("strongswan") else petrel
    assert initiator.initiate("net"), logs(swan, petrel)
    assert wait_for(lambda: len(child_spis(petrel)) == 1, 10), logs(swan, petrel)
    assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=2) == 2
    text = petrel.log_text()
    assert f"fetching CRL from '{uri}'" in text, text
    if served in ("good", "file"):
        assert f"fetched CRL of 'C=CH, O=Petrel Lab, CN=Lab Sub CA' from '{uri}'" in text
        assert ("GET /sub.crl" in server.log_text()) is (served == "good")
    else:
        assert f"CRL fetching from '{uri}' failed" in text


@pytest.mark.parametrize(
    ("pair", "revocation", "served", "reason"),
    [
        ("strongswan->petrel", "relaxed", "revoked", "revoked"),
        ("petrel->strongswan", "relaxed", "revoked", "revoked"),
        ("strongswan->petrel", "strict", "unreachable", "CRL failed, revocation = strict"),
        ("strongswan->petrel", "ifuri", "unreachable", "CRL failed, revocation = ifuri"),
    ],
)
def test_crl_fetched_from_distribution_point_refuses(
    lab: Lab, tmp_path: Path, pair: str, revocation: str, served: str, reason: str
) -> None:
    """Revoked by the fetched CRL; or the distribution point is unreachable and the policy
    wants a CRL: ``strict`` always, ``ifuri`` because the certificate names a point."""
    petrel_files, swan_files, _server, _uri = _cdp_case(lab, tmp_path, pair, served)
    line = _refused_both_ways(lab, pair, petrel_files, swan_files, revocation=revocation)
    assert reason in line, line


def _raw_key_conf(psk_conf: str, me: str, other: str) -> str:
    """The lab's PSK configuration with raw public keys (swanctl ``pubkeys``) instead."""
    text = psk_conf[: psk_conf.index("secrets {")]
    for side, name in (("local", me), ("remote", other)):
        text = re.sub(
            rf"{side} \{{\n\s+auth = psk\n\s+id = \S+\n\s+\}}",
            f"{side} {{\n      auth = pubkey\n      id = {name}.petrel.test\n"
            f"      pubkeys = {name}.pub\n    }}",
            text,
        )
    return text


def _raw_keys(tmp_path: Path) -> dict[str, dict[str, bytes]]:
    """An Ed25519 key per peer (strongSwan's pki); each peer holds its private key and both
    public keys in ``pubkey/``."""
    chain = Chain(STRONGSWAN_PKI, tmp_path, ("ed25519", None), ("ed25519", None), ("ed25519", None))
    keys = {name: chain.key(name, ("ed25519", None)) for name in ("left", "right")}
    pubs = {name: chain.run("--pub", "--in", key, "--outform", "pem") for name, key in keys.items()}
    return {
        name: {
            f"private/{name}.key": key.read_bytes(),
            **{f"pubkey/{n}.pub": pubs[n] for n in pubs},
        }
        for name, key in keys.items()
    }


def test_raw_public_keys_in_cert_payloads_between_petrels(lab: Lab, tmp_path: Path) -> None:
    """RFC 7670: each Petrel asks for raw keys (CERTREQ of encoding 15) and sends its own in a
    CERT payload; both authenticate with the key trusted for the other's ID."""
    l_psk, r_psk = strongswan_pair_confs(lab)
    files = _raw_keys(tmp_path)
    peers = []
    for host, me, other, psk in (
        (lab.right, "right", "left", r_psk),
        (lab.left, "left", "right", l_psk),
    ):
        peer = PetrelPeer(lab, host.ns, me, _raw_key_conf(psk, me, other))
        install(peer.dir, files[me])
        peers.append(peer.start())
    right, left = peers
    assert left.initiate("net"), logs(left, right)
    assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=2) == 2
    assert re.search(r"sending IKE_AUTH request 1 \[ IDi CERT [^]]*CERTREQ", left.log_text())
    assert re.search(r"sending IKE_AUTH response 1 \[ IDr CERT AUTH", right.log_text())
    for peer in (left, right):
        assert "trusted public key for" in peer.log_text()


@pytest.mark.parametrize("pair", ["petrel->strongswan", "strongswan->petrel"])
def test_raw_public_keys_with_strongswan(lab: Lab, tmp_path: Path, pair: str) -> None:
    """strongSwan 5.9.8 has no RFC 7670 (its CERT encodings end at 14): it ignores Petrel's
    CERTREQ for raw keys ("not supported - ignored") and sends none, so Petrel sends no raw
    key in CERT either; both use the ``pubkeys`` they trust."""
    files = _raw_keys(tmp_path)
    l_kind, r_kind = pair.split("->")
    encap = ["encap = yes"] if l_kind == "petrel" else []
    l_psk, _ = strongswan_pair_confs(lab, conn_extra=encap)
    _, r_psk = strongswan_pair_confs(lab)
    started: list[PetrelPeer | StrongSwan] = []
    for kind, host, me, other, psk in (
        (r_kind, lab.right, "right", "left", r_psk),
        (l_kind, lab.left, "left", "right", l_psk),
    ):
        text = _raw_key_conf(psk, me, other)
        if kind == "petrel":
            peer = PetrelPeer(lab, host.ns, me, text)
            install(peer.dir, files[me])
            started.append(peer.start())
        else:
            swan = StrongSwan(lab, host.ns, me, text).start()
            install(swan.dir, files[me])
            swan.load()
            started.append(swan)
    right, left = started
    assert left.initiate("net"), logs(left, right)
    petrel = left if isinstance(left, PetrelPeer) else right
    swan = right if isinstance(right, StrongSwan) else left
    assert wait_for(lambda: len(child_spis(petrel)) == 1, 10), logs(left, right)
    assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=2) == 2
    assert "not supported - ignored" in swan.log_text()
    sent = re.findall(r"sending IKE_AUTH \w+ 1 \[ ([^]]*) \]", petrel.log_text())
    assert sent and "CERT" not in sent[0].split(), sent


@pytest.mark.parametrize(
    ("revocation", "accepted"), [("strict", False), ("ifuri", False), ("relaxed", True)]
)
def test_charon_applies_revocation_as_petrel(
    lab: Lab, tmp_path: Path, revocation: str, accepted: bool
) -> None:
    """The reference for the policies above: charon 5.9.8 checking a Petrel certificate
    whose distribution point cannot be fetched (charon's lab build loads no fetcher plugin,
    so every fetch fails, as an unreachable point does) accepts and refuses exactly as
    Petrel does in test_crl_fetched_from_distribution_point_*."""
    chain, files = _ecdsa_chain(tmp_path)
    uri = f"http://{lab.right.outer4}:{CRL_PORT + 1}/sub.crl"
    cert = chain.reissue(LEFT, "--crl", uri)
    petrel_files = {**files["left"], "x509/left.pem": cert}
    petrel, swan = _mixed_pair(
        lab, "petrel->strongswan", petrel_files, files["right"], swan_revocation=revocation
    )
    assert petrel.initiate("net", timeout=10) is accepted, logs(swan, petrel)
    text = swan.log_text()
    assert f"fetching crl from '{uri}'" in text and "crl fetching failed" in text, text
    if not accepted:
        assert "constraint check failed: RULE_CRL_VALIDATION is FAILED" in text, text
        assert "peer rejected our authentication" in petrel.log_text()


def test_slow_distribution_point_blocks_nothing(lab: Lab, tmp_path: Path) -> None:
    """The CRL server answers after 6 s: charon retransmits its IKE_AUTH request meanwhile
    (after 4 s); Petrel drops the retransmission without a second fetch, keeps serving its
    control socket, and answers once the CRL has arrived."""
    pair = "strongswan->petrel"
    petrel_files, swan_files, server, uri = _cdp_case(lab, tmp_path, pair, "good", delay=6.0)
    petrel, swan = _mixed_pair(lab, pair, petrel_files, swan_files, revocation="strict")
    outcome: list[bool] = []
    initiating = threading.Thread(target=lambda: outcome.append(swan.initiate("net")))
    initiating.start()
    try:
        assert wait_for(lambda: "fetching CRL" in petrel.log_text(), 10), logs(swan, petrel)
        started = time.monotonic()
        listed = petrel.cli("list-sas", timeout=10)
        assert listed.returncode == 0 and time.monotonic() - started < 3  # the loop is free
        assert wait_for(lambda: "retransmit 1 of request with message ID 1" in swan.log_text(), 10)
    finally:
        initiating.join(60)
    assert outcome == [True], logs(swan, petrel)
    assert wait_for(lambda: len(child_spis(petrel)) == 1, 10), logs(swan, petrel)
    text = petrel.log_text()
    assert text.count(f"fetching CRL from '{uri}'") == 1
    assert "dropped: retransmitted request awaiting a CRL fetch" in text
    assert server.log_text().count("GET /sub.crl") == 1


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
