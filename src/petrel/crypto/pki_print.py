"""Human-readable descriptions of certificates, CRLs and keys, laid out like ``pki --print``."""

from __future__ import annotations

from datetime import UTC, datetime

from petrel.crypto.keys import PrivateKey, PublicKey
from petrel.crypto.x509 import Certificate, Crl

__all__ = ["describe", "hex_colon"]

_FLAG_NAMES = {
    "1.3.6.1.5.5.7.3.1": "serverAuth",
    "1.3.6.1.5.5.7.3.2": "clientAuth",
    "1.3.6.1.5.5.7.3.9": "ocspSigning",
    "1.3.6.1.5.5.7.3.17": "ipsecIKE",
    "1.3.6.1.5.5.8.2.2": "ikeIntermediate",
    "1.3.6.1.4.1.311.20.2.2": "msSmartcardLogon",
    "2.5.29.37.0": "anyExtendedKeyUsage",
}


def hex_colon(data: bytes) -> str:
    return ":".join(f"{b:02x}" for b in data)


def _serial(serial: int) -> str:
    return hex_colon(serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big"))


def _when(moment: datetime, now: datetime, after: bool) -> str:
    text = moment.strftime("%b %d %H:%M:%S %Y")
    if after:
        return f"{text}, {'ok' if moment >= now else 'expired'}"
    return f"{text}, {'ok' if moment <= now else 'not valid yet'}"


def _key_lines(key: PublicKey) -> list[str]:
    return [
        f"  pubkey:    {key.key_type.value.upper()} {key.bits} bits",
        f"  keyid:     {hex_colon(key.spki_sha1)}",
        f"  subjkey:   {hex_colon(key.pubkey_sha1)}",
    ]


def _certificate(cert: Certificate, now: datetime) -> list[str]:
    lines = [
        f'  subject:  "{cert.subject_str}"',
        f'  issuer:   "{cert.issuer_str}"',
        f"  validity:  not before {_when(cert.not_before, now, False)}",
        f"             not after  {_when(cert.not_after, now, True)}",
        f"  serial:    {_serial(cert.serial)}",
    ]
    if cert.alt_names:
        lines.append("  altNames:  " + ", ".join(str(n) for n in cert.alt_names))
    flags = []
    if cert.is_ca:
        flags.append("CA")
    if cert.key_usage and "cRLSign" in cert.key_usage:
        flags.append("CRLSign")
    flags += [_FLAG_NAMES.get(o, o) for o in sorted(cert.ext_key_usage or ())]
    if cert.subject.equals(cert.issuer):
        flags.append("self-signed")
    lines.append("  flags:     " + " ".join(flags))
    if cert.path_len is not None:
        lines.append(f"  pathlen:   {cert.path_len}")
    if cert.key_usage is not None:
        lines.append("  keyUsage:  " + " ".join(sorted(cert.key_usage)))
    if cert.crl_uris:
        lines.append("  CRL URIs:  " + " ".join(cert.crl_uris))
    if cert.authority_key_id:
        lines.append(f"  authkeyId: {hex_colon(cert.authority_key_id)}")
    if cert.subject_key_id:
        lines.append(f"  subjkeyId: {hex_colon(cert.subject_key_id)}")
    lines.append(f"  signature: {cert.scheme or cert.scheme_error}")
    return lines + _key_lines(cert.public_key)


def _crl(crl: Crl, now: datetime) -> list[str]:
    lines = [
        f'  issuer:   "{crl.issuer}"',
        f"  update:    this on {_when(crl.this_update, now, False)}",
    ]
    if crl.next_update is not None:
        lines.append(f"             next on {_when(crl.next_update, now, True)}")
    if crl.number is not None:
        lines.append(f"  serial:    {_serial(crl.number)}")
    if crl.authority_key_id:
        lines.append(f"  authKeyId: {hex_colon(crl.authority_key_id)}")
    lines.append(f"  {len(crl.revoked)} revoked certificate{'s' if len(crl.revoked) != 1 else ''}:")
    for entry in crl.revoked:
        reason = f", {entry.reason}" if entry.reason else ""
        lines.append(f"    {_serial(entry.serial)}: {entry.date:%b %d %H:%M:%S %Y}{reason}")
    return lines


def describe(item: Certificate | Crl | PublicKey | PrivateKey, now: datetime | None = None) -> str:
    """The ``pki --print`` style text of a certificate, CRL or key."""
    now = now or datetime.now(UTC)
    if isinstance(item, Certificate):
        lines = _certificate(item, now)
    elif isinstance(item, Crl):
        lines = _crl(item, now)
    elif isinstance(item, PrivateKey):
        lines = ["  privkey:   " + item.public.describe(), *_key_lines(item.public)[1:]]
    else:
        lines = _key_lines(item)
    return "\n".join(lines) + "\n"
