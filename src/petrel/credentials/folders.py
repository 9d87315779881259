"""Load swanctl's credential folders (beside swanctl.conf) into a :class:`CredentialStore`.

``x509/`` certificates (ours, intermediates, peers'), ``x509ca/`` trust anchors, ``x509crl/``
CRLs, ``private/`` any private key, ``rsa/`` RSA keys, ``ecdsa/`` ECDSA keys, ``pkcs8/``
PKCS#8 keys, ``pubkey/`` raw public keys; PEM or DER. Encrypted keys take their passphrase
from ``passphrases`` (keyed by file name relative to its folder, or by full path), as the
``secrets.private<name>`` ``file``/``secret`` pairs of swanctl.conf give them.
A file that cannot be used is a :class:`CredentialError` naming it (never skipped silently).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from petrel.credentials.store import CredentialStore
from petrel.crypto.keys import KeyType, load_private_key, load_public_key
from petrel.crypto.pki_errors import CredentialError
from petrel.crypto.x509 import load_certificates, load_crl

__all__ = ["FOLDERS", "load_folders"]

FOLDERS = ("x509", "x509ca", "x509crl", "private", "rsa", "ecdsa", "pkcs8", "pubkey")
_KEY_FOLDERS: dict[str, KeyType | None] = {
    "private": None,
    "rsa": KeyType.RSA,
    "ecdsa": KeyType.ECDSA,
    "pkcs8": None,
}


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _passphrase(path: Path, folder: Path, passphrases: Mapping[str, bytes]) -> bytes | None:
    for name in (str(path), path.name, str(path.relative_to(folder))):
        if name in passphrases:
            return passphrases[name]
    return None


def load_folders(
    base: str | Path,
    store: CredentialStore | None = None,
    passphrases: Mapping[str, bytes] | None = None,
) -> CredentialStore:
    """Load every credential under ``base`` (the folder of swanctl.conf) into ``store``."""
    base = Path(base)
    store = store if store is not None else CredentialStore()
    passphrases = passphrases or {}
    for name in FOLDERS:
        folder = base / name
        for path in _files(folder):
            try:
                _load(name, path, store, _passphrase(path, folder, passphrases))
            except CredentialError as exc:
                raise CredentialError(f"{path}: {exc}") from None
            except OSError as exc:
                raise CredentialError(f"{path}: {exc.strerror or exc}") from None
    return store


def _load(kind: str, path: Path, store: CredentialStore, passphrase: bytes | None) -> None:
    data = path.read_bytes()
    if kind == "x509":
        for cert in load_certificates(data):
            store.add_certificate(cert)
    elif kind == "x509ca":
        for cert in load_certificates(data):
            store.add_ca(cert)
    elif kind == "x509crl":
        store.add_crl(load_crl(data))
    elif kind == "pubkey":
        store.add_public_key(load_public_key(data))
    else:
        key = load_private_key(data, passphrase)
        wanted = _KEY_FOLDERS[kind]
        if wanted is not None and key.key_type is not wanted:
            raise CredentialError(f"{key.key_type.value} key in the {kind}/ folder")
        store.add_private_key(key)
