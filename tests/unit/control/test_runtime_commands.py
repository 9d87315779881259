"""The run-time configuration commands against a daemon that is not started (no sockets, no
TUN): connections, credentials, counters, policies and the refusals, with charon's replies."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from petrel.control.commands import ControlCommands
from petrel.control.runtime import COUNTER_NAMES
from petrel.control.vici import decode_message, encode_message
from petrel.crypto.pki_ops import pem
from petrel.daemon import Daemon
from petrel.ike import events as ev
from petrel.policy.connection import SwanctlConfig
from petrel.wire.payloads import IkeHeader
from petrel.wire.registry import ExchangeType

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "crypto"))

from crypto_pki_helpers import leaf, root

CONN = {
    "c": {
        "local_addrs": ["192.0.2.1"],
        "remote_addrs": ["192.0.2.2"],
        "proposals": ["aes256gcm16-prfsha256-x25519"],
        "local": {"auth": "psk", "id": "left"},
        "remote": {"auth": "psk", "id": "right"},
        "children": {
            "net": {"local_ts": ["198.51.100.1/32"], "remote_ts": ["203.0.113.1/32"]},
        },
    }
}


class Recorder:
    """An Emitter stand-in that records the events a command streams."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def registered(self, event: str) -> bool:
        return True

    async def emit(self, event: str, message: dict) -> bool:
        self.events.append((event, decode_message(encode_message(message))))
        return True


Runner = Callable[[str, dict | None], Any]


def run(test: Callable[[Daemon, Runner], Coroutine[Any, Any, None]]) -> None:
    async def main() -> None:
        daemon = Daemon(SwanctlConfig({}))
        daemon.loop = asyncio.get_running_loop()
        control = ControlCommands(daemon.host)
        daemon.control = control
        commands = {**control.runtime.commands(), **control.pools.commands()}
        commands["list-conns"] = control.list_conns
        commands["get-conns"] = control.get_conns
        recorder = Recorder()

        async def call(name: str, message: dict | None = None) -> Any:
            recorder.events.clear()
            wire = decode_message(encode_message(message or {}))
            reply = await commands[name](wire, recorder)  # type: ignore[arg-type]
            reply = decode_message(encode_message(reply))
            return (reply, list(recorder.events)) if name.startswith("list-") else reply

        try:
            await test(daemon, call)
        finally:
            daemon._netlink.shutdown(wait=False)

    asyncio.run(main())


def test_load_list_reload_unload_connection() -> None:
    async def test(daemon: Daemon, call: Runner) -> None:
        assert await call("get-conns") == {"conns": []}
        assert await call("load-conn", CONN) == {"success": "yes"}
        assert await call("get-conns") == {"conns": ["c"]}
        conn = daemon.config.connections["c"]
        assert daemon.engine.connections["c"] is conn
        # the same definition again: the object (and so the SAs made with it) stays
        assert await call("load-conn", CONN) == {"success": "yes"}
        assert daemon.engine.connections["c"] is conn
        _reply, events = await call("list-conns")
        assert events == [
            (
                "list-conn",
                {
                    "c": {
                        "local_addrs": ["192.0.2.1"],
                        "remote_addrs": ["192.0.2.2"],
                        "version": "IKEv2",
                        "reauth_time": "0",
                        "rekey_time": "14400",
                        "unique": "UNIQUE_NO",
                        "local-1": {
                            "class": "pre-shared key",
                            "id": "left",
                            "groups": [],
                            "cert_policy": [],
                            "certs": [],
                            "cacerts": [],
                        },
                        "remote-1": {
                            "class": "pre-shared key",
                            "id": "right",
                            "groups": [],
                            "cert_policy": [],
                            "certs": [],
                            "cacerts": [],
                        },
                        "children": {
                            "net": {
                                "mode": "TUNNEL",
                                "rekey_time": "3600",
                                "rekey_bytes": "0",
                                "rekey_packets": "0",
                                "dpd_action": "clear",
                                "close_action": "none",
                                "local-ts": ["198.51.100.1/32"],
                                "remote-ts": ["203.0.113.1/32"],
                            }
                        },
                    }
                },
            )
        ]
        changed = {"c": {**CONN["c"], "rekey_time": "1h"}}
        assert await call("load-conn", changed) == {"success": "yes"}
        assert daemon.engine.connections["c"].rekey_time == 3600.0
        assert daemon.engine.connections["c"] is daemon.config.connections["c"]
        assert await call("unload-conn", {"name": "c"}) == {"success": "yes"}
        assert await call("get-conns") == {"conns": []}
        assert "c" not in daemon.engine.connections
        assert await call("unload-conn", {"name": "c"}) == {
            "success": "no",
            "errmsg": "unload: connection 'c' not found",
        }
        assert await call("unload-conn") == {
            "success": "no",
            "errmsg": "unload: missing connection name",
        }

    run(test)


