"""Run-time configuration over VICI: connections, credentials, trap policies, counters.

charon's commands with charon's message keys and replies (its vici plugin: vici_config.c,
vici_cred.c, vici_query.c, vici_control.c), so that Debian's ``swanctl --load-all`` and
``--list-*`` drive Petrel unchanged:

- ``load-conn``/``unload-conn`` (``get-conns`` and ``list-conns`` are in :mod:`.commands`):
  the message becomes the same :class:`~petrel.policy.connection.Connection` a swanctl.conf
  file gives (:mod:`petrel.config.vici_conf`); reloading keeps established SAs;
- ``load-shared``/``unload-shared``/``get-shared``, ``load-cert``, ``load-key``/
  ``unload-key``/``get-keys``, ``clear-creds``, ``flush-certs``, ``list-certs``: credentials
  loaded over VICI sit beside those of ``--config`` (never listed by ``get-keys``/
  ``get-shared``, never unloaded by them, as charon's other credential sets);
- ``install``/``uninstall``/``list-policies`` for trap policies; ``get-algorithms``;
  ``get-counters``/``reset-counters`` with charon's counter names for what Petrel counts;
  ``reload-settings``;
- pools, authorities, tokens and redirects are answered ``success = no`` naming them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..config.vici_conf import (
    ViciConfigError,
    certificate_from_vici,
    connections_from_vici,
    private_key_from_vici,
    shared_secret_from_vici,
)
from ..credentials.identities import cert_match, format_identity, parse_identity
from ..credentials.store import CredentialStore
from ..crypto.encr import encr_spec
from ..crypto.errors import CryptoError
from ..crypto.integ import integ_spec
from ..crypto.ke import supported_groups
from ..crypto.keys import PrivateKey, PublicKey
from ..crypto.prf import prf_spec
from ..crypto.x509 import Certificate, Crl
from ..ike import events as ev
from ..logsetup import reload_log_levels
from ..policy.connection import AuthConfig, Connection, SharedSecret
from ..wire.registry import EncrId, IntegId, KeId, PrfId
from .api import ControlHost
from .counters import COUNTER_NAMES, Counters
from .server import Emitter
from .vici import reply

log = logging.getLogger("petrel.control")

Message = Mapping[str, Any]

__all__ = ["COUNTER_NAMES", "Counters", "RuntimeCommands", "ViciCredentials", "connection_info"]


def _keyid(key: PrivateKey | PublicKey) -> str:
    """charon's key id: hex SHA-1 of the subjectPublicKey (KEYID_PUBKEY_SHA1, ``%+B``)."""
    public = key.public if isinstance(key, PrivateKey) else key
    return public.pubkey_sha1.hex()


# ------------------------------------------------------------------------------ credentials


class ViciCredentials:
    """Credentials loaded over VICI (charon's vici credential set)."""

    def __init__(self) -> None:
        self.certificates: list[Certificate] = []
        self.cas: list[Certificate] = []
        self.crls: list[Crl] = []
        self.pubkeys: list[PublicKey] = []
        self.keys: dict[str, PrivateKey] = {}
        self.shared: list[tuple[str | None, SharedSecret]] = []

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    def add_shared(self, unique: str | None, secret: SharedSecret) -> None:
        """A secret replaces the one of the same unique id (charon's add_shared_unique)."""
        if unique is not None:
            self.shared = [(u, s) for u, s in self.shared if u != unique]
        self.shared.append((unique, secret))

    def remove_shared(self, unique: str) -> None:
        self.shared = [(u, s) for u, s in self.shared if u != unique]

    def store(self, base: CredentialStore, connections: Iterable[Connection]) -> CredentialStore:
        """A store with ``base`` (swanctl.conf's folders), these credentials and what the
        connections name (their own certificates and raw public keys, as IkeAuth adds)."""
        store = CredentialStore()
        for ca in (*base.cas, *self.cas):
            store.add_ca(ca)
        for cert in (*base.certificates, *self.certificates):
            store.add_certificate(cert)
        for key in (*base.private_keys, *self.keys.values()):
            store.add_private_key(key)
        for crl in (*base.crls, *self.crls):
            store.add_crl(crl)
        for trusted in base.public_keys:
            store.add_public_key(trusted.key, trusted.identities)
        for pubkey in self.pubkeys:
            store.add_public_key(pubkey)
        for conn in connections:
            for cert in conn.local.certs:
                store.add_certificate(cert)
            for side in (conn.local, conn.remote):
                for key in side.pubkeys:
                    store.add_public_key(key, (side.id,) if side.id else ())
        return store

    def secrets(self, base: Iterable[SharedSecret]) -> tuple[SharedSecret, ...]:
        return (*base, *(secret for _unique, secret in self.shared))


