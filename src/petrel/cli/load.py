"""``petrel load [PATH]`` (what ``swanctl --load-all`` does, over VICI) and
``petrel config check PATH`` (the same reading and validation, no daemon).

The file is read and validated here first, by the reader the daemon uses, so a mistake is
reported with its ``file:line`` before anything is sent.  Then, as swanctl: certificates
(``x509/`` NONE, ``x509ca/`` CA), CRLs and raw public keys (``load-cert``), private keys,
decrypted with their ``secrets.private…`` passphrase (``load-key``), IKE secrets by section
name (``load-shared``) and connections as their settings trees with the files that
``certs``/``cacerts``/``pubkeys`` name inlined (``load-conn``); finally connections, secrets
and keys the daemon holds from an earlier load but the file no longer has are unloaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config.errors import ConfigError
from ..config.settings import Section, load_settings
from ..config.swanctl import load_swanctl
from ..control.client import ViciClient
from ..policy.connection import SwanctlConfig
from .common import connect, succeeded
from .errors import EXIT_FAILED, EXIT_OK

DEFAULT_CONFIG = "/etc/swanctl/swanctl.conf"

# swanctl sends these as lists (comma-separated in swanctl.conf).
_LIST_KEYS = frozenset(
    {
        "local_addrs",
        "remote_addrs",
        "proposals",
        "esp_proposals",
        "ah_proposals",
        "vips",
        "pools",
        "local_ts",
        "remote_ts",
        "groups",
        "cert_policy",
        "ca_id",
    }
)
_FILE_KEYS = {"certs": "x509", "cacerts": "x509ca", "pubkeys": "pubkey"}


def config_file(path: str | None) -> Path:
    """swanctl.conf itself: ``path``, the file inside folder ``path``, or the default."""
    chosen = Path(path or DEFAULT_CONFIG)
    return chosen / "swanctl.conf" if chosen.is_dir() else chosen


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _section_message(section: Section, base: Path, side: bool = False) -> dict[str, Any]:
    """One settings section as a VICI section (lists split, credential files inlined)."""
    out: dict[str, Any] = {}
    for key, setting in section.settings.items():
        if side and key in _FILE_KEYS:
            folder = base / _FILE_KEYS[key]
            out[key] = [
                (Path(name) if Path(name).is_absolute() else folder / name).read_bytes()
                for name in _split(setting.value)
            ]
        elif key in _LIST_KEYS:
            out[key] = _split(setting.value)
        else:
            out[key] = setting.value
    for name, sub in section.sections.items():
        out[name] = _section_message(sub, base, side=name.startswith(("local", "remote")))
    return out


def build_messages(path: Path) -> tuple[SwanctlConfig, dict[str, list[dict[str, Any]]]]:
    """The validated configuration, and the VICI messages that load it, by command."""
    config = load_swanctl(str(path))
    root = load_settings(str(path))
    base = path.resolve().parent
    messages: dict[str, list[dict[str, Any]]] = {
        "load-cert": [],
        "load-key": [],
        "load-shared": [],
        "load-conn": [],
    }
    store = config.credentials
    for flag, certs in (("NONE", store.certificates), ("CA", store.cas)):
        for cert in certs:
            messages["load-cert"].append({"type": "X509", "flag": flag, "data": cert.der})
    for crl in store.crls:
        messages["load-cert"].append({"type": "X509_CRL", "data": crl.der})
    for trusted in store.public_keys:
        messages["load-cert"].append({"type": "PUBKEY", "data": trusted.key.spki})
    for key in store.private_keys:
        messages["load-key"].append({"type": "any", "data": key.der()})
    secrets = root.section("secrets")
    ike_sections = [
        (name, sub)
        for name, sub in (secrets.sections.items() if secrets else ())
        if name.startswith("ike")
    ]
    for (name, sub), secret in zip(ike_sections, config.secrets, strict=True):
        owners = [s.value for key, s in sub.settings.items() if key.startswith("id")]
        messages["load-shared"].append(
            {"id": name, "type": "IKE", "data": secret.secret, "owners": owners}
        )
    conns = root.section("connections")
    for name, sub in conns.sections.items() if conns else ():
        messages["load-conn"].append({name: _section_message(sub, base)})
    return config, messages


def _send(client: ViciClient, command: str, message: Mapping[str, Any], what: str) -> bool:
    reply = client.request(command, message)
    if succeeded(reply):
        print(f"loaded {what}")
        return True
    print(f"loading {what} failed: {reply.get('errmsg', 'no reason given')}", file=sys.stderr)
    return False


def load(args: argparse.Namespace) -> int:
    path = config_file(args.path)
    try:
        config, messages = build_messages(path)
    except ConfigError as exc:
        print(f"petrel load: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"petrel load: {exc.filename or path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    ok = True
    with connect(args) as client:
        for message in messages["load-cert"]:
            ok &= _send(client, "load-cert", message, f"{message['type']} certificate")
        for message in messages["load-key"]:
            ok &= _send(client, "load-key", message, "private key")
        loaded_keys = {key.public.pubkey_sha1.hex() for key in config.credentials.private_keys}
        for message in messages["load-shared"]:
            ok &= _send(client, "load-shared", message, f"ike secret '{message['id']}'")
        for message in messages["load-conn"]:
            ok &= _send(client, "load-conn", message, f"connection '{next(iter(message))}'")
        ok &= _unload_stale(client, config, {m["id"] for m in messages["load-shared"]}, loaded_keys)
    print(
        f"{'successfully ' if ok else ''}loaded {len(messages['load-conn'])} connection(s), "
        f"{len(messages['load-shared'])} secret(s), {len(messages['load-cert'])} "
        f"certificate(s), {len(messages['load-key'])} key(s)"
    )
    return EXIT_OK if ok else EXIT_FAILED


def _unload_stale(
    client: ViciClient, config: SwanctlConfig, secrets: set[str], keys: set[str]
) -> bool:
    """What the daemon still holds from an earlier load but the file no longer has."""
    ok = True
    for name in client.request("get-conns", {}).get("conns", []) or []:
        if str(name) not in config.connections:
            ok &= _send(client, "unload-conn", {"name": str(name)}, f"(unloaded) '{name}'")
    for unique in client.request("get-shared", {}).get("keys", []) or []:
        if str(unique) not in secrets:
            ok &= _send(client, "unload-shared", {"id": str(unique)}, f"(unloaded) '{unique}'")
    for keyid in client.request("get-keys", {}).get("keys", []) or []:
        if str(keyid) not in keys:
            ok &= _send(client, "unload-key", {"id": str(keyid)}, f"(unloaded) key {keyid}")
    return ok


def check(args: argparse.Namespace) -> int:
    """``petrel config check PATH``: read and validate, no daemon; exit 1 with file:line."""
    path = config_file(args.path)
    try:
        config = load_swanctl(str(path))
    except ConfigError as exc:
        if args.json:
            error = {"file": exc.file, "line": exc.line, "key": exc.key, "message": exc.message}
            print(json.dumps({"ok": False, "error": error}))
        else:
            print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"{exc.filename or path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    store = config.credentials
    summary = {
        "ok": True,
        "file": str(path),
        "connections": {name: sorted(conn.children) for name, conn in config.connections.items()},
        "secrets": len(config.secrets),
        "certificates": len(store.certificates) + len(store.cas),
        "crls": len(store.crls),
        "private_keys": len(store.private_keys),
        "public_keys": len(store.public_keys),
    }
    if args.json:
        print(json.dumps(summary))
        return EXIT_OK
    conns = ", ".join(
        f"{name} ({', '.join(children) or 'no children'})"
        for name, children in summary["connections"].items()  # type: ignore[union-attr]
    )
    print(f"{path}: OK")
    print(f"  connections: {conns or 'none'}")
    print(
        f"  {summary['secrets']} secret(s), {summary['certificates']} certificate(s), "
        f"{summary['crls']} CRL(s), {summary['private_keys']} private key(s), "
        f"{summary['public_keys']} public key(s)"
    )
    return EXIT_OK
