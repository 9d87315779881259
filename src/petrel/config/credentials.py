"""swanctl.conf's credentials: the folders beside the file, the files a ``local``/``remote``
section names (``certs``, ``cacerts``, ``pubkeys``) and the passphrases of encrypted keys
(``secrets.private…``/``rsa…``/``ecdsa…``/``pkcs8…`` with ``file`` and ``secret``).

strongSwan resolves a relative file name against the folder of its kind (``x509/``,
``x509ca/``, ``pubkey/``) beside swanctl.conf; so does Petrel.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from petrel.credentials.folders import load_folders
from petrel.credentials.store import CredentialStore
from petrel.crypto.keys import PublicKey, load_public_key
from petrel.crypto.pki_errors import CredentialError
from petrel.crypto.x509 import Certificate, load_certificates

__all__ = ["KEY_SECRET_PREFIXES", "load_named", "load_store", "parse_named", "warn_if_readable"]

log = logging.getLogger("petrel.cfg")

KEY_SECRET_PREFIXES = ("private", "rsa", "ecdsa", "pkcs8")
_FOLDER_OF = {"certs": "x509", "cacerts": "x509ca", "pubkeys": "pubkey"}


def load_store(base: Path | None, passphrases: Mapping[str, bytes]) -> CredentialStore:
    """Every credential in the folders beside swanctl.conf (none without a file)."""
    if base is None:
        return CredentialStore()
    warn_if_readable(
        path
        for name in KEY_SECRET_PREFIXES
        if (base / name).is_dir()
        for path in (base / name).iterdir()
    )
    return load_folders(base, passphrases=passphrases)


def warn_if_readable(paths: Iterable[str | Path]) -> None:
    """Warn about each file holding secrets (keys, PSKs) that group or others may read."""
    for path in sorted({str(p) for p in paths}):
        try:
            mode = stat.S_IMODE(Path(path).stat().st_mode)
        except OSError:
            continue
        if mode & 0o077:
            log.warning(
                "%s holds secrets but its mode is %04o: anyone on this host who can read it "
                "can impersonate you or read your traffic (chmod 600 %s)",
                path,
                mode,
                path,
            )


def load_named(
    key: str, names: tuple[str, ...], base: Path | None
) -> tuple[Certificate, ...] | tuple[PublicKey, ...]:
    """The certificates (``certs``, ``cacerts``) or public keys (``pubkeys``) of ``names``;
    :class:`CredentialError` naming the file that cannot be read."""
    folder = (base or Path.cwd()) / _FOLDER_OF[key]
    loaded: list = []
    for name in names:
        path = Path(name) if Path(name).is_absolute() else folder / name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CredentialError(f"{path}: {exc.strerror or exc}") from None
        except ValueError:  # a NUL in the name: no such file can exist
            raise CredentialError(f"{path!r}: no such file") from None
        try:
            loaded.extend(parse_named(key, data))
        except CredentialError as exc:
            raise CredentialError(f"{path}: {exc}") from None
    return tuple(loaded)


def parse_named(key: str, data: bytes) -> list[Certificate] | list[PublicKey]:
    """The public key (``pubkeys``) or certificates (``certs``, ``cacerts``, a PEM bundle
    too) in ``data``, PEM or DER — from a file, or as VICI's load-conn carries them."""
    if key == "pubkeys":
        return [load_public_key(data)]
    return list(load_certificates(data))
