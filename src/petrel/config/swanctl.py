"""swanctl.conf → Petrel's typed connection model.

Reads the ``connections`` and ``secrets`` sections of a strongSwan swanctl.conf (settings
syntax: :mod:`petrel.config.settings`) into frozen dataclasses.  Defaults and lifetime
arithmetic follow strongSwan's.  Whatever Petrel does not implement is refused by name — an
unknown key, or a known key with a value Petrel cannot honour yet — never silently ignored.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from petrel.credentials.constraints import AuthConstraint, ConstraintError
from petrel.credentials.identities import parse_identity
from petrel.crypto.errors import ProposalError
from petrel.crypto.pki_errors import CredentialError
from petrel.crypto.proposals import parse_proposals
from petrel.policy.connection import (
    AuthConfig,
    ChildConfig,
    Connection,
    SharedSecret,
    SwanctlConfig,
    best_psk,
)
from petrel.policy.identity import Identity, UnsupportedIdentity
from petrel.policy.pools import PoolConfig
from petrel.policy.selectors import Selector
from petrel.wire.payloads import Proposal
from petrel.wire.registry import ProtocolId, TransformType

from .credentials import KEY_SECRET_PREFIXES, load_named, load_store, warn_if_readable
from .errors import ConfigError
from .settings import Section, Setting, load_settings, parse_settings

__all__ = [
    "AuthConfig",
    "ChildConfig",
    "ConfigError",
    "Connection",
    "Identity",
    "SharedSecret",
    "SwanctlConfig",
    "best_psk",
    "load_swanctl",
    "parse_swanctl",
]


# -- value parsers ------------------------------------------------------------------------------


class _Ctx:
    """Where we are: the dotted path of the section being read."""

    def __init__(self, section: Section, path: str, base: Path | None = None) -> None:
        self.section = section
        self.path = path
        self.base = base  # the folder of swanctl.conf: credentials are found beside it

    def sub(self, section: Section, path: str) -> _Ctx:
        return _Ctx(section, path, self.base)

    def error(self, setting: Setting | None, message: str, key: str | None = None) -> ConfigError:
        if setting is None:
            full = f"{self.path}.{key}" if key else self.path
            return ConfigError(message, self.section.file, self.section.line, full)
        full = f"{self.path}.{setting.key}"
        return ConfigError(message, setting.file, setting.line, full)


_TRUE = frozenset(("yes", "true", "enabled", "1", "on"))
_FALSE = frozenset(("no", "false", "disabled", "0", "off"))
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_BYTE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_TIME_RE = re.compile(r"(\d+(?:\.\d*)?)\s*([smhd]?)")
_COUNT_RE = re.compile(r"(0x[0-9a-f]+|\d+)\s*([kmg]?)")


def _bool(ctx: _Ctx, s: Setting) -> bool:
    value = s.value.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ctx.error(s, f"{ctx.path}.{s.key}: expected yes or no, got '{s.value}'")


def _int(ctx: _Ctx, s: Setting, low: int = 0, high: int = (1 << 64) - 1) -> int:
    value = s.value.strip().lower()
    try:
        number = int(value, 16) if value.startswith("0x") else int(value, 10)
    except ValueError:
        raise ctx.error(s, f"{ctx.path}.{s.key}: invalid number '{s.value}'") from None
    if not low <= number <= high:
        raise ctx.error(s, f"{ctx.path}.{s.key}: {number} is outside {low}..{high}")
    return number


def _time(ctx: _Ctx, s: Setting) -> float:
    match = _TIME_RE.fullmatch(s.value.strip().lower())
    if not match:
        raise ctx.error(s, f"{ctx.path}.{s.key}: invalid duration '{s.value}'")
    return float(match.group(1)) * _TIME_UNITS[match.group(2)]


def _count(ctx: _Ctx, s: Setting) -> int:
    match = _COUNT_RE.fullmatch(s.value.strip().lower())
    if not match:
        raise ctx.error(s, f"{ctx.path}.{s.key}: invalid number '{s.value}'")
    return int(match.group(1), 0) * _BYTE_UNITS[match.group(2)]


def _port(ctx: _Ctx, s: Setting) -> int:
    return _int(ctx, s, 1, 65535)


def _list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _addrs(ctx: _Ctx, s: Setting) -> tuple[str, ...]:
    return _list(s.value) or ("%any",)


def _choice(
    supported: tuple[str, ...], unsupported: tuple[str, ...] = ()
) -> Callable[[_Ctx, Setting], str]:
    def parse(ctx: _Ctx, s: Setting) -> str:
        value = s.value.strip().lower()
        if value in supported:
            return value
        if value in unsupported:
            raise ctx.error(s, f"{ctx.path}.{s.key} = {value} is not supported yet")
        allowed = ", ".join(supported + unsupported)
        raise ctx.error(s, f"{ctx.path}.{s.key}: invalid value '{s.value}' (one of: {allowed})")

    return parse


def _proposals(protocol: ProtocolId) -> Callable[[_Ctx, Setting], tuple[Proposal, ...]]:
    def parse(ctx: _Ctx, s: Setting) -> tuple[Proposal, ...]:
        try:
            proposals = parse_proposals(s.value or "default", protocol)
        except ProposalError as exc:
            raise ctx.error(s, f"{ctx.path}.{s.key}: {exc}") from None
        if any(
            int(t.type) >= TransformType.ADDKE1 and int(t.id) != 0
            for p in proposals
            for t in p.transforms
        ):
            raise ctx.error(
                s, f"{ctx.path}.{s.key}: additional key exchanges (RFC 9370) are not supported yet"
            )
        return proposals

    return parse


def _selectors(ctx: _Ctx, s: Setting) -> tuple[Selector, ...]:
    items = _list(s.value) or ("dynamic",)
    try:
        return tuple(Selector.from_cidr(item) for item in items)
    except ValueError as exc:
        raise ctx.error(s, f"{ctx.path}.{s.key}: {exc}") from None


def _vips(ctx: _Ctx, s: Setting) -> tuple[str, ...]:
    """Virtual IPs to ask for: 0.0.0.0 / :: (any) or the address wanted, per family."""
    out = []
    for item in _list(s.value):
        try:
            out.append(str(ipaddress.ip_address(item)))
        except ValueError:
            raise ctx.error(s, f"{ctx.path}.{s.key}: {item!r} is not an IP address") from None
    return tuple(out)


def _identity(ctx: _Ctx, s: Setting) -> Identity:
    try:
        return parse_identity(s.value)  # distinguished names too: "C=CH, O=org, CN=moon"
    except UnsupportedIdentity as exc:
        raise ctx.error(s, f"{ctx.path}.{s.key}: {exc}") from None
    except ValueError as exc:
        raise ctx.error(s, f"{ctx.path}.{s.key}: invalid identity: {exc}") from None


def _version(ctx: _Ctx, s: Setting) -> int:
    value = s.value.strip()
    if value in ("0", "2", ""):
        return int(value or 0)
    if value == "1":
        raise ctx.error(s, f"{ctx.path}.version = 1 is not supported (Petrel speaks IKEv2 only)")
    raise ctx.error(s, f"{ctx.path}.version: invalid value '{value}' (0, 1 or 2)")


def _auth(ctx: _Ctx, s: Setting) -> str:
    """psk, null, or a public-key constraint strongSwan would accept (``rsa-3072``, …)."""
    value = s.value.strip()
    try:
        AuthConstraint.parse(value)
    except ConstraintError as exc:
        raise ctx.error(s, f"{ctx.path}.auth: {exc}") from None
    return value


def _names(ctx: _Ctx, s: Setting) -> tuple[str, ...]:
    return _list(s.value)


_Parser = Callable[[_Ctx, Setting], Any]

_CONNECTION_KEYS: dict[str, _Parser] = {
    "version": _version,
    "local_addrs": _addrs,
    "remote_addrs": _addrs,
    "local_port": _port,
    "remote_port": _port,
    "proposals": _proposals(ProtocolId.IKE),
    "encap": _bool,
    "mobike": _bool,
    "dpd_delay": _time,
    "dpd_timeout": _time,
    "fragmentation": _choice(("yes", "accept", "force", "no")),
    "childless": _choice(("allow", "prefer", "force", "never")),
    "pools": _names,
    "vips": _vips,
    "unique": _choice(("no", "never", "keep", "replace")),
    "send_cert": _choice(("always", "never", "ifasked")),
    "send_certreq": _bool,
    "keyingtries": _int,
    "rekey_time": _time,
    "reauth_time": _time,
    "over_time": _time,
    "rand_time": _time,
}
# Known keys Petrel does not implement yet, with the value that means "off"/default: that
# value (or an empty one) is accepted, anything else refused as not supported yet.
_CONNECTION_UNSUPPORTED = {
    "ppk_id": "",
    "ppk_required": "no",
    "if_id_in": "",
    "if_id_out": "",
    "aggressive": "no",
    "pull": "yes",
    "dscp": "000000",
    "mediation": "no",
    "mediated_by": "",
    "mediation_peer": "",
    "ocsp": "reply",
}

_AUTH_KEYS: dict[str, _Parser] = {
    "auth": _auth,
    "id": _identity,
    "certs": _names,
    "cacerts": _names,
    "pubkeys": _names,
    "revocation": _choice(("strict", "ifuri", "relaxed")),
}
_AUTH_UNSUPPORTED = {
    "ca_id": "",
    "eap_id": "",
    "aaa_id": "",
    "xauth_id": "",
    "groups": "",
    "cert_policy": "",
    "round": "0",
}
_AUTH_UNSUPPORTED_SECTIONS = ("cert", "cacert")

_CHILD_KEYS: dict[str, _Parser] = {
    "local_ts": _selectors,
    "remote_ts": _selectors,
    "esp_proposals": _proposals(ProtocolId.ESP),
    "mode": _choice(("tunnel",), ("transport", "transport_proxy", "beet", "pass", "drop", "iptfs")),
    "start_action": _choice(("none", "trap", "start"), ("trap|start",)),
    "close_action": _choice(("none", "trap", "start"), ("trap|start",)),
    "dpd_action": _choice(("clear", "trap", "restart"), ("trap|restart",)),
    "replay_window": lambda ctx, s: _int(ctx, s, 0, 1 << 20),
    "rekey_time": _time,
    "life_time": _time,
    "rand_time": _time,
    "rekey_bytes": _count,
    "life_bytes": _count,
    "rand_bytes": _count,
    "rekey_packets": _count,
    "life_packets": _count,
    "rand_packets": _count,
}
_CHILD_UNSUPPORTED = {
    "ah_proposals": "",
    "updown": "",
    "hostaccess": "no",
    "inactivity": "0",
    "reqid": "0",
    "priority": "0",
    "interface": "",
    "mark_in": "0",
    "mark_in_sa": "no",
    "mark_out": "0",
    "set_mark_in": "0",
    "set_mark_out": "0",
    "if_id_in": "",
    "if_id_out": "",
    "label": "",
    "label_mode": "",
    "tfc_padding": "0",
    "hw_offload": "no",
    "copy_df": "yes",
    "copy_ecn": "yes",
    "copy_dscp": "out",
    "sha256_96": "no",
    "policies": "yes",
    "policies_fwd_out": "no",
    "per_cpu_sas": "no",
    "ipcomp": "no",
}

_SECRET_UNSUPPORTED_PREFIXES = (
    "eap",
    "xauth",
    "ntlm",
    "ppk",
    "pkcs12",
    "token",
)


def _read_settings(
    ctx: _Ctx, parsers: dict[str, _Parser], unsupported: dict[str, str]
) -> dict[str, Any]:
    """Parse every setting of ``ctx.section``; refuse unknown and unsupported ones."""
    values: dict[str, Any] = {}
    for key, setting in ctx.section.settings.items():
        parser = parsers.get(key)
        if parser is not None:
            values[key] = parser(ctx, setting)
        elif key in unsupported:
            if setting.value.strip().lower() not in ("", unsupported[key]):
                raise ctx.error(setting, f"{ctx.path}.{key} is not supported yet")
        else:
            raise ctx.error(setting, f"unknown setting '{ctx.path}.{key}'")
    return values


_POOL_KEYS = ("addrs", "dns")
_POOL_UNSUPPORTED = frozenset(
    ("nbns", "dhcp", "netmask", "server", "subnet", "split_include", "split_exclude")
)


def _pools(ctx: _Ctx) -> dict[str, PoolConfig]:
    """``pools.<name>``: ``addrs`` (required) and ``dns``; other attributes not yet."""
    pools: dict[str, PoolConfig] = {}
    for name, sub in ctx.section.sections.items():
        pool = ctx.sub(sub, f"{ctx.path}.{name}")
        for inner in sub.sections.values():
            raise _unknown_section(pool, inner)
        for key, setting in sub.settings.items():
            if key in _POOL_UNSUPPORTED or key.isdigit():
                raise pool.error(setting, f"{pool.path}.{key} is not supported yet")
            if key not in _POOL_KEYS:
                raise pool.error(setting, f"unknown setting '{pool.path}.{key}'")
        addrs = sub.settings.get("addrs")
        if addrs is None:
            raise pool.error(None, f"{pool.path}.addrs is missing", "addrs")
        dns = sub.settings.get("dns")
        try:
            pools[name] = PoolConfig.parse(name, addrs.value, _list(dns.value) if dns else ())
        except ValueError as exc:
            raise pool.error(addrs, f"{pool.path}: {exc}") from None
    for setting in ctx.section.settings.values():
        raise ctx.error(setting, f"unknown setting '{ctx.path}.{setting.key}'")
    return pools


def _check_pool_names(
    connections: dict[str, Connection], pools: dict[str, PoolConfig], root: Section
) -> None:
    for conn in connections.values():
        for name in conn.pools:
            if name not in pools:
                where = f"connections.{conn.name}.pools"
                raise ConfigError(f"{where}: no pool '{name}'", root.file, root.line, where)


def _unknown_section(ctx: _Ctx, sub: Section, hint: str = "") -> ConfigError:
    message = f"unknown section '{ctx.path}.{sub.name}'{hint}"
    return ConfigError(message, sub.file, sub.line, f"{ctx.path}.{sub.name}")


# -- sections -----------------------------------------------------------------------------------


def _auth_config(ctx: _Ctx) -> AuthConfig:
    for name, sub in ctx.section.sections.items():
        if name.startswith(_AUTH_UNSUPPORTED_SECTIONS):
            raise ConfigError(
                f"{ctx.path}.{name}: certificate sections are not supported yet",
                sub.file,
                sub.line,
                f"{ctx.path}.{name}",
            )
        raise _unknown_section(ctx, sub)
    values = _read_settings(ctx, _AUTH_KEYS, _AUTH_UNSUPPORTED)
    for key in ("certs", "cacerts", "pubkeys"):
        if key in values:
            try:
                values[key] = load_named(key, values[key], ctx.base)
            except CredentialError as exc:
                raise ctx.error(ctx.section.settings[key], f"{ctx.path}.{key}: {exc}") from None
    return AuthConfig(**values)


def _lifetimes(
    ctx: _Ctx, values: dict[str, Any], unit: str, rekey_default: float | int
) -> dict[str, Any]:
    """strongSwan's defaults: life = rekey + 10 %, rand = life - rekey (RFC-independent)."""
    rekey = values.get(f"rekey_{unit}", rekey_default)
    life = values.get(f"life_{unit}")
    if life is None:
        life = rekey * 110 / 100 if unit == "time" else rekey * 110 // 100
    elif rekey and life and life < rekey:
        setting = ctx.section.settings[f"life_{unit}"]
        raise ctx.error(setting, f"{ctx.path}.life_{unit} ({life}) is below rekey_{unit} ({rekey})")
    rand = values.get(f"rand_{unit}")
    if rand is None:
        rand = max(life - rekey, 0)
    return {f"rekey_{unit}": rekey, f"life_{unit}": life, f"rand_{unit}": rand}