def test_refused_connection_changes_nothing() -> None:
    async def test(daemon: Daemon, call: Runner) -> None:
        bad = {"c": {**CONN["c"], "mediation": "yes"}}
        assert await call("load-conn", bad) == {
            "success": "no",
            "errmsg": "connections.c.mediation is not supported yet, config discarded",
        }
        assert await call("load-conn", {"c": {"weird": "1"}}) == {
            "success": "no",
            "errmsg": "unknown option: weird, config discarded",
        }
        assert daemon.config.connections == {}

    run(test)


def test_shared_secrets() -> None:
    async def test(daemon: Daemon, call: Runner) -> None:
        message = {"id": "ike-1", "type": "IKE", "data": "s3cret", "owners": ["left", "right"]}
        assert await call("load-shared", message) == {"success": "yes"}
        assert await call("load-shared", {"type": "IKE", "data": "anyone"}) == {"success": "yes"}
        assert await call("get-shared") == {"keys": ["ike-1"]}
        assert [s.secret for s in daemon.engine.auth.secrets] == [b"s3cret", b"anyone"]
        assert daemon.engine.secrets == daemon.engine.auth.secrets
        # the same id replaces
        assert await call("load-shared", {**message, "data": "new"}) == {"success": "yes"}
        assert [s.secret for s in daemon.engine.auth.secrets] == [b"anyone", b"new"]
        assert await call("unload-shared", {"id": "ike-1"}) == {"success": "yes"}
        assert [s.secret for s in daemon.engine.auth.secrets] == [b"anyone"]
        assert await call("unload-shared") == {
            "success": "no",
            "errmsg": "unique identifier missing",
        }
        assert await call("load-shared", {"type": "EAP", "data": "x"}) == {
            "success": "no",
            "errmsg": "EAP shared keys are not supported by Petrel",
        }
        assert await call("clear-creds") == {"success": "yes"}
        assert daemon.engine.auth.secrets == ()

    run(test)


def test_sighup_keeps_secrets_loaded_over_vici(tmp_path: Path) -> None:
    """A SIGHUP reload replaces the file's secrets and keeps those loaded over VICI."""
    conf = tmp_path / "swanctl.conf"

    async def test(daemon: Daemon, call: Runner) -> None:
        conf.write_text('secrets {\n  ike-f {\n    id = left\n    secret = "file-1"\n  }\n}\n')
        daemon.hooks._reload(str(conf))
        assert await call("load-shared", {"id": "v", "type": "IKE", "data": "vici"}) == {
            "success": "yes"
        }
        assert sorted(s.secret for s in daemon.engine.auth.secrets) == [b"file-1", b"vici"]
        conf.write_text('secrets {\n  ike-f {\n    id = left\n    secret = "file-2"\n  }\n}\n')
        daemon.hooks._reload(str(conf))
        assert sorted(s.secret for s in daemon.engine.auth.secrets) == [b"file-2", b"vici"]
        assert daemon.engine.secrets == daemon.engine.auth.secrets

    run(test)


def test_keys_and_certificates() -> None:
    ca = root(dn="C=CH, O=Petrel, CN=VICI Root")
    moon = leaf(ca)

    async def test(daemon: Daemon, call: Runner) -> None:
        reply = await call("load-key", {"type": "ecdsa", "data": moon.key.pem()})
        keyid = moon.key.public.pubkey_sha1.hex()
        assert reply == {"success": "yes", "id": keyid}
        assert await call("get-keys") == {"keys": [keyid]}
        assert await call("load-cert", {"type": "X509", "flag": "CA", "data": pem(ca.cert)}) == {
            "success": "yes"
        }
        assert await call("load-cert", {"type": "X509", "data": moon.cert.der}) == {
            "success": "yes"
        }
        store = daemon.engine.auth.store
        assert store.cas == (ca.cert,) and store.certificates == (moon.cert,)
        assert store.private_keys == (moon.key,)
        _reply, events = await call("list-certs")
        assert [(e["type"], e.get("flag"), e.get("has_privkey")) for _n, e in events] == [
            ("X509", "NONE", "yes"),
            ("X509", "CA", None),
        ]
        assert {n for n, _e in events} == {"list-cert"}
        _reply, events = await call("list-certs", {"type": "X509", "flag": "CA"})
        assert len(events) == 1
        assert await call("unload-key", {"id": "00" * 20}) == {
            "success": "no",
            "errmsg": "key not found",
        }
        assert await call("unload-key", {"id": keyid}) == {"success": "yes"}
        assert daemon.engine.auth.store.private_keys == ()
        # a connection's own certificate joins the store, as from swanctl.conf
        conn = {"pk": {"remote_addrs": ["192.0.2.2"], "local": {"certs": [pem(moon.cert)]}}}
        await call("clear-creds")
        assert await call("load-conn", conn) == {"success": "yes"}
        assert daemon.engine.auth.store.certificates == (moon.cert,)

    run(test)


