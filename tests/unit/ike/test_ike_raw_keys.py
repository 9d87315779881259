"""RFC 7670 raw public keys in CERT payloads (encoding 15, SubjectPublicKeyInfo): a peer that
trusts a raw key for the other (``remote.pubkeys``) announces it with a CERTREQ of encoding
15 and an empty Certification Authority field; only then does the other send its raw key in
a CERT payload. A received raw key is used only if it is one trusted for the sender's ID."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from test_ike_engine import of_type
from test_ike_pubkey_auth import engines_from, establish, paired, put, side

from petrel.crypto.keys import PrivateKey, generate_private_key
from petrel.ike import events as ev

TS = {
    "left": ("192.0.2.1", "192.0.2.2", ("198.51.100.1/32", "203.0.113.1/32")),
    "right": ("192.0.2.2", "192.0.2.1", ("203.0.113.1/32", "198.51.100.1/32")),
}


def raw_pair(
    tmp: Path,
    keys: dict[str, PrivateKey],
    trusted: dict[str, PrivateKey],
    extra: dict[str, str] | None = None,
):  # type: ignore[no-untyped-def]
    """Each side holds its key (``pubkey/own.pem``) and trusts ``trusted[name]`` for the
    other side (``pubkey/peer.pem``)."""
    texts = []
    for name, other in (("left", "right"), ("right", "left")):
        put(tmp / name, "private", "key.pem", keys[name].pem())
        put(tmp / name, "pubkey", "own.pem", keys[name].public.pem())
        put(tmp / name, "pubkey", "peer.pem", trusted[name].public.pem())
        me, peer, ts = TS[name]
        texts.append(
            side(
                tmp / name, me, peer,
                f"      auth = pubkey\n      id = {name}.petrel.test\n      pubkeys = own.pem",
                f"      auth = pubkey\n      id = {other}.petrel.test\n      pubkeys = peer.pem",
                ts, (extra or {}).get(name, ""),
            )
        )  # fmt: skip
    return engines_from(tmp, *texts)


def messages(text: str, what: str) -> list[str]:
    return re.findall(rf"{what} \d+ \[ ([^]]*) \]", text)


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa"])
def test_raw_keys_in_cert_payloads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    caplog.set_level(logging.DEBUG, "petrel.ike")
    keys = {n: generate_private_key(kind, 256 if kind == "ecdsa" else None) for n in TS}
    left, right = raw_pair(tmp_path, keys, {"left": keys["right"], "right": keys["left"]})
    l_events, r_events = establish(left, right)
    assert of_type(l_events, ev.IkeSaUp) and of_type(r_events, ev.IkeSaUp)
    assert paired(left, right)
    (init_resp,) = messages(caplog.text, "sending IKE_SA_INIT response")
    assert "CERTREQ" in init_resp.split()
    (auth_req,) = messages(caplog.text, "sending IKE_AUTH request")
    (auth_resp,) = messages(caplog.text, "sending IKE_AUTH response")
    assert "CERT" in auth_req.split() and "CERTREQ" in auth_req.split()
    assert "CERT" in auth_resp.split()


def test_no_raw_key_sent_unless_asked(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``send_certreq = no`` on the responder: no CERTREQ, so the initiator sends no CERT;
    the responder still authenticates it with the key it trusts."""
    caplog.set_level(logging.DEBUG, "petrel.ike")
    keys = {n: generate_private_key("ed25519") for n in TS}
    left, right = raw_pair(
        tmp_path,
        keys,
        {"left": keys["right"], "right": keys["left"]},
        {"right": "send_certreq = no"},
    )
    l_events, _ = establish(left, right)
    assert of_type(l_events, ev.IkeSaUp)
    (auth_req,) = messages(caplog.text, "sending IKE_AUTH request")
    assert "CERT" not in auth_req.split()
    (auth_resp,) = messages(caplog.text, "sending IKE_AUTH response")
    assert "CERT" in auth_resp.split()  # left asked for raw keys: right sends its own


def test_untrusted_raw_key_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The initiator's raw key is not the one the responder trusts for its ID."""
    keys = {n: generate_private_key("ed25519") for n in TS}
    stranger = generate_private_key("ed25519")
    left, right = raw_pair(tmp_path, keys, {"left": keys["right"], "right": stranger})
    l_events, r_events = establish(left, right)
    assert not of_type(l_events, ev.IkeSaUp) and not of_type(r_events, ev.IkeSaUp)
    failed = of_type(l_events, ev.NegotiationFailed)
    assert any(int(f.notify) == 24 for f in failed)
    assert "the raw public key 'left.petrel.test' sent is not trusted for it" in caplog.text