# ------------------------------------------------------------------------------ list-conns

_UNIQUE = {"no": "UNIQUE_NO", "never": "UNIQUE_NEVER", "keep": "UNIQUE_KEEP"}
_UNIQUE["replace"] = "UNIQUE_REPLACE"
_AUTH_CLASS = {"psk": "pre-shared key", "pubkey": "public key", "null": "null"}
_REVOCATION = {"strict": "GOOD", "ifuri": "SKIPPED"}


def _ts(selectors: Iterable[Any]) -> list[str]:
    return ["dynamic" if s.dynamic else str(s) for s in selectors]


def _auth_info(auth: AuthConfig) -> dict[str, Any]:
    info: dict[str, Any] = {"class": _AUTH_CLASS[auth.method]}
    if auth.id is not None:
        info["id"] = format_identity(auth.id)
    elif auth.certs:
        info["id"] = auth.certs[0].subject_str
    if auth.revocation in _REVOCATION:
        info["revocation"] = _REVOCATION[auth.revocation]
    info["groups"] = []
    info["cert_policy"] = []
    info["certs"] = [c.subject_str for c in auth.certs]
    info["cacerts"] = [c.subject_str for c in auth.cacerts]
    return info


def connection_info(conn: Connection) -> dict[str, Any]:
    """A ``list-conn`` event's section for ``conn`` (vici_query.c's list_conns)."""
    info: dict[str, Any] = {
        "local_addrs": list(conn.local_addrs),
        "remote_addrs": list(conn.remote_addrs),
        "version": "IKEv2",
        "reauth_time": str(int(conn.reauth_time)),
        "rekey_time": str(int(conn.rekey_time)),
        "unique": _UNIQUE.get(conn.unique, "UNIQUE_NO"),
    }
    if conn.dpd_delay:
        info["dpd_delay"] = str(int(conn.dpd_delay))
    if conn.dpd_timeout:
        info["dpd_timeout"] = str(int(conn.dpd_timeout))
    info["local-1"] = _auth_info(conn.local)
    info["remote-1"] = _auth_info(conn.remote)
    info["children"] = {
        child.name: {
            "mode": child.mode.upper(),
            "rekey_time": str(int(child.rekey_time)),
            "rekey_bytes": str(child.rekey_bytes),
            "rekey_packets": str(child.rekey_packets),
            "dpd_action": child.dpd_action,
            "close_action": child.close_action,
            "local-ts": _ts(child.local_ts),
            "remote-ts": _ts(child.remote_ts),
        }
        for child in conn.children.values()
    }
    return info


# ------------------------------------------------------------------------------ algorithms

_ENCR_NAMES = {EncrId.NULL_AUTH_AES_GMAC: "NULL_AES_GMAC", EncrId.NULL: "NULL"}
_KE_NAMES = {KeId.CURVE25519: "CURVE_25519", KeId.CURVE448: "CURVE_448"}
_PLUGIN = "petrel"


