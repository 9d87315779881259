"""VICI configuration messages → Petrel's model (``load-conn``, ``load-shared``, ``load-cert``,
``load-key``), as charon's vici plugin reads them.

A ``load-conn`` message tree is turned into the settings tree (:class:`Section`/:class:`Setting`)
that the swanctl.conf reader builds from a file, and that reader's own connection builder makes
the :class:`Connection`: a connection loaded at run time is validated, defaulted and refused
exactly as the same connection in swanctl.conf.  Only the shapes differ: VICI sends lists where
swanctl.conf has comma-separated values (joined back here), and ``certs``/``cacerts``/``pubkeys``
as the files' contents (PEM or DER) where swanctl.conf names files.

Errors are :class:`ViciConfigError` carrying charon's reply text where charon has one
(``unknown option: X, config discarded``, ``invalid section: X``), else the swanctl reader's
message naming the setting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from petrel.credentials.identities import parse_identity
from petrel.crypto.keys import KeyType, PrivateKey, PublicKey, load_private_key, load_public_key
from petrel.crypto.pki_errors import CredentialError
from petrel.crypto.x509 import Certificate, Crl, load_certificates, load_crl
from petrel.policy.connection import Connection, SharedSecret
from petrel.policy.identity import Identity, UnsupportedIdentity
from petrel.policy.pools import PoolConfig

from . import swanctl
from .credentials import parse_named
from .errors import ConfigError
from .settings import Section, Setting

__all__ = [
    "CertificateLoad",
    "ViciConfigError",
    "certificate_from_vici",
    "connection_from_vici",
    "connections_from_vici",
    "private_key_from_vici",
    "shared_secret_from_vici",
]

SOURCE = "<vici>"
_BLOB_KEYS = ("certs", "cacerts", "pubkeys")


class ViciConfigError(ValueError):
    """A VICI configuration message Petrel refuses; ``str()`` is the reply's ``errmsg``."""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _raw(value: Any) -> bytes:
    """The bytes of a decoded VICI value (see :func:`petrel.control.vici.value_bytes`)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return _text(value).encode("utf-8", "surrogateescape")


# -- load-conn ----------------------------------------------------------------------------------


def _to_section(
    name: str, tree: Mapping[str, Any], blobs: dict[str, dict[str, list[bytes]]]
) -> Section:
    """The settings tree of one VICI section; ``certs``/``cacerts``/``pubkeys`` of a
    ``local*``/``remote*`` section go to ``blobs[section][key]`` instead."""
    section = Section(name, SOURCE, 0)
    for key, value in tree.items():
        if isinstance(value, Mapping):
            section.sections[key] = _to_section(key, value, blobs)
        elif key in _BLOB_KEYS and name.startswith(("local", "remote")):
            items = value if isinstance(value, list) else [value]
            blobs.setdefault(name, {})[key] = [_raw(item) for item in items]
        elif isinstance(value, list):
            section.settings[key] = Setting(key, ", ".join(_text(v) for v in value), SOURCE, 0)
        else:
            section.settings[key] = Setting(key, _text(value), SOURCE, 0)
    return section


def _errmsg(exc: ConfigError) -> str:
    """charon's wording for what it also refuses; the swanctl reader's message otherwise."""
    key = exc.key or ""
    leaf = key.rsplit(".", 1)[-1]
    if exc.message.startswith("unknown setting"):
        return f"unknown option: {leaf}, config discarded"
    if exc.message.startswith("unknown section"):
        return f"invalid section: {leaf}"
    return f"{exc.message}, config discarded"


def _load_blobs(key: str, items: list[bytes]) -> tuple[Certificate, ...] | tuple[PublicKey, ...]:
    loaded: list[Any] = []
    for item in items:
        try:
            loaded.extend(parse_named(key, item))
        except CredentialError as exc:
            raise ViciConfigError(f"invalid value for: {key}, config discarded ({exc})") from None
    return tuple(loaded)


def connection_from_vici(name: str, tree: Mapping[str, Any]) -> Connection:
    """The :class:`Connection` of one ``load-conn`` section ``name``; raises
    :class:`ViciConfigError` with the reply's errmsg."""
    if not isinstance(tree, Mapping):
        raise ViciConfigError(f"invalid section: {name}")
    blobs: dict[str, dict[str, list[bytes]]] = {}
    section = _to_section(name, tree, blobs)
    try:
        conn = swanctl._connection(swanctl._Ctx(section, f"connections.{name}"))
    except ConfigError as exc:
        raise ViciConfigError(_errmsg(exc)) from None
    # The reader accepted at most one local* and one remote* section: that is the round.
    for side in ("local", "remote"):
        loaded = {
            key: _load_blobs(key, items)
            for sub, keys in blobs.items()
            if sub.startswith(side)
            for key, items in keys.items()
        }
        if loaded:
            auth = dataclasses.replace(getattr(conn, side), **loaded)
            conn = dataclasses.replace(conn, **{side: auth})
    return conn


def connections_from_vici(message: Mapping[str, Any]) -> list[Connection]:
    """Every connection of a ``load-conn`` message (its sections), in order."""
    return [
        connection_from_vici(name, tree)
        for name, tree in message.items()
        if isinstance(tree, Mapping)
    ]


# -- load-shared --------------------------------------------------------------------------------

_SHARED_TYPES_UNSUPPORTED = ("eap", "xauth", "ntlm", "ppk")