def _child(ctx: _Ctx) -> ChildConfig:
    for sub in ctx.section.sections.values():
        raise _unknown_section(ctx, sub)
    values = _read_settings(ctx, _CHILD_KEYS, _CHILD_UNSUPPORTED)
    values |= _lifetimes(ctx, values, "time", 3600.0)
    values |= _lifetimes(ctx, values, "bytes", 0)
    values |= _lifetimes(ctx, values, "packets", 0)
    return ChildConfig(name=ctx.section.name, **values)


def _pick_round(ctx: _Ctx, side: str) -> AuthConfig:
    rounds = [sub for name, sub in ctx.section.sections.items() if name.startswith(side)]
    if len(rounds) > 1:
        sub = rounds[1]
        raise ConfigError(
            f"{ctx.path}.{sub.name}: multiple authentication rounds are not supported yet",
            sub.file,
            sub.line,
            f"{ctx.path}.{sub.name}",
        )
    if not rounds:
        return AuthConfig()  # strongSwan's default: public-key authentication, default id
    return _auth_config(ctx.sub(rounds[0], f"{ctx.path}.{rounds[0].name}"))


def _connection(ctx: _Ctx) -> Connection:
    children: dict[str, ChildConfig] = {}
    for name, sub in ctx.section.sections.items():
        if name == "children":
            for child_name, child in sub.sections.items():
                path = f"{ctx.path}.children.{child_name}"
                children[child_name] = _child(_Ctx(child, path))
            for setting in sub.settings.values():
                raise _Ctx(sub, f"{ctx.path}.children").error(
                    setting, f"unknown setting '{ctx.path}.children.{setting.key}'"
                )
        elif not name.startswith(("local", "remote")):
            raise _unknown_section(ctx, sub)
    values = _read_settings(ctx, _CONNECTION_KEYS, _CONNECTION_UNSUPPORTED)
    rekey = values.get("rekey_time", 14400.0)
    reauth = values.get("reauth_time", 0.0)
    values.setdefault("over_time", max(rekey, reauth) * 10 / 100)
    values.setdefault("rand_time", values["over_time"])
    return Connection(
        name=ctx.section.name,
        local=_pick_round(ctx, "local"),
        remote=_pick_round(ctx, "remote"),
        children=children,
        **values,
    )


