"""``petrel pki``: keys, certificates and CRLs, with strongSwan ``pki``'s command flags.

    petrel pki --gen --type rsa|ecdsa|ed25519|ed448 [--size N] [--outform der|pem]
    petrel pki --pub --in KEY|CERT
    petrel pki --self --in KEY --dn DN [--ca] [--pathlen N] [--san SAN]… [--flag F]…
    petrel pki --issue --in PUBKEY --cacert CERT --cakey KEY --dn DN [--san SAN]…
               [--ca] [--pathlen N] [--flag serverAuth|clientAuth|crlSign|…]… [--crl URI]…
    petrel pki --signcrl --cacert CERT --cakey KEY [--cert FILE|--serial HEX]… [--reason R]
    petrel pki --print --in FILE
    petrel pki --verify --in CERT --cacert CA… [--crl CRL]… [--revocation strict|ifuri|relaxed]
    petrel pki --keyid --in FILE

Output goes to stdout (DER by default, as ``pki``). Exit status 0 on success, 1 when a file
cannot be used or a certificate does not verify, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from petrel.crypto import pki_ops
from petrel.crypto.errors import CryptoError
from petrel.crypto.keys import PrivateKey, PublicKey, load_private_key, load_public_key
from petrel.crypto.pki_errors import CredentialError
from petrel.crypto.pki_print import describe, hex_colon
from petrel.crypto.validation import PathValidationError, validate_path
from petrel.crypto.x509 import Certificate, load_certificate, load_certificates, load_crl
from petrel.wire.registry import HashAlgorithm

__all__ = ["add_parser", "main"]

_COMMANDS = ("gen", "pub", "self", "issue", "signcrl", "print", "verify", "keyid")
_DIGESTS = {
    "sha1": HashAlgorithm.SHA1,
    "sha256": HashAlgorithm.SHA2_256,
    "sha384": HashAlgorithm.SHA2_384,
    "sha512": HashAlgorithm.SHA2_512,
}


class _Usage(Exception):
    pass


def _options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    for name in _COMMANDS:
        group.add_argument(f"--{name}", dest="pki_command", action="store_const", const=name)
    add = parser.add_argument
    add("--type", "-t", help="key type for --gen: rsa, ecdsa, ed25519, ed448")
    add("--size", "-s", type=int, help="key size in bits (rsa: 2048+, ecdsa: 256/384/521)")
    add("--outform", "-f", choices=("der", "pem"), default="der", help="output encoding")
    add("--in", "-i", dest="infile", help="input file (default: stdin)")
    add("--dn", "-d", help="subject distinguished name, e.g. 'C=CH, O=Org, CN=host'")
    add("--san", "-a", action="append", default=[], help="subjectAltName (repeatable)")
    add("--ca", "-b", action="store_true", help="include basicConstraints CA:TRUE")
    add("--pathlen", "-p", type=int, help="pathLenConstraint of a CA certificate")
    add("--flag", "-e", action="append", default=[], help="serverAuth, clientAuth, crlSign, …")
    add("--crl", "-u", action="append", default=[], help="--issue: CRL URI; --verify: CRL file")
    add("--cacert", "-c", action="append", default=[], help="CA certificate file")
    add("--cakey", "-k", help="CA private key file")
    add("--lifetime", "-l", type=int, help="days of validity (cert 1095, CRL 15)")
    add("--serial", action="append", default=[], help="serial (hex): of a new cert or to revoke")
    add("--cert", "-z", action="append", default=[], help="--signcrl: certificate to revoke")
    add("--reason", "-r", choices=sorted(pki_ops.REASONS), help="--signcrl revocation reason")
    add("--digest", "-g", choices=sorted(_DIGESTS), help="signature hash (default by key)")
    add("--rsa-padding", "-R", choices=("pkcs1", "pss"), default="pkcs1")
    add("--critical", "-X", action="append", default=[], help="opaque critical extension OID")
    add("--revocation", choices=("strict", "ifuri", "relaxed"), default="relaxed")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``pki`` to a ``petrel`` subparsers object; its func is :func:`main`."""
    parser = subparsers.add_parser(
        "pki",
        help="keys, certificates and CRLs (strongSwan pki style)",
        description="Keys, certificates and CRLs, with strongSwan pki's command flags.",
    )
    _options(parser)
    parser.set_defaults(func=main)
    return parser