def shared_secret_from_vici(message: Mapping[str, Any]) -> tuple[str | None, SharedSecret]:
    """``(id, secret)`` of a ``load-shared`` message: type IKE only (charon's replies for a
    missing or unknown type or missing data)."""
    kind = message.get("type")
    if not kind:
        raise ViciConfigError("shared key type missing")
    kind = _text(kind)
    if kind.lower() in _SHARED_TYPES_UNSUPPORTED:
        raise ViciConfigError(f"{kind.upper()} shared keys are not supported by Petrel")
    if kind.lower() != "ike":
        raise ViciConfigError(f"invalid shared key type: {kind}")
    data = _raw(message.get("data", ""))
    if not data:
        raise ViciConfigError("shared key data missing")
    owners = message.get("owners", [])
    ids: list[Identity] = []
    for owner in owners if isinstance(owners, list) else [owners]:
        try:
            ids.append(parse_identity(_text(owner)))
        except (UnsupportedIdentity, ValueError) as exc:
            raise ViciConfigError(f"parsing shared key owners failed: {owner}: {exc}") from None
    unique = message.get("id")
    return (_text(unique) if unique else None), SharedSecret(tuple(ids), data)


# -- load-cert ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class CertificateLoad:
    """What a ``load-cert`` brings: certificates with their X.509 flag, a CRL or a raw key."""

    kind: str  # "X509" (flag NONE or CA), "X509_CRL", "PUBKEY"
    certificates: tuple[Certificate, ...] = ()
    ca: bool = False
    crl: Crl | None = None
    pubkey: PublicKey | None = None


# charon's certificate type names, and swanctl's legacy folder names (vici_cert_info.c).
_CERT_TYPES = {
    "x509": ("X509", None),
    "x509_crl": ("X509_CRL", "NONE"),
    "pubkey": ("PUBKEY", "NONE"),
    "x509ca": ("X509", "CA"),
    "x509crl": ("X509_CRL", "NONE"),
    "x509aa": ("X509", "AA"),
    "x509ocsp": ("X509", "OCSP"),
    "x509_ac": ("X509_AC", "NONE"),
    "x509ac": ("X509_AC", "NONE"),
    "ocsp_response": ("OCSP_RESPONSE", "NONE"),
    "ocsp_request": ("OCSP_REQUEST", "NONE"),
    "pkcs10_request": ("PKCS10_REQUEST", "NONE"),
    "pgp": ("PGP", "NONE"),
}
_X509_FLAGS = ("NONE", "CA", "AA", "OCSP")


def certificate_from_vici(message: Mapping[str, Any]) -> CertificateLoad:
    """A ``load-cert`` message: X509 (flag NONE or CA), X509_CRL or PUBKEY."""
    kind = message.get("type")
    if not kind:
        raise ViciConfigError("certificate type missing")
    known = _CERT_TYPES.get(_text(kind).lower())
    if known is None:
        raise ViciConfigError(f"invalid certificate type '{kind}'")
    name, flag = known
    if flag is None:
        flag = _text(message.get("flag", "NONE")).upper()
        if flag not in _X509_FLAGS:
            raise ViciConfigError(f"invalid certificate flag '{message.get('flag')}'")
    if name not in ("X509", "X509_CRL", "PUBKEY") or flag not in ("NONE", "CA"):
        what = name if name != "X509" else f"X509 {flag}"
        raise ViciConfigError(f"{what} certificates are not supported by Petrel")
    data = _raw(message.get("data", ""))
    if not data:
        raise ViciConfigError("certificate data missing")
    try:
        if name == "X509_CRL":
            return CertificateLoad(name, crl=load_crl(data))
        if name == "PUBKEY":
            return CertificateLoad(name, pubkey=load_public_key(data))
        certs = tuple(load_certificates(data))
    except CredentialError as exc:
        raise ViciConfigError(f"parsing {name} certificate failed: {exc}") from None
    if flag == "CA" and not all(c.is_ca for c in certs):
        raise ViciConfigError("ca certificate lacks CA basic constraint, rejected")
    return CertificateLoad(name, certificates=certs, ca=flag == "CA")


# -- load-key -----------------------------------------------------------------------------------

_KEY_TYPES = {"any": None, **{t.value: t for t in KeyType}}


def private_key_from_vici(message: Mapping[str, Any]) -> PrivateKey:
    """A ``load-key`` message: type rsa/ecdsa/ed25519/ed448/any, data PEM or DER."""
    kind = message.get("type")
    if not kind:
        raise ViciConfigError("key type missing")
    kind = _text(kind).lower()
    if kind not in _KEY_TYPES:
        if kind in ("dsa", "bliss"):
            raise ViciConfigError(f"{kind.upper()} keys are not supported by Petrel")
        raise ViciConfigError(f"invalid key type: {message.get('type')}")
    data = _raw(message.get("data", ""))
    if not data:
        raise ViciConfigError("key data missing")
    wanted = _KEY_TYPES[kind]
    try:
        key = load_private_key(data)
    except CredentialError as exc:
        raise ViciConfigError(f"parsing {kind.upper()} private key failed: {exc}") from None
    if wanted is not None and key.key_type is not wanted:
        raise ViciConfigError(
            f"parsing {kind.upper()} private key failed: it is a {key.key_type.value} key"
        )
    return key


_POOL_LISTS = ("dns",)  # pool attributes Petrel hands out; charon's others are refused


def pool_from_vici(name: str, section: Any) -> PoolConfig:
    """A ``load-pool`` section; ValueError with charon-like wording otherwise."""
    if not isinstance(section, dict) or "addrs" not in section:
        raise ValueError(f"missing addrs to load pool '{name}'")
    attributes: dict[str, tuple[str, ...]] = {}
    for key, value in section.items():
        if key == "addrs":
            continue
        if key not in _POOL_LISTS:
            raise ValueError(f"pool '{name}': attribute '{key}' is not supported yet")
        items = value if isinstance(value, list) else [value]
        attributes[key] = tuple(_text(item) for item in items)
    return PoolConfig.parse(name, _text(section["addrs"]), attributes.get("dns", ()))
