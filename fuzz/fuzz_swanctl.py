"""Atheris target for the swanctl.conf reader (petrel.config: settings syntax and swanctl model).

The first octet chooses how the rest becomes a configuration text:

* ``0``: the octets themselves (UTF-8, undecodable octets kept as lone surrogates);
* ``1``: a *token soup*: each octet names a token (section and key names from the reader's
  own tables, values that mean something to it, braces, ``=``, ``:``, quotes, escapes,
  comments, newlines, ``include`` with files that exist, loop, are missing, are folders or
  are not UTF-8);
* ``2``: a *generated* configuration: well-formed sections, inheritance, includes and
  settings whose values fit (or nearly fit) their keys, so the checks behind the syntax run;
* ``3``: the text of mode 0 written to a file and read with ``load_swanctl`` (includes
  relative to that file).

Includes resolve in a private temporary folder made once per process.  The reader must
return a configuration or raise its ``ConfigError`` (with a file and a line) — nothing else.

Run:  python3 fuzz/fuzz_swanctl.py -atheris_runs=100000 [corpus_dir]
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import glob
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Input, KnownBug, instrumentation, tolerated
from _common import main as run_fuzzer

# The character-level settings parser is not instrumented: it tripled the cost of every
# execution; what it accepts still reaches the instrumented swanctl model.
with instrumentation(
    __name__,
    (
        "petrel.config.swanctl",
        "petrel.config.credentials",
        "petrel.policy",
        "petrel.crypto.proposals",
    ),
):
    from petrel.config import settings, swanctl
    from petrel.config.errors import ConfigError
    from petrel.config.swanctl import SwanctlConfig, load_swanctl, parse_swanctl

NAME = "swanctl"

GOOD_CONN = """connections {
  c {
    remote_addrs = 192.0.2.2
    proposals = aes256gcm16-prfsha256-x25519
    local { auth = psk
      id = moon }
    remote { auth = psk
      id = sun }
    children { net { local_ts = 10.1.0.0/16
        remote_ts = 10.2.0.0/16 } }
  }
}
"""
GOOD_SECRETS = 'secrets { ike-1 { id-1 = moon\n id-2 = sun\n secret = "s3cr3t" } }\n'
INCLUDE_FILES = {
    "conn.conf": GOOD_CONN,
    "secrets.conf": GOOD_SECRETS,
    "bad.conf": "connections { c { proposals = nonsense } }\n",
    "unclosed.conf": "connections { c {\n",
    "loop.conf": "include loop.conf\n",
    "chain1.conf": "include chain2.conf\n",
    "chain2.conf": "include sub/a.conf\n",
    "sub/a.conf": "c { version = 2 }\n",
    "sub/b.conf": "d : c { remote_port = 4500 }\n",
    "settings.conf": "rekey_time = 1h\ndpd_delay = 30s\n",
}

_TMP: list[str] = []


def include_dir() -> str:
    """The private folder ``include`` statements resolve in (made once per process)."""
    if not _TMP:
        folder = tempfile.mkdtemp(prefix="petrel-fuzz-swanctl-")
        atexit.register(shutil.rmtree, folder, True)
        for name, text in INCLUDE_FILES.items():
            path = Path(folder, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        Path(folder, "nonutf8.conf").write_bytes(b"connections { c\xff\xfe { } }\n")
        Path(folder, "dir.conf").mkdir()
        _TMP.append(folder)
    return _TMP[0]


def _inside(path: str) -> bool:
    if "\0" in path:  # names no file: the real call must see it (and fail as it does)
        return True
    folder = include_dir()
    return os.path.realpath(path).startswith(folder + os.sep)


class _ConfinedGlob:
    """``glob`` for the reader under test: patterns outside the include folder match nothing."""

    has_magic = staticmethod(glob.has_magic)

    @staticmethod
    def glob(pattern: str, *args: object, **kwargs: object) -> list[str]:
        head = pattern
        while glob.has_magic(head):
            head = os.path.dirname(head)
        if not _inside(os.path.join(head, "x")):
            return []
        return glob.glob(pattern, *args, **kwargs)  # type: ignore[arg-type]


_OPEN = io.open


def _confined_open(file: object, *args: object, **kwargs: object) -> object:
    if isinstance(file, str | bytes | os.PathLike) and not _inside(os.fsdecode(file)):
        raise PermissionError(f"{os.fsdecode(file)}: outside the fuzzer's include folder")
    return _OPEN(file, *args, **kwargs)  # type: ignore[call-overload]


@contextlib.contextmanager
def confined() -> Iterator[None]:
    """While the reader runs, no file outside the include folder is listed by an ``include``
    pattern or opened at all (a text saying ``include /proc/*`` or ``certs = /proc/kcore`` must
    not read /proc/kcore): opening one fails as an unreadable file does (PermissionError, an
    OSError), which the reader must turn into a ConfigError.  ``open`` is replaced for the
    whole process meanwhile (``builtins.open``, ``io.open``: pathlib reads through it)."""
    settings.glob = _ConfinedGlob  # type: ignore[attr-defined,assignment]
    builtins.open = io.open = _confined_open  # type: ignore[assignment]
    try:
        yield
    finally:
        settings.glob = glob  # type: ignore[attr-defined]
        builtins.open = io.open = _OPEN


def _keys(name: str) -> list[str]:
    table = getattr(swanctl, name, {})
    return sorted(table) if isinstance(table, dict) else []


SECTION_NAMES = [
    "connections", "secrets", "children", "local", "remote", "local-1", "remote-2", "ike",
    "ike-1", "ike-x", "eap-1", "pools", "authorities", "c", "d", "net", "cert", "cacert",
]  # fmt: skip
CONNECTION_KEYS = _keys("_CONNECTION_KEYS") + _keys("_CONNECTION_UNSUPPORTED")[:3]
CHILD_KEYS = _keys("_CHILD_KEYS") + _keys("_CHILD_UNSUPPORTED")[:3]
AUTH_KEYS = ["id", "id", *_keys("_AUTH_UNSUPPORTED")[:2]]
KEYS = sorted(
    {
        *_keys("_CONNECTION_KEYS"),
        *_keys("_CONNECTION_UNSUPPORTED"),
        *_keys("_CHILD_KEYS"),
        *_keys("_CHILD_UNSUPPORTED"),
        *_keys("_AUTH_KEYS"),
        *_keys("_AUTH_UNSUPPORTED"),
        "secret", "id", "id-1", "id-2", "idx", "auth", "include",
    }
)  # fmt: skip
VALUES_BY_KEY = {
    "proposals": ["aes256gcm16-prfsha256-x25519", "default", "aes128-sha256-modp2048",
                  "aes128-sha1-ecp256,aes256-sha384-curve448", "aes256gcm16", "aes128-sha256",
                  "chacha20poly1305-prfsha512-mlkem768", "aes128-sha256-x25519-ke1_mlkem768"],
    "esp_proposals": ["aes256gcm16", "aes128-sha256-modp2048-esn", "default", "aes128gmac",
                      "null-sha256", "aes256gcm16-prfsha256", "aes128-sha256-noesn-esn"],
    "local_ts": ["10.1.0.0/16", "dynamic", "0.0.0.0/0[tcp/80]", "::/0", "10.0.0.1-10.0.0.9",
                 "10.1.0.0/16[udp/%any]", "fe80::/10[icmp6/128]", "10.1.0.0/33"],
    "auth": ["psk", "pubkey", "eap-md5", "xauth", "PSK", "null"],
    "id": ["moon", "@moon.example", "carol@example.org", "192.0.2.1", "2001:db8::1",
           "C=CH, O=strongSwan, CN=moon", "%any", "keyid:0x0102", "@#0102", "asn1dn:#30"],
    "secret": ["s3cr3t", "0x0102abcd", "0sdGVzdA==", "0s!!", "0xzz", '"quoted secret"', ""],
    "local_addrs": ["192.0.2.1", "%any", "192.0.2.0/24", "192.0.2.1-192.0.2.9", "moon.local",
                    "2001:db8::1, 192.0.2.1", "%any6"],
}  # fmt: skip
VALUES_BY_KEY["remote_ts"] = VALUES_BY_KEY["local_ts"]
VALUES_BY_KEY["remote_addrs"] = VALUES_BY_KEY["local_addrs"]
for _key in ("id-1", "id-2", "idx"):
    VALUES_BY_KEY[_key] = VALUES_BY_KEY["id"]
GENERIC_VALUES = [
    "yes", "no", "0", "1", "2", "4500", "65536", "-1", "1h", "30s", "1.5m", "2d", "10x", "0x10",
    "1k", "100g", "4294967296", "18446744073709551616", "none", "trap", "start", "restart",
    "clear", "tunnel", "transport", "force", "accept", "never", "keep", "replace", "ifasked",
    "always", "allow", "trap|start", "", " ", '"a b"', '"\\n"', "é", "\udcff",
]  # fmt: skip
INCLUDE_TARGETS = [
    "conn.conf", "secrets.conf", "bad.conf", "unclosed.conf", "loop.conf", "chain1.conf",
    "sub/*.conf", "sub/a.conf", "missing.conf", "dir.conf", "nonutf8.conf", "*.nothing",
    "settings.conf", "sub/[ab].conf", "", '"conn.conf"', "/nonexistent/petrel.conf",
]  # fmt: skip
PUNCTUATION = [
    " ", "\n", "\t", "{", "}", "=", ":", ",", "#", '"', "\\", ".", "\r\n", "\\\n", " = ",
    " {\n", "}\n", "# comment\n", '"', "\\\"", "include ", "-", "[", "]", "/", "%any",
]  # fmt: skip
TOKENS = [
    *PUNCTUATION,
    *SECTION_NAMES,
    *KEYS,
    *(v for values in VALUES_BY_KEY.values() for v in values),
    *GENERIC_VALUES,
    *INCLUDE_TARGETS,
]


def token_soup(data: bytes) -> str:
    return "".join(TOKENS[b % len(TOKENS)] for b in data)


def _value(inp: Input, key: str) -> str:
    choices = VALUES_BY_KEY.get(key)
    if choices and not inp.chance(5):
        return inp.pick(choices)
    if inp.chance(8):
        return inp.blob(12).decode("utf-8", "surrogateescape")
    return inp.pick(GENERIC_VALUES)


def _settings(inp: Input, keys: list[str], most: int) -> list[str]:
    lines = []
    for _ in range(inp.int(most + 1)):
        key = inp.pick(keys) if not inp.chance(10) else inp.pick(KEYS)
        lines.append(f"{key} = {_value(inp, key)}")
    return lines


def _include(inp: Input) -> str:
    good = ("conn.conf", "secrets.conf", "settings.conf", "sub/*.conf")
    return f"include {inp.pick(good) if inp.bool() else inp.pick(INCLUDE_TARGETS)}"


def _connection(inp: Input) -> str:
    lines = _settings(inp, CONNECTION_KEYS, 4)
    for side in ("local", "remote"):
        if inp.chance(10):
            continue
        name = side + inp.pick(("", "", "", "-1", "-2", "x"))
        body = [f"auth = {inp.pick(VALUES_BY_KEY['auth'])}" if inp.chance(6) else "auth = psk"]
        body += _settings(inp, AUTH_KEYS, 2)
        if inp.chance(12):
            body.append("cert {\n}")
        lines.append(f"{name} {{\n" + "\n".join(body) + "\n}")
    children = []
    for _ in range(inp.int(3)):
        name = inp.pick(("net", "net", "web", "n-1", "a.b"))
        children.append(f"{name} {{\n" + "\n".join(_settings(inp, CHILD_KEYS, 5)) + "\n}")
    if children or inp.chance(4):
        lines.append("children {\n" + "\n".join(children) + "\n}")
    if inp.chance(8):
        lines.append(_include(inp))
    return "\n".join(lines)


def generated(inp: Input) -> str:
    """A well-formed settings text shaped like swanctl.conf, with a few things wrong."""
    parts = []
    for _ in range(1 + inp.int(3)):
        top = inp.pick(("connections", "connections", "secrets", "secrets", "include", "x"))
        if top == "include":
            parts.append(_include(inp))
            continue
        sections = []
        for _ in range(1 + inp.int(2)):
            if top == "secrets":
                name = inp.pick(("ike-1", "ike", "ike-b", "ike-1", "eap-1", "rsa", "x"))
                body = "\n".join(_settings(inp, ["secret", "id", "id-1", "id-2", "idx"], 3))
            else:
                name = inp.pick(("c", "c", "d", "e"))
                if inp.chance(6):
                    name += " : " + inp.pick(("connections.c", "c", "connections.d", "x.y"))
                body = _connection(inp) if top == "connections" else ""
            sections.append(f"{name} {{\n{body}\n}}")
        parts.append(f"{top} {{\n" + "\n".join(sections) + "\n}")
    return "\n".join(parts) + "\n"


def check(read: object) -> None:
    try:
        result = read()  # type: ignore[operator]
    except ConfigError as exc:
        if not isinstance(exc.file, str) or not isinstance(exc.line, int) or exc.line < 0:
            raise AssertionError(f"ConfigError without a place: {exc.file!r}:{exc.line!r}") from exc
        if not str(exc).startswith(f"{exc.file}:{exc.line}: "):
            raise AssertionError(f"ConfigError text without its place: {exc}") from exc
        return
    if not isinstance(result, SwanctlConfig):
        raise AssertionError(f"neither a configuration nor ConfigError: {result!r}")
    for name, conn in result.connections.items():
        if conn.name != name or not conn.proposals:
            raise AssertionError(f"connection {name!r}: {conn!r}")
        for child_name, child in conn.children.items():
            if child.name != child_name or not child.esp_proposals:
                raise AssertionError(f"child {child_name!r}: {child!r}")


KNOWN_BUGS: tuple[KnownBug, ...] = ()  # none open: each fixed one has its regression test


def TestOneInput(data: bytes) -> None:
    try:
        one_input(data)
    except Exception as exc:
        if not tolerated(exc, KNOWN_BUGS):
            raise


def one_input(data: bytes) -> None:
    folder = include_dir()
    inp = Input(data)
    mode = inp.byte() % 4
    if mode == 1:
        text = token_soup(data[1:])
    elif mode == 2:
        text = generated(inp)
    else:
        text = data[1:].decode("utf-8", "surrogateescape")
    with confined():
        if mode == 3:
            path = os.path.join(folder, "fuzzed.conf")
            Path(path).write_text(text, encoding="utf-8", errors="surrogateescape")
            check(lambda: load_swanctl(path))
        else:
            check(lambda: parse_swanctl(text, "fuzzed.conf", folder))


def seeds() -> list[bytes]:
    texts = [GOOD_CONN + GOOD_SECRETS, "include conn.conf\ninclude secrets.conf\n"]
    texts.append("connections {\n include sub/*.conf\n}\n")
    out = [bytes((0,)) + t.encode() for t in texts]
    out.append(bytes((3,)) + b"include chain1.conf\n")
    out.append(bytes((1,)) + bytes(range(0, 120, 3)))
    out.append(bytes((2,)) + bytes(range(40)))
    return out


if __name__ == "__main__":
    include_dir()
    run_fuzzer(NAME, sys.argv, TestOneInput, seeds=seeds, defaults=("-max_len=1024",))