def _read(path: str | None) -> bytes:
    if path is None or path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _need(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        if not getattr(args, name):
            raise _Usage(f"--{args.pki_command} needs --{name.replace('infile', 'in')}")


def _public_input(data: bytes) -> PublicKey:
    """A public key, a private key's public half, or a certificate's key."""
    for loader in (load_public_key, lambda d: load_private_key(d).public):
        try:
            return loader(data)
        except CredentialError:
            pass
    return load_certificate(data).public_key


def _cert_out(cert: Certificate, outform: str) -> bytes:
    return pki_ops.pem(cert) if outform == "pem" else cert.der


def _spec(args: argparse.Namespace) -> pki_ops.CertSpec:
    return pki_ops.CertSpec(
        sans=tuple(args.san),
        ca=args.ca,
        path_len=args.pathlen,
        flags=tuple(args.flag),
        crl_uris=tuple(args.crl),
        critical=tuple(args.critical),
        serial=int(args.serial[0].replace(":", ""), 16) if args.serial else None,
        lifetime_days=args.lifetime,
        digest=_DIGESTS[args.digest] if args.digest else None,
        pss=args.rsa_padding == "pss",
    )


def _ca(args: argparse.Namespace) -> tuple[Certificate, PrivateKey]:
    _need(args, "cakey")
    if len(args.cacert) != 1:
        raise _Usage(f"--{args.pki_command} needs exactly one --cacert")
    return load_certificate(_read(args.cacert[0])), load_private_key(_read(args.cakey))


def _gen(args: argparse.Namespace) -> int:
    key = pki_ops.generate_private_key(args.type or "rsa", args.size)
    _write(key.pem() if args.outform == "pem" else key.der())
    return 0


def _pub(args: argparse.Namespace) -> int:
    key = _public_input(_read(args.infile))
    _write(key.pem() if args.outform == "pem" else key.spki)
    return 0


def _self(args: argparse.Namespace) -> int:
    _need(args, "dn")
    key = load_private_key(_read(args.infile))
    _write(_cert_out(pki_ops.self_signed(key, args.dn, _spec(args)), args.outform))
    return 0


def _issue(args: argparse.Namespace) -> int:
    _need(args, "dn")
    ca_cert, ca_key = _ca(args)
    public = _public_input(_read(args.infile))
    cert = pki_ops.issue(public, args.dn, ca_cert, ca_key, _spec(args))
    _write(_cert_out(cert, args.outform))
    return 0


def _signcrl(args: argparse.Namespace) -> int:
    ca_cert, ca_key = _ca(args)
    serials = [load_certificate(_read(path)).serial for path in args.cert]
    serials += [int(s.replace(":", ""), 16) for s in args.serial]
    revoked = [pki_ops.Revoke(serial, reason=args.reason) for serial in serials]
    crl = pki_ops.sign_crl(
        ca_cert,
        ca_key,
        revoked,
        lifetime_days=args.lifetime or 15,
        digest=_DIGESTS[args.digest] if args.digest else None,
        pss=args.rsa_padding == "pss",
    )
    _write(pki_ops.pem(crl) if args.outform == "pem" else crl.der)
    return 0


def _load_any(data: bytes) -> Certificate | PublicKey | PrivateKey | Any:
    for loader in (load_certificate, load_crl, load_public_key, load_private_key):
        try:
            return loader(data)
        except CredentialError:
            continue
    raise CredentialError("not a certificate, CRL or key in PEM or DER form")


def _print(args: argparse.Namespace) -> int:
    sys.stdout.write(describe(_load_any(_read(args.infile))))
    return 0


def _keyid(args: argparse.Namespace) -> int:
    item = _load_any(_read(args.infile))
    key = item.public_key if isinstance(item, Certificate) else item
    key = key.public if isinstance(key, PrivateKey) else key
    if not isinstance(key, PublicKey):
        raise CredentialError("no public key in this file")
    sys.stdout.write(f"subjkey (SHA1): {hex_colon(key.pubkey_sha1)}\n")
    sys.stdout.write(f"keyid (SHA1):   {hex_colon(key.spki_sha1)}\n")
    return 0


def _verify(args: argparse.Namespace) -> int:
    if not args.cacert:
        raise _Usage("--verify needs at least one --cacert")
    cert = load_certificate(_read(args.infile))
    anchors = [c for path in args.cacert for c in load_certificates(_read(path))]
    crls = [load_crl(_read(path)) for path in args.crl]
    try:
        path = validate_path(
            cert, [], anchors, now=datetime.now(UTC), crls=crls, revocation=args.revocation
        )
    except PathValidationError as exc:
        sys.stdout.write(f"certificate untrusted: {exc}\n")
        return 1
    for item in path.chain[1:]:
        sys.stdout.write(f'  using trusted certificate "{item.subject_str}"\n')
    sys.stdout.write("certificate trusted, lifetimes valid\n")
    return 0


_HANDLERS = {
    "gen": _gen,
    "pub": _pub,
    "self": _self,
    "issue": _issue,
    "signcrl": _signcrl,
    "print": _print,
    "verify": _verify,
    "keyid": _keyid,
}


def main(args: argparse.Namespace) -> int:
    """Run one ``petrel pki`` command; the exit status."""
    try:
        return _HANDLERS[args.pki_command](args)
    except _Usage as exc:
        print(f"petrel pki: {exc}", file=sys.stderr)
        return 2
    except (CryptoError, OSError, ValueError) as exc:
        print(f"petrel pki: {exc}", file=sys.stderr)
        return 1


def run(argv: list[str]) -> int:
    """Parse ``argv`` (the words after ``petrel pki``) and run it; for tests and scripts."""
    parser = argparse.ArgumentParser(prog="petrel pki")
    _options(parser)
    return main(parser.parse_args(argv))
