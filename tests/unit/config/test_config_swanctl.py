"""Tests for the swanctl.conf model."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from petrel.config.swanctl import (
    AuthConfig,
    ChildConfig,
    ConfigError,
    Connection,
    SharedSecret,
    load_swanctl,
    parse_swanctl,
)
from petrel.credentials.identities import format_identity
from petrel.crypto.proposals import parse_proposals
from petrel.policy.identity import Identity
from petrel.policy.selectors import Selector
from petrel.wire.registry import IdType, ProtocolId

# The verified PSK / AES-256-GCM / x25519 configuration of the lab (docs: shared/LAB.md).
LAB = """\
connections {
  c {
    local_addrs = 192.0.2.1
    remote_addrs = 192.0.2.2
    version = 2
    proposals = aes256gcm16-prfsha256-x25519
    local {
      auth = psk
      id = left
    }
    remote {
      auth = psk
      id = right
    }
    children {
      net {
        local_ts = 198.51.100.1/32
        remote_ts = 203.0.113.1/32
        esp_proposals = aes256gcm16
      }
    }
  }
}
secrets {
  ike-1 {
    id-1 = left
    id-2 = right
    secret = 0sdGVzdHRlc3R0ZXN0dGVzdA==
  }
}
"""

MINIMAL_CONN = """\
connections {{
  c {{
    {conn}
    local {{
      auth = psk
      {local}
    }}
    remote {{
      auth = psk
    }}
    children {{
      net {{
        {child}
      }}
    }}
  }}
}}
{extra}
"""


def conf(conn: str = "", child: str = "", local: str = "", extra: str = "") -> str:
    return MINIMAL_CONN.format(conn=conn, child=child, local=local, extra=extra)


def test_lab_config_model() -> None:
    config = parse_swanctl(LAB, "swanctl.conf")
    expected_child = ChildConfig(
        name="net",
        local_ts=(Selector.from_cidr("198.51.100.1/32"),),
        remote_ts=(Selector.from_cidr("203.0.113.1/32"),),
        esp_proposals=parse_proposals("aes256gcm16", ProtocolId.ESP),
        rekey_time=3600.0,
        life_time=3960.0,
        rand_time=360.0,
    )
    expected = Connection(
        name="c",
        version=2,
        local_addrs=("192.0.2.1",),
        remote_addrs=("192.0.2.2",),
        proposals=parse_proposals("aes256gcm16-prfsha256-x25519", ProtocolId.IKE),
        local=AuthConfig(auth="psk", id=Identity.parse("left")),
        remote=AuthConfig(auth="psk", id=Identity.parse("right")),
        children={"net": expected_child},
    )
    assert config.connections == {"c": expected}
    assert config.secrets == (
        SharedSecret((Identity.parse("left"), Identity.parse("right")), b"testtesttesttest"),
    )
    conn = config.connections["c"]
    assert (conn.local_port, conn.remote_port, conn.encap, conn.keyingtries) == (500, 500, False, 1)
    assert (conn.rekey_time, conn.reauth_time, conn.over_time, conn.rand_time) == (
        14400.0,
        0.0,
        1440.0,
        1440.0,
    )
    assert (conn.mobike, conn.fragmentation, conn.unique) == (True, "yes", "no")
    assert (conn.send_cert, conn.send_certreq, conn.dpd_delay) == ("ifasked", True, 0.0)
    child = conn.children["net"]
    assert (child.mode, child.start_action, child.close_action, child.dpd_action) == (
        "tunnel",
        "none",
        "none",
        "clear",
    )
    assert child.replay_window == 32


def test_find_psk() -> None:
    config = parse_swanctl(
        LAB
        + "secrets {\n ike-any { secret = anyone }\n"
        + " ike-carol { id = carol\n secret = 0x01020304 }\n}\n"
    )
    left, right, carol = (Identity.parse(x) for x in ("left", "right", "carol"))
    assert config.find_psk(left, right) == b"testtesttesttest"
    assert config.find_psk(left, carol) == b"\x01\x02\x03\x04"
    assert config.find_psk(Identity.parse("dave"), Identity.parse("eve")) == b"anyone"


def test_load_folder_with_conf_d(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "lab.conf").write_text(LAB)
    (tmp_path / "swanctl.conf").write_text("# main\ninclude conf.d/*.conf\n")
    config = load_swanctl(str(tmp_path))
    assert list(config.connections) == ["c"]
    assert load_swanctl(str(tmp_path / "swanctl.conf")) == config


def test_defaults_and_dynamic_selectors() -> None:
    config = parse_swanctl(conf())
    conn = config.connections["c"]
    assert conn.version == 0
    assert conn.local_addrs == ("%any",) and conn.remote_addrs == ("%any",)
    assert conn.proposals == parse_proposals("default", ProtocolId.IKE)
    assert conn.local.id is None and conn.remote.id is None
    child = conn.children["net"]
    assert child.local_ts == (Selector.dynamic_marker(),)
    assert child.remote_ts[0].dynamic
    assert child.esp_proposals == parse_proposals("default", ProtocolId.ESP)


def test_values_are_parsed() -> None:
    config = parse_swanctl(
        conf(
            conn="local_addrs = 192.0.2.1, 2001:db8::1\nremote_addrs = 192.0.2.0/24\n"
            "local_port = 4500\nremote_port = 0x1194\nencap = yes\nmobike = no\n"
            "keyingtries = 0\ndpd_delay = 30s\nrekey_time = 1h\nreauth_time = 2d\n"
            "fragmentation = force\nunique = never\nsend_cert = always\nsend_certreq = no\n"
            "childless = allow\n",
            child="local_ts = 10.0.0.0/24[tcp/80], dynamic[udp]\nremote_ts = %any\n"
            "mode = tunnel\nstart_action = trap\nclose_action = start\ndpd_action = restart\n"
            "replay_window = 0\nrekey_time = 10m\nrekey_bytes = 1M\nlife_packets = 1000\n",
        )
    )
    conn = config.connections["c"]
    assert conn.local_addrs == ("192.0.2.1", "2001:db8::1")
    assert conn.remote_addrs == ("192.0.2.0/24",)
    assert (conn.local_port, conn.remote_port) == (4500, 4500)
    assert conn.encap and not conn.mobike and conn.keyingtries == 0
    assert (conn.dpd_delay, conn.rekey_time, conn.reauth_time) == (30.0, 3600.0, 172800.0)
    assert conn.over_time == 17280.0 and conn.rand_time == 17280.0
    assert (conn.fragmentation, conn.unique, conn.send_cert, conn.send_certreq) == (
        "force",
        "never",
        "always",
        False,
    )
    child = conn.children["net"]
    assert child.local_ts == (
        Selector.from_cidr("10.0.0.0/24[tcp/80]"),
        Selector.dynamic_marker(17),
    )
    assert child.remote_ts == (Selector.from_cidr("0.0.0.0/0"),)
    assert (child.start_action, child.close_action, child.dpd_action) == (
        "trap",
        "start",
        "restart",
    )
    assert child.replay_window == 0
    assert (child.rekey_time, child.life_time, child.rand_time) == (600.0, 660.0, 60.0)
    assert (child.rekey_bytes, child.life_bytes, child.rand_bytes) == (
        1 << 20,
        (1 << 20) * 110 // 100,
        (1 << 20) * 110 // 100 - (1 << 20),
    )
    assert (child.rekey_packets, child.life_packets, child.rand_packets) == (0, 1000, 1000)


def test_explicit_lifetimes_win() -> None:
    config = parse_swanctl(conf(child="rekey_time = 100\nlife_time = 200\nrand_time = 5"))
    child = config.connections["c"].children["net"]
    assert (child.rekey_time, child.life_time, child.rand_time) == (100.0, 200.0, 5.0)


def test_over_time_and_rand_time_explicit() -> None:
    config = parse_swanctl(conf(conn="over_time = 5m\nrand_time = 0"))
    conn = config.connections["c"]
    assert (conn.over_time, conn.rand_time) == (300.0, 0.0)


def test_inheritance_between_connections() -> None:
    text = conf(conn="remote_addrs = 192.0.2.2\nproposals = aes128gcm16-prfsha256-ecp256") + (
        "connections {\n  d : connections.c {\n    remote_addrs = 192.0.2.3\n  }\n}\n"
    )
    config = parse_swanctl(text)
    c, d = config.connections["c"], config.connections["d"]
    assert d.remote_addrs == ("192.0.2.3",)
    assert d.proposals == c.proposals
    assert d.children["net"] == c.children["net"]
    assert d.name == "d"


def test_secret_encodings() -> None:
    config = parse_swanctl(
        'secrets {\n ike-a { secret = "plain text" }\n ike-b { secret = 0xdeadBEEF }\n'
        " ike-c { secret = 0sAAEC }\n ike-d { id = 192.0.2.1\n id-x = @host\n secret = s }\n}\n"
    )
    assert [s.secret for s in config.secrets] == [
        b"plain text",
        b"\xde\xad\xbe\xef",
        b"\x00\x01\x02",
        b"s",
    ]
    assert config.secrets[3].ids == (Identity.parse("192.0.2.1"), Identity.parse("host"))
    assert "plain" not in repr(config.secrets[0])


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_swanctl(text, "swanctl.conf")
    return info.value


def line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


@pytest.mark.parametrize(
    ("text", "needle", "key", "fragment"),
    [
        # unknown keys and sections
        (conf(conn="bogus = 1"), "bogus", "connections.c.bogus", "unknown setting"),
        (conf(child="bogus = 1"), "bogus", "connections.c.children.net.bogus", "unknown"),
        (conf(local="bogus = 1"), "bogus", "connections.c.local.bogus", "unknown"),
        (conf(extra="other { }"), "other", "other", "unknown section"),
        (conf(extra="top = 1"), "top", "top", "unknown setting"),
        (conf(conn="weird { }"), "weird", "connections.c.weird", "unknown section"),
        # known, not supported yet
        (conf(conn="version = 1"), "version", "connections.c.version", "IKEv2 only"),
        (conf(conn="vips = 0.0.0.0, elsewhere"), "vips", "connections.c.vips", "not an IP"),
        (conf(conn="childless = maybe"), "childless", "connections.c.childless", "childless"),
        (conf(conn="unique = sometimes"), "unique", "connections.c.unique", "unique"),
        (
            conf(conn="proposals = aes256gcm16-prfsha256-x25519-ke1_mlkem768"),
            "proposals",
            "connections.c.proposals",
            "RFC 9370",
        ),
        (
            conf(child="mode = transport"),
            "mode",
            "connections.c.children.net.mode",
            "mode = transport is not supported yet",
        ),
        (
            conf(child="start_action = trap|start"),
            "start_action",
            "connections.c.children.net.start_action",
            "not supported yet",
        ),
        (
            conf(child="ah_proposals = sha256"),
            "ah_proposals",
            "connections.c.children.net.ah_proposals",
            "not supported yet",
        ),
        (
            conf(child="updown = /bin/true"),
            "updown",
            "connections.c.children.net.updown",
            "not supported yet",
        ),
        (conf(local="certs = a.pem"), "certs", "connections.c.local.certs", "a.pem: No such"),
        (conf(extra="authorities { a { cacert = x } }"), "authorities", "authorities", "not supp"),
        (conf(extra="pools { p {\n dns = 192.0.2.53 } }"), "p {", "pools.p.addrs", "missing"),
        (
            conf(extra="pools { p {\n addrs = 10.3.0.0/24\n nbns = 1.2.3.4 } }"),
            "nbns",
            "pools.p.nbns",
            "not supported",
        ),
        (
            conf(extra="pools { p {\n addrs = 10.3.0.0/24\n wins = 1 } }"),
            "wins",
            "pools.p.wins",
            "unknown",
        ),
        (
            conf(extra="pools { p {\n addrs = 10.3.0.9-10.3.0.1 } }"),
            "addrs",
            "pools.p.addrs",
            "empty",
        ),
        (
            conf(extra="secrets { eap-a { secret = x } }"),
            "eap-a",
            "secrets.eap-a",
            "not supported yet",
        ),
        (
            conf(extra="secrets { private-a { file = k.pem } }"),
            "private-a",
            "secrets.private-a",
            "'file' and 'secret' are both required",
        ),
        # invalid values
        (conf(child="mode = bogus"), "mode", "connections.c.children.net.mode", "invalid value"),
        (conf(conn="encap = maybe"), "encap", "connections.c.encap", "expected yes or no"),
        (conf(conn="local_port = 70000"), "local_port", "connections.c.local_port", "outside"),
        (conf(conn="keyingtries = many"), "keyingtries", "connections.c.keyingtries", "invalid"),
        (conf(conn="rekey_time = 1w"), "rekey_time", "connections.c.rekey_time", "duration"),
        (conf(conn="proposals = aes256-bogus"), "proposals", "connections.c.proposals", "bogus"),
        (
            conf(child="esp_proposals = nope"),
            "esp_proposals",
            "connections.c.children.net.esp_proposals",
            "nope",
        ),
        (
            conf(child="local_ts = 10.0.0.0/33"),
            "local_ts",
            "connections.c.children.net.local_ts",
            "10.0.0.0/33",
        ),
        (
            conf(child="rekey_time = 100\nlife_time = 50"),
            "life_time",
            "connections.c.children.net.life_time",
            "below rekey_time",
        ),
        (conf(local="id = ipv4:nope"), "id = ipv4", "connections.c.local.id", "invalid identity"),
        (
            conf(extra="secrets { ike-a { secret = 0xZZ } }"),
            "ike-a",
            "secrets.ike-a.secret",
            "invalid encoded secret",
        ),
        (
            conf(extra="secrets { ike-a { id = x } }"),
            "ike-a",
            "secrets.ike-a.secret",
            "'secret' is required",
        ),
        (
            conf(extra="secrets { ike-a { secret = x\nfoo = y } }"),
            "foo",
            "secrets.ike-a.foo",
            "unknown setting",
        ),
        (conf(extra="secrets { wat { secret = x } }"), "wat", "secrets.wat", "unknown section"),
    ],
)
def test_refusals_name_file_line_and_key(text: str, needle: str, key: str, fragment: str) -> None:
    error = error_of(text)
    assert error.key == key
    assert fragment in error.message
    assert error.file == "swanctl.conf"
    assert error.line == line_of(text, needle)
    assert str(error).startswith(f"swanctl.conf:{error.line}: ")


@pytest.mark.parametrize(
    ("auth", "method"),
    [("psk", "psk"), ("null", "null"), ("pubkey", "pubkey"), ("rsa-2048-sha256", "pubkey")],
)
def test_auth_methods_accepted(auth: str, method: str) -> None:
    text = conf().replace("auth = psk\n      \n", f"auth = {auth}\n", 1)
    local = parse_swanctl(text).connections["c"].local
    assert local.auth == auth and local.method == method


@pytest.mark.parametrize(
    ("auth", "fragment"),
    [
        ("eap-mschapv2", "EAP and XAuth are not supported yet"),
        ("magic", "unknown key type 'magic'"),
    ],
)
def test_auth_methods_refused(auth: str, fragment: str) -> None:
    text = conf().replace("auth = psk\n      \n", f"auth = {auth}\n", 1)
    error = error_of(text)
    assert fragment in error.message
    assert error.key == "connections.c.local.auth"
    assert error.line == line_of(text, f"auth = {auth}")


def test_missing_auth_means_pubkey() -> None:
    text = "connections {\n  c {\n    local { id = a }\n    remote { auth = psk }\n  }\n}\n"
    conn = parse_swanctl(text).connections["c"]
    assert conn.local.auth == "pubkey" and conn.local.method == "pubkey"
    conn = parse_swanctl("connections {\n  c {\n    remote { auth = psk }\n  }\n}\n").connections[
        "c"
    ]
    assert conn.local == AuthConfig()


def test_distinguished_name_identity() -> None:
    local = parse_swanctl(conf(local="id = C=CH, O=Petrel, CN=moon")).connections["c"].local
    assert local.id is not None and local.id.id_type == IdType.DER_ASN1_DN
    assert format_identity(local.id) == "C=CH, O=Petrel, CN=moon"


def test_multiple_auth_rounds_refused() -> None:
    text = conf().replace("remote {", "local-2 {\n auth = psk\n }\n    remote {", 1)
    error = error_of(text)
    assert "multiple authentication rounds" in error.message
    assert error.line == line_of(text, "local-2")


def test_default_values_of_unsupported_keys_are_accepted() -> None:
    config = parse_swanctl(
        conf(conn="pull = yes\naggressive = no", child="hw_offload = no\npolicies = yes")
    )
    assert "c" in config.connections


def test_load_missing() -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_swanctl("/nonexistent-petrel-dir")


_WORDS = st.sampled_from(
    [
        "connections",
        "secrets",
        "children",
        "local",
        "remote",
        "net",
        "c",
        "ike-1",
        "auth = psk",
        "id = left",
        "secret = x",
        "local_ts = 10.0.0.0/24",
        "mode = tunnel",
        "rekey_time = 1h",
        "proposals = default",
        "version = 2",
        "{",
        "}",
        "\n",
        " ",
        ":",
        "c : connections.c",
        "=",
        "0x",
        "#",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_WORDS, max_size=30).map(" ".join))
def test_swanctl_soup_parses_or_raises_config_error(text: str) -> None:
    try:
        config = parse_swanctl(text, "soup.conf", base_dir="/nonexistent-petrel-dir")
    except ConfigError as exc:
        assert exc.file == "soup.conf" or exc.file.startswith("/")
    else:
        assert isinstance(config.connections, dict)


def test_secrets_readable_by_others_are_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conf_file = tmp_path / "swanctl.conf"
    conf_file.write_text(LAB)
    (tmp_path / "private").mkdir()
    key = tmp_path / "private" / "moon.key"
    key.write_bytes(b"")  # never parsed: the warning comes first, the load error after
    for mode in (0o644, 0o600):
        conf_file.chmod(mode)
        key.chmod(mode)
        caplog.clear()
        with caplog.at_level("WARNING", logger="petrel.cfg"), pytest.raises(ConfigError):
            load_swanctl(str(tmp_path))
        warned = {r.getMessage().split(" ")[0] for r in caplog.records}
        assert warned == ({str(conf_file), str(key)} if mode == 0o644 else set()), warned


def test_pools_and_the_connections_that_hand_them_out() -> None:
    config = parse_swanctl(
        conf(
            conn="pools = p", extra="pools { p {\n addrs = 198.51.100.128/29\n dns = 192.0.2.53 } }"
        ),
        "swanctl.conf",
    )
    assert config.connections["c"].pools == ("p",)
    pool = config.pools["p"]
    assert (str(pool.first), str(pool.last), [str(d) for d in pool.dns]) == (
        "198.51.100.129",
        "198.51.100.134",
        ["192.0.2.53"],
    )
    error = error_of(conf(conn="pools = q"))
    assert error.key == "connections.c.pools" and "no pool 'q'" in error.message
