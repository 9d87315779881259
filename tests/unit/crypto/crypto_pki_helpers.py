"""Test helpers: certificate chains made with petrel's pki_ops, and strongSwan's ``pki`` tool."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from petrel.crypto.keys import PrivateKey, generate_private_key
from petrel.crypto.pki_ops import CertSpec, issue, self_signed
from petrel.crypto.x509 import Certificate

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
START = NOW - timedelta(days=1)


@dataclass(frozen=True)
class Node:
    key: PrivateKey
    cert: Certificate


def _spec(spec: CertSpec | None, **defaults: object) -> CertSpec:
    base = spec or CertSpec()
    if base.now is None and base.not_before is None:
        base = replace(base, now=START)
    return replace(base, **defaults) if defaults else base


def root(
    kind: str = "ecdsa",
    bits: int | None = 256,
    dn: str = "C=CH, O=Petrel, CN=Petrel Root CA",
    spec: CertSpec | None = None,
) -> Node:
    key = generate_private_key(kind, bits)
    return Node(key, self_signed(key, dn, _spec(spec, ca=True)))


def sub(
    parent: Node,
    kind: str = "ecdsa",
    bits: int | None = 256,
    dn: str = "C=CH, O=Petrel, CN=Petrel Intermediate CA",
    spec: CertSpec | None = None,
) -> Node:
    key = generate_private_key(kind, bits)
    return Node(key, issue(key.public, dn, parent.cert, parent.key, _spec(spec, ca=True)))


def leaf(
    parent: Node,
    kind: str = "ecdsa",
    bits: int | None = 256,
    dn: str = "C=CH, O=Petrel, CN=moon.petrel.test",
    spec: CertSpec | None = None,
) -> Node:
    key = generate_private_key(kind, bits)
    spec = spec or CertSpec(sans=("moon.petrel.test", "moon@petrel.test", "192.0.2.1"))
    return Node(key, issue(key.public, dn, parent.cert, parent.key, _spec(spec)))


def need_pki() -> str:
    """Path of strongSwan's ``pki``; skip without it (a failure under CI=true)."""
    path = shutil.which("pki")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("strongSwan's pki tool is missing under CI=true (package strongswan-pki)")
        pytest.skip("strongSwan's pki tool is not installed (package strongswan-pki)")
    return path


def pki(*args: str | Path, stdin: bytes | None = None, check: bool = True) -> bytes:
    """Run ``pki`` and return its stdout (its TPM plugin chatter on stderr is ignored)."""
    result = subprocess.run(
        [need_pki(), *map(str, args)], input=stdin, capture_output=True, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"pki {args} failed: {result.stderr.decode(errors='replace')}")
    return result.stdout
