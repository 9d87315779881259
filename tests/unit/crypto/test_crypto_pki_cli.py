"""``petrel pki`` commands end to end in tmp_path, and strongSwan's ``pki`` accepting what
petrel makes (``pki --verify``, ``pki --print``) and petrel using keys ``pki`` made."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from crypto_pki_helpers import need_pki, pki

from petrel.crypto.keys import KeyType, load_private_key, load_public_key
from petrel.crypto.validation import validate_path
from petrel.crypto.x509 import load_certificate, load_crl
from petrel.pki_cli import add_parser, run


def _run(capsysbinary: pytest.CaptureFixture[bytes], *argv: str | Path) -> tuple[int, bytes]:
    code = run([str(a) for a in argv])
    out = capsysbinary.readouterr()
    return code, out.out + out.err


def _make(capsysbinary: pytest.CaptureFixture[bytes], path: Path, *argv: str | Path) -> Path:
    code, out = _run(capsysbinary, *argv)
    assert code == 0, out
    path.write_bytes(out)
    return path


def _petrel_chain(
    tmp: Path, cap: pytest.CaptureFixture[bytes], kinds: tuple[str, str, str], pss: bool = False
) -> dict[str, Path]:
    """Root, intermediate and end entity made with ``petrel pki`` commands only."""
    sizes = {"rsa": ["--size", "3072"], "ecdsa": ["--size", "256"]}
    files: dict[str, Path] = {}
    for name, kind in zip(("ca", "im", "ee"), kinds, strict=True):
        argv = ["--gen", "--type", kind, *sizes.get(kind, []), "--outform", "pem"]
        files[f"{name}.key"] = _make(cap, tmp / f"{name}.key", *argv)
    padding = ["--rsa-padding", "pss"] if pss else []
    files["ca.pem"] = _make(
        cap,
        tmp / "ca.pem",
        "--self",
        "--in",
        files["ca.key"],
        "--ca",
        "--outform",
        "pem",
        "--dn",
        "C=CH, O=Petrel, CN=Petrel Root CA",
        *padding,
    )
    files["im.pub"] = _make(cap, tmp / "im.pub", "--pub", "--in", files["im.key"])
    files["im.pem"] = _make(
        cap,
        tmp / "im.pem",
        "--issue",
        "--in",
        files["im.pub"],
        "--cacert",
        files["ca.pem"],
        "--cakey",
        files["ca.key"],
        "--dn",
        "C=CH, O=Petrel, CN=Petrel Sub CA",
        "--ca",
        "--pathlen",
        "0",
        "--outform",
        "pem",
        *padding,
    )
    files["ee.der"] = _make(
        cap,
        tmp / "ee.der",
        "--issue",
        "--in",
        files["ee.key"],
        "--cacert",
        files["im.pem"],
        "--cakey",
        files["im.key"],
        "--dn",
        "C=CH, O=Petrel, CN=moon.petrel.test",
        "--san",
        "moon.petrel.test",
        "--san",
        "moon@petrel.test",
        "--san",
        "192.0.2.1",
        "--flag",
        "serverAuth",
        "--crl",
        "http://crl.petrel.test/sub.crl",
        *padding,
    )
    return files


def test_gen_pub_print_keyid(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    for kind, size, bits in (("rsa", "2048", 2048), ("ecdsa", "521", 521), ("ed448", "", 456)):
        argv = ["--gen", "--type", kind] + (["--size", size] if size else [])
        code, der = _run(capsysbinary, *argv)
        assert code == 0
        key = load_private_key(der)
        assert (key.key_type, key.bits) == (KeyType(kind), bits)
        path = tmp_path / f"{kind}.der"
        path.write_bytes(der)
        code, out = _run(capsysbinary, "--pub", "--in", path, "--outform", "pem")
        assert code == 0 and load_public_key(out) == key.public
        code, out = _run(capsysbinary, "--keyid", "--in", path)
        assert key.public.spki_sha1.hex(":").encode() in out
        code, out = _run(capsysbinary, "--print", "--in", path)
        assert code == 0 and f"{kind.upper()} {bits} bits".encode() in out


def test_chain_made_by_petrel_pki(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    files = _petrel_chain(tmp_path, capsysbinary, ("ecdsa", "rsa", "ed25519"), pss=True)
    ee = load_certificate(files["ee.der"].read_bytes())
    assert ee.subject_str == "C=CH, O=Petrel, CN=moon.petrel.test"
    assert ee.scheme is not None and ee.scheme.name == "rsa/pss-sha256"
    ca, im = (load_certificate(files[n].read_bytes()) for n in ("ca.pem", "im.pem"))
    assert im.path_len == 0 and ca.is_ca
    assert validate_path(ee, [im], [ca], now=ee.not_before).chain == (ee, im, ca)
    code, out = _run(
        capsysbinary,
        "--verify",
        "--in",
        files["ee.der"],
        "--cacert",
        files["ca.pem"],
        "--cacert",
        files["im.pem"],
    )
    assert code == 0 and b"certificate trusted" in out
    code, out = _run(capsysbinary, "--print", "--in", files["ee.der"])
    assert b"altNames:  moon.petrel.test, moon@petrel.test, 192.0.2.1" in out
    assert b"flags:     serverAuth" in out and b"CRL URIs:  http://crl.petrel.test/sub.crl" in out
    crl = _make(
        capsysbinary,
        tmp_path / "sub.crl",
        "--signcrl",
        "--cacert",
        files["im.pem"],
        "--cakey",
        files["im.key"],
        "--cert",
        files["ee.der"],
        "--reason",
        "key-compromise",
    )
    assert load_crl(crl.read_bytes()).entry(ee.serial) is not None
    code, out = _run(
        capsysbinary,
        "--verify",
        "--in",
        files["ee.der"],
        "--cacert",
        files["im.pem"],
        "--crl",
        crl,
    )
    assert code == 1 and b"revoked" in out


def test_usage_and_file_errors(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out = _run(capsysbinary, "--self", "--in", tmp_path / "missing.key")
    assert code == 2 and b"--dn" in out
    code, out = _run(capsysbinary, "--self", "--in", tmp_path / "missing.key", "--dn", "CN=x")
    assert code == 1 and b"missing.key" in out
    junk = tmp_path / "junk"
    junk.write_bytes(b"junk")
    code, out = _run(capsysbinary, "--print", "--in", junk)
    assert code == 1 and b"not a certificate" in out
    key = _make(capsysbinary, tmp_path / "k", "--gen", "--type", "ed25519")
    code, out = _run(capsysbinary, "--self", "--in", key, "--dn", "XX=1")
    assert code == 1 and b"unknown RDN type" in out
    code, out = _run(capsysbinary, "--self", "--in", key, "--dn", "CN=x", "--flag", "bogus")
    assert code == 1 and b"bogus" in out
    code, out = _run(capsysbinary, "--issue", "--in", key, "--dn", "CN=x", "--cakey", key)
    assert code == 2 and b"--cacert" in out


def test_add_parser_hooks_into_a_cli() -> None:
    parser = argparse.ArgumentParser(prog="petrel")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["pki", "--gen", "--type", "ecdsa", "--size", "256"])
    assert args.command == "pki" and args.pki_command == "gen" and callable(args.func)


@pytest.mark.parametrize(
    ("kinds", "pss"),
    [
        (("ecdsa", "rsa", "ed25519"), False),
        (("rsa", "rsa", "ecdsa"), True),
        (("ed448", "ecdsa", "ed448"), False),
    ],
)
def test_strongswan_pki_verifies_petrel_chains(
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
    kinds: tuple[str, str, str],
    pss: bool,
) -> None:
    need_pki()
    files = _petrel_chain(tmp_path, capsysbinary, kinds, pss)
    out = pki(
        "--verify",
        "--in",
        files["ee.der"],
        "--cacert",
        files["im.pem"],
        "--cacert",
        files["ca.pem"],
    )
    assert b"certificate trusted, lifetimes valid" in out
    printed = pki("--print", "--in", files["ee.der"]).decode()
    assert 'subject:  "C=CH, O=Petrel, CN=moon.petrel.test"' in printed
    assert "moon.petrel.test, moon@petrel.test, 192.0.2.1" in printed
    ee = load_certificate(files["ee.der"].read_bytes())
    # strongSwan's keyid (SHA-1 of the SubjectPublicKeyInfo) is ours for CERTREQ.
    assert f"keyid:     {ee.keyid.hex(':')}" in printed
    # A CRL made by petrel revokes the certificate for strongSwan too.
    crl = _make(
        capsysbinary,
        tmp_path / "sub.crl",
        "--signcrl",
        "--cacert",
        files["im.pem"],
        "--cakey",
        files["im.key"],
        "--cert",
        files["ee.der"],
        "--reason",
        "superseded",
    )
    result = pki(
        "--verify",
        "--in",
        files["ee.der"],
        "--cacert",
        files["im.pem"],
        "--cacert",
        files["ca.pem"],
        "--crl",
        crl,
        "--online",
        check=False,
    )
    assert b"certificate trusted" not in result


def test_petrel_issues_with_keys_strongswan_made(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    need_pki()
    ca_key = tmp_path / "ca.key"
    ca_key.write_bytes(pki("--gen", "--type", "rsa", "--size", "3072", "--outform", "pem"))
    assert b"BEGIN RSA PRIVATE KEY" in ca_key.read_bytes()  # PKCS#1
    ca = tmp_path / "ca.pem"
    ca.write_bytes(
        pki(
            "--self",
            "--in",
            ca_key,
            "--dn",
            "C=CH, O=strongSwan, CN=SW Root",
            "--ca",
            "--outform",
            "pem",
        )
    )
    ee_key = tmp_path / "ee.key"
    ee_key.write_bytes(pki("--gen", "--type", "ecdsa", "--size", "384"))  # SEC1 DER
    ee = _make(
        capsysbinary,
        tmp_path / "ee.der",
        "--issue",
        "--in",
        ee_key,
        "--cacert",
        ca,
        "--cakey",
        ca_key,
        "--dn",
        "C=CH, O=strongSwan, CN=carol@strongswan.org",
        "--san",
        "carol@strongswan.org",
    )
    out = pki("--verify", "--in", ee, "--cacert", ca)
    assert b"certificate trusted, lifetimes valid" in out


def test_serial_lifetime_and_digest(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    key = _make(capsysbinary, tmp_path / "k", "--gen", "--type", "ecdsa", "--size", "256")
    code, out = _run(
        capsysbinary,
        "--self",
        "--in",
        key,
        "--dn",
        "CN=x",
        "--serial",
        "01:02",
        "--lifetime",
        "10",
        "--digest",
        "sha512",
    )
    assert code == 0
    cert = load_certificate(out)
    assert cert.serial == 0x0102
    assert (cert.not_after - cert.not_before).days == 10
    assert cert.scheme is not None and cert.scheme.name == "ecdsa-sha512"