def _decode_secret(ctx: _Ctx, s: Setting) -> bytes:
    value = s.value
    try:
        if value.startswith("0x"):
            return bytes.fromhex(value[2:])
        if value.startswith("0s"):
            return base64.b64decode(value[2:], validate=True)
    except (ValueError, binascii.Error):
        raise ctx.error(s, f"{ctx.path}.{s.key}: invalid encoded secret") from None
    # Text from a file is UTF-8; VICI values are decoded with surrogateescape: either way the
    # secret's own octets come back.
    return value.encode("utf-8", "surrogateescape")


def _secret(ctx: _Ctx) -> SharedSecret:
    for sub in ctx.section.sections.values():
        raise _unknown_section(ctx, sub)
    secret: bytes | None = None
    ids: list[Identity] = []
    for key, setting in ctx.section.settings.items():
        if key == "secret":
            secret = _decode_secret(ctx, setting)
        elif key.startswith("id"):
            ids.append(_identity(ctx, setting))
        else:
            raise ctx.error(setting, f"unknown setting '{ctx.path}.{key}'")
    if not secret:
        raise ctx.error(None, f"{ctx.path}: a non-empty 'secret' is required", "secret")
    return SharedSecret(tuple(ids), secret)


def _key_passphrase(ctx: _Ctx) -> tuple[str, bytes]:
    """A ``private…``/``rsa…``/``ecdsa…``/``pkcs8…`` secret: the passphrase of ``file``."""
    for sub in ctx.section.sections.values():
        raise _unknown_section(ctx, sub)
    values: dict[str, Any] = {}
    for key, setting in ctx.section.settings.items():
        if key == "file":
            values[key] = setting.value
        elif key == "secret":
            values[key] = _decode_secret(ctx, setting)
        else:
            raise ctx.error(setting, f"unknown setting '{ctx.path}.{key}'")
    if "file" not in values or "secret" not in values:
        raise ctx.error(None, f"{ctx.path}: 'file' and 'secret' are both required")
    return values["file"], values["secret"]