def algorithms() -> dict[str, dict[str, str]]:
    """``get-algorithms``: charon's sections and names, each implemented by Petrel."""
    encryption: dict[str, str] = {}
    aead: dict[str, str] = {}
    for encr in EncrId:
        try:
            spec = encr_spec(encr, None if encr in (EncrId.NULL, EncrId.CHACHA20_POLY1305) else 128)
        except CryptoError:
            continue
        name = _ENCR_NAMES.get(encr, encr.name)
        (aead if spec.aead else encryption)[name] = _PLUGIN
    integrity = {}
    for integ in IntegId:
        try:
            integ_spec(integ)
        except CryptoError:
            continue
        integrity[integ.name] = _PLUGIN
    prf = {}
    for prf_id in PrfId:
        try:
            prf_spec(prf_id)
        except CryptoError:
            continue
        prf[f"PRF_{prf_id.name}"] = _PLUGIN
    groups = supported_groups()
    dh = {_KE_NAMES.get(ke, ke.name): _PLUGIN for ke in KeId if ke in groups}
    return {
        "encryption": encryption,
        "integrity": integrity,
        "aead": aead,
        "hasher": {},
        "prf": prf,
        "xof": {},
        "kdf": {},
        "drbg": {},
        "dh": dh,
        "rng": {},
        "nonce-gen": {},
    }


# ------------------------------------------------------------------------------ commands

_UNSUPPORTED = {
    "load-token": "private keys on tokens (PKCS#11) are not supported by Petrel",
    "redirect": "redirects (RFC 5685) are not supported by Petrel",
    "load-authority": "certification authorities (authorities) are not supported by Petrel",
    "unload-authority": "certification authorities (authorities) are not supported by Petrel",
}


def _bool(value: Any) -> bool:
    return str(value).lower() in ("yes", "true", "1", "enabled")


