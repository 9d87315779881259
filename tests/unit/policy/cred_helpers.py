"""Test helpers for the credential tests: the crypto tests' chain builders and ``pki`` runner
(one copy, in tests/unit/crypto), signed octets, and swanctl folder writing."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "crypto"))

from crypto_pki_helpers import NOW, START, Node, leaf, need_pki, pki, root, sub

from petrel.crypto.pki_ops import pem
from petrel.crypto.x509 import Certificate, Crl

__all__ = [
    "NOW",
    "OCTETS",
    "START",
    "Node",
    "leaf",
    "need_pki",
    "pki",
    "root",
    "sub",
    "write_folder",
]

OCTETS = b"IKE_SA_INIT request | Nr | prf(SK_pi, IDi')"


def write_folder(base: Path, name: str, filename: str, item: Certificate | Crl | bytes) -> Path:
    """Write one credential into ``base/name/filename`` (PEM for certificates and CRLs)."""
    folder = base / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_bytes(item if isinstance(item, bytes) else pem(item))
    return path