def _secrets(ctx: _Ctx) -> tuple[tuple[SharedSecret, ...], dict[str, bytes]]:
    """The shared secrets, and the passphrases of encrypted private keys by file name."""
    for setting in ctx.section.settings.values():
        raise ctx.error(setting, f"unknown setting '{ctx.path}.{setting.key}'")
    result: list[SharedSecret] = []
    passphrases: dict[str, bytes] = {}
    for name, sub in ctx.section.sections.items():
        path = f"{ctx.path}.{name}"
        if name.startswith("ike"):
            result.append(_secret(_Ctx(sub, path)))
        elif name.startswith(KEY_SECRET_PREFIXES):
            file, secret = _key_passphrase(_Ctx(sub, path))
            passphrases[file] = secret
        elif name.startswith(_SECRET_UNSUPPORTED_PREFIXES):
            raise ConfigError(
                f"{path}: this kind of secret is not supported yet", sub.file, sub.line, path
            )
        else:
            raise _unknown_section(ctx, sub, " (secret sections are named ike…, eap…, …)")
    return tuple(result), passphrases


def _build(root: Section, base: Path | None = None) -> SwanctlConfig:
    for setting in root.settings.values():
        raise ConfigError(
            f"unknown setting '{setting.key}'", setting.file, setting.line, setting.key
        )
    connections: dict[str, Connection] = {}
    pools: dict[str, PoolConfig] = {}
    secrets: tuple[SharedSecret, ...] = ()
    passphrases: dict[str, bytes] = {}
    for name, sub in root.sections.items():
        if name == "connections":
            for setting in sub.settings.values():
                raise _Ctx(sub, name).error(setting, f"unknown setting 'connections.{setting.key}'")
            for conn_name, conn in sub.sections.items():
                ctx = _Ctx(conn, f"connections.{conn_name}", base)
                connections[conn_name] = _connection(ctx)
        elif name == "secrets":
            secrets, passphrases = _secrets(_Ctx(sub, "secrets"))
            if base is not None:  # read from files: each one holding a secret must be private
                warn_if_readable(
                    setting.file
                    for section in sub.sections.values()
                    for setting in section.settings.values()
                )
        elif name == "pools":
            pools = _pools(_Ctx(sub, "pools"))
        elif name == "authorities":
            if sub.settings or sub.sections:
                raise ConfigError(f"{name} are not supported yet", sub.file, sub.line, name)
        else:
            raise ConfigError(f"unknown section '{name}'", sub.file, sub.line, name)
    try:
        store = load_store(base, passphrases)
    except CredentialError as exc:
        raise ConfigError(f"credentials: {exc}", root.file, 0, "credentials") from None
    _check_pool_names(connections, pools, root)
    return SwanctlConfig(connections, secrets, store, pools)


def parse_swanctl(
    text: str, source: str = "<string>", base_dir: str | None = None
) -> SwanctlConfig:
    """Parse swanctl.conf ``text``; raises :class:`ConfigError`.  Credentials are read from
    the folders in ``base_dir`` (as beside swanctl.conf) when it is given."""
    return _build(parse_settings(text, source, base_dir), Path(base_dir) if base_dir else None)


def load_swanctl(path: str) -> SwanctlConfig:
    """Load a swanctl.conf file, or the ``swanctl.conf`` inside folder ``path``."""
    if os.path.isdir(path):
        path = os.path.join(path, "swanctl.conf")
    return _build(load_settings(path), Path(path).resolve().parent)