class RuntimeCommands:
    """The run-time configuration commands of one daemon."""

    def __init__(self, host: ControlHost) -> None:
        self.host = host
        self.creds = ViciCredentials()
        self.counters = Counters(host.ike_drops, host.message_counts)

    def commands(self) -> dict[str, Callable[[Message, Emitter], Any]]:
        table: dict[str, Callable[[Message, Emitter], Any]] = {
            "load-conn": self.load_conn,
            "unload-conn": self.unload_conn,
            "load-shared": self.load_shared,
            "unload-shared": self.unload_shared,
            "get-shared": self.get_shared,
            "clear-creds": self.clear_creds,
            "flush-certs": self.flush_certs,
            "load-cert": self.load_cert,
            "load-key": self.load_key,
            "unload-key": self.unload_key,
            "get-keys": self.get_keys,
            "list-certs": self.list_certs,
            "get-authorities": self.get_authorities,
            "list-authorities": self.list_authorities,
            "get-algorithms": self.get_algorithms,
            "get-counters": self.get_counters,
            "reset-counters": self.reset_counters,
            "list-policies": self.list_policies,
            "install": self.install,
            "uninstall": self.uninstall,
            "reload-settings": self.reload_settings,
        }
        for name, errmsg in _UNSUPPORTED.items():
            table[name] = self._unsupported(errmsg)
        return table

    @staticmethod
    def _unsupported(errmsg: str) -> Callable[[Message, Emitter], Any]:
        async def handler(message: Message, emitter: Emitter) -> Message:
            return reply(errmsg)

        return handler

    # ---------------------------------------------------------------- events

    def on_event(self, event: ev.Event) -> None:
        """Count rekeyings (charon's counters plugin)."""
        if isinstance(event, ev.ChildSaDown) and event.reason == "rekeyed":
            self.counters.count("child-rekey", self._conn_of(event.ike_id))
        elif isinstance(event, ev.IkeSaRekeyed):
            new = self.host.ike_sa(event.new_ike_id)
            ours = new is not None and new.initiator
            self.counters.count("ike-rekey-init" if ours else "ike-rekey-resp", event.name)

    def _conn_of(self, ike_id: int) -> str | None:
        return self.host.ike_name(ike_id)

    # ---------------------------------------------------------------- connections

    async def load_conn(self, message: Message, emitter: Emitter) -> Message:
        try:
            conns = connections_from_vici(message)
        except ViciConfigError as exc:
            log.warning("load-conn refused: %s", exc)
            return reply(str(exc))
        for conn in conns:
            self.host.load_connection(conn)
        if conns:
            self.apply_credentials()
        return reply()

    async def unload_conn(self, message: Message, emitter: Emitter) -> Message:
        name = message.get("name")
        if not name:
            return reply("unload: missing connection name")
        if not self.host.unload_connection(str(name)):
            return reply(f"unload: connection '{name}' not found")
        self.apply_credentials()
        return reply()

    # ---------------------------------------------------------------- credentials

    def apply_credentials(self) -> None:
        """Hand the engine the configuration's credentials (``--config``, re-read on SIGHUP)
        merged with those loaded over VICI."""
        base, secrets = self.host.config_credentials()
        store = self.creds.store(base, self.host.connections().values())
        self.host.set_credentials(store, self.creds.secrets(secrets))

    async def load_shared(self, message: Message, emitter: Emitter) -> Message:
        try:
            unique, secret = shared_secret_from_vici(message)
        except ViciConfigError as exc:
            return reply(str(exc))
        self.creds.add_shared(unique, secret)
        self.apply_credentials()
        owners = ", ".join(f"'{format_identity(i)}'" for i in secret.ids) or "'%any'"
        named = f" with id '{unique}'" if unique else ""
        log.info("loaded IKE shared key%s for: %s", named, owners)
        return reply()

    async def unload_shared(self, message: Message, emitter: Emitter) -> Message:
        unique = message.get("id")
        if not unique:
            return reply("unique identifier missing")
        self.creds.remove_shared(str(unique))
        self.apply_credentials()
        log.info("unloaded shared key with id '%s'", unique)
        return reply()

    async def get_shared(self, message: Message, emitter: Emitter) -> Message:
        return {"keys": [u for u, _secret in self.creds.shared if u is not None]}

    async def clear_creds(self, message: Message, emitter: Emitter) -> Message:
        self.creds.clear()
        self.apply_credentials()
        return reply()

    async def flush_certs(self, message: Message, emitter: Emitter) -> Message:
        return reply()  # Petrel caches no fetched certificates or CRLs: nothing to flush

    async def load_cert(self, message: Message, emitter: Emitter) -> Message:
        try:
            loaded = certificate_from_vici(message)
        except ViciConfigError as exc:
            return reply(str(exc))
        if loaded.crl is not None:
            self.creds.crls.append(loaded.crl)
            log.info("loaded CRL of '%s'", loaded.crl.issuer)
        elif loaded.pubkey is not None:
            self.creds.pubkeys.append(loaded.pubkey)
            log.info("loaded raw public key %s", _keyid(loaded.pubkey))
        for cert in loaded.certificates:
            (self.creds.cas if loaded.ca else self.creds.certificates).append(cert)
            log.info("loaded certificate '%s'", cert.subject_str)
        self.apply_credentials()
        return reply()

    async def load_key(self, message: Message, emitter: Emitter) -> Message:
        try:
            key = private_key_from_vici(message)
        except ViciConfigError as exc:
            return reply(str(exc))
        keyid = _keyid(key)
        self.creds.keys[keyid] = key
        self.apply_credentials()
        log.info("loaded %s private key", key.key_type.value.upper())
        return {"success": "yes", "id": keyid}

    async def unload_key(self, message: Message, emitter: Emitter) -> Message:
        keyid = message.get("id")
        if not keyid:
            return reply("key id missing")
        keyid = str(keyid).replace(":", "").lower()
        if self.creds.keys.pop(keyid, None) is None:
            return reply("key not found")
        self.apply_credentials()
        log.info("unloaded private key with id %s", keyid)
        return reply()

    async def get_keys(self, message: Message, emitter: Emitter) -> Message:
        return {"keys": list(self.creds.keys)}

    async def list_certs(self, message: Message, emitter: Emitter) -> Message:
        """``list-cert`` events: raw keys, X.509 (NONE, then CA), then CRLs, as charon."""
        kind = str(message.get("type", "ANY")).upper()
        flag = str(message.get("flag", "ANY")).upper()
        kind, flag = {"X509CA": ("X509", "CA"), "X509CRL": ("X509_CRL", flag)}.get(
            kind, (kind, flag)
        )
        subject = message.get("subject")
        try:
            wanted = parse_identity(str(subject)) if subject else None
        except ValueError:
            return {}
        store = self.host.credential_store()

        def has_key(public: PublicKey) -> dict[str, str]:
            found = any(k.public == public for k in store.private_keys)
            return {"has_privkey": "yes"} if found else {}

        if kind in ("ANY", "PUBKEY"):
            for trusted in store.public_keys:
                event = {"type": "PUBKEY", **has_key(trusted.key), "data": trusted.key.spki}
                if trusted.identities:
                    event["subject"] = format_identity(trusted.identities[0])
                await emitter.emit("list-cert", event)
        if kind in ("ANY", "X509"):
            for cert_flag, certs in (("NONE", store.certificates), ("CA", store.cas)):
                if flag not in ("ANY", cert_flag):
                    continue
                for cert in certs:
                    if wanted is not None and not cert_match(cert, wanted):
                        continue
                    event = {"type": "X509", "flag": cert_flag, **has_key(cert.public_key)}
                    await emitter.emit("list-cert", {**event, "data": cert.der})
        if kind in ("ANY", "X509_CRL"):
            for crl in store.crls:
                await emitter.emit("list-cert", {"type": "X509_CRL", "data": crl.der})
        return {}

    # ---------------------------------------------------------------- authorities

    async def get_authorities(self, message: Message, emitter: Emitter) -> Message:
        return {
            "authorities": [],
            **reply(_UNSUPPORTED["load-authority"]),
        }

    async def list_authorities(self, message: Message, emitter: Emitter) -> Message:
        return reply(_UNSUPPORTED["load-authority"])

    # ---------------------------------------------------------------- queries

    async def get_algorithms(self, message: Message, emitter: Emitter) -> Message:
        return algorithms()

    async def get_counters(self, message: Message, emitter: Emitter) -> Message:
        name = message.get("name")
        sections: dict[str, Any] = {}
        errmsg = None
        if _bool(message.get("all", "no")):
            sections[""] = self.counters.get(None)
            for conn in self.counters.names():
                sections[conn] = self.counters.get(conn)
        else:
            counts = self.counters.get(str(name) if name else None)
            if counts is None:
                errmsg = "no counters found for this connection"
            else:
                sections[str(name) if name else ""] = counts
        return {"counters": sections, **reply(errmsg)}

    async def reset_counters(self, message: Message, emitter: Emitter) -> Message:
        if _bool(message.get("all", "no")):
            self.counters.reset_all()
        else:
            name = message.get("name")
            self.counters.reset(str(name) if name else None)
        return reply()

    async def list_policies(self, message: Message, emitter: Emitter) -> Message:
        """``list-policy`` events for trap policies (``trap``); Petrel has no drop/pass
        shunts, so ``drop``/``pass`` list nothing."""
        if message.get("trap") is None:
            return {}
        ike, child = message.get("ike"), message.get("child")
        for policy in self.host.trap_policies():
            conn, name = policy.connection, policy.child
            if (ike and ike != conn) or (child and child != name):
                continue
            event = {
                "child": name,
                "ike": conn,
                "mode": "TUNNEL",
                "local-ts": [str(s) for s in policy.local_ts],
                "remote-ts": [str(s) for s in policy.remote_ts],
            }
            await emitter.emit("list-policy", {f"{conn}/{name}": event})
        return {}

    async def install(self, message: Message, emitter: Emitter) -> Message:
        child = message.get("child")
        if not child:
            return reply("missing configuration name")
        ike = message.get("ike")
        return reply(self.host.install_policy(str(child), str(ike) if ike else None))

    async def uninstall(self, message: Message, emitter: Emitter) -> Message:
        child = message.get("child")
        if not child:
            return reply("missing configuration name")
        ike = message.get("ike")
        if self.host.uninstall_policy(str(child), str(ike) if ike else None):
            return reply()
        return reply(f"policy '{child}' not found")

    async def reload_settings(self, message: Message, emitter: Emitter) -> Message:
        """Petrel's settings are its command line: nothing to re-read, but log levels
        (Petrel's ``log`` key, ``petrel loglevel``) apply at once."""
        return reply(reload_log_levels(message))