def test_counters() -> None:
    async def test(daemon: Daemon, call: Runner) -> None:
        control = daemon.control
        assert isinstance(control, ControlCommands)
        control.on_event(ev.ChildSaDown(1, 2, "net", 1, 2, "rekeyed"))
        daemon.engine.drops.drop("message for an unknown IKE SA", 0.0)
        daemon.engine.drops.drop("malformed IKE message (INVALID_SYNTAX)", 0.0)
        auth_request = IkeHeader(b"\1" * 8, b"\2" * 8, 0x20, ExchangeType.IKE_AUTH, 1, 0)
        daemon.engine.messages.count(auth_request, True, "c")
        reply = await call("get-counters")
        assert reply["success"] == "yes"
        expected = dict.fromkeys(COUNTER_NAMES, "0")
        expected.update({"child-rekey": "1", "invalid": "1", "invalid-spi": "1"})
        assert reply["counters"][""] == {**expected, "ike-auth-in-req": "1"}
        assert list(reply["counters"][""])[5:9] == [
            "ike-init-in-req",
            "ike-init-in-resp",
            "ike-init-out-req",
            "ike-init-out-resp",
        ]
        per_conn = (await call("get-counters", {"name": "c"}))["counters"]["c"]
        assert per_conn["ike-auth-in-req"] == "1" and per_conn["child-rekey"] == "0"
        assert await call("reset-counters", {"name": "c"}) == {"success": "yes"}
        per_conn = (await call("get-counters", {"name": "c"}))["counters"]["c"]
        assert per_conn["ike-auth-in-req"] == "0"
        assert await call("get-counters", {"name": "nope"}) == {
            "counters": {},
            "success": "no",
            "errmsg": "no counters found for this connection",
        }
        assert await call("reset-counters") == {"success": "yes"}
        reply = await call("get-counters", {"all": "yes"})
        assert set(reply["counters"][""].values()) == {"0"}

    run(test)


@pytest.mark.parametrize(
    ("command", "message", "errmsg"),
    [
        ("install", {}, "missing configuration name"),
        ("install", {"child": "net"}, "configuration name not found"),
        ("uninstall", {"child": "net"}, "policy 'net' not found"),
        ("load-pool", {"p": {"dns": "192.0.2.53"}}, "missing addrs to load pool 'p'"),
        ("load-pool", {"p": {"addrs": "10.0.0.0/24", "nbns": "1.2.3.4"}}, "'nbns' is not"),
        ("load-pool", {"p": {"addrs": "10.0.0.9-10.0.0.1"}}, "empty"),
        ("unload-pool", {"name": "nope"}, "pool 'nope' not found"),
        ("load-authority", {"a": {}}, "authorities) are not supported by Petrel"),
        ("unload-authority", {"name": "a"}, "authorities) are not supported by Petrel"),
        ("get-authorities", {}, "authorities) are not supported by Petrel"),
        ("load-token", {"handle": "00"}, "tokens (PKCS#11) are not supported"),
        ("redirect", {"ike": "c"}, "redirects (RFC 5685) are not supported"),
    ],
)
def test_refused_commands(command: str, message: dict, errmsg: str) -> None:
    async def test(daemon: Daemon, call: Runner) -> None:
        reply = await call(command, message)
        assert reply["success"] == "no"
        assert errmsg in reply["errmsg"]

    run(test)


def test_pools_load_list_and_unload() -> None:
    async def test(daemon: Daemon, call: Runner) -> None:
        pool = {"addrs": "198.51.100.128/30", "dns": ["192.0.2.53"]}
        assert await call("load-pool", {"p": pool}) == {"success": "yes"}
        assert await call("get-pools") == {
            "p": {"base": "198.51.100.129", "size": "2", "online": "0", "offline": "0"}
        }
        lease = daemon.engine.pools["p"].acquire("carol@example.org")
        listed = await call("get-pools", {"leases": "yes", "name": "p"})
        assert listed["p"]["leases"] == {
            "0": {"address": str(lease), "identity": "carol@example.org", "status": "online"}
        }
        moved = {"addrs": "198.51.100.200/30"}
        reply = await call("load-pool", {"p": moved})
        assert reply["success"] == "no" and "leases online" in reply["errmsg"]
        assert (await call("unload-pool", {"name": "p"}))["success"] == "no"
        daemon.engine.pools["p"].release("carol@example.org", lease)
        assert await call("load-pool", {"p": moved}) == {"success": "yes"}
        assert await call("unload-pool", {"name": "p"}) == {"success": "yes"}
        assert await call("get-pools") == {}

    run(test)


def test_queries_answer() -> None:
    async def test(daemon: Daemon, call: Runner) -> None:
        assert await call("reload-settings") == {"success": "yes"}
        assert await call("flush-certs") == {"success": "yes"}
        algorithms = await call("get-algorithms")
        assert algorithms["aead"]["AES_GCM_16"] == "petrel"
        assert algorithms["dh"]["CURVE_25519"] == "petrel"
        assert algorithms["prf"]["PRF_HMAC_SHA2_256"] == "petrel"
        assert await call("list-policies", {"trap": "yes"}) == ({}, [])

    run(test)
