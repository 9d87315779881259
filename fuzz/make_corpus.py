"""Build the committed seed corpora, fuzz/seeds/<target>/, from real traffic and configurations.

* ``decode``: every IKE message of ``samples/ikev2-psk.pcap``, every message the in-memory peers
  of ``fuzz_engine.py`` exchange in its scenarios (IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA,
  INFORMATIONAL, RFC 7383 fragments), and the decoder target's built-in seeds.
* ``engine``: one input per scenario that replays its captured message unchanged, and a few
  with one edit each (the input format is described in ``fuzz_engine.py`` and ``engine_forge.py``).
* ``esp``: the ESP packets and the NAT keepalive of ``samples/ikev2-psk.pcap`` (raw mode,
  decapsulated with its keys from ``samples/esp_sa``) and the built-in sessions (every suite).
* ``vici``: the requests, answers and events ``swanctl`` and Petrel exchange (built-in seeds).
* ``swanctl``: the swanctl.conf texts the lab writes for Petrel and strongSwan
  (``petrel.lab.strongswan.swanctl_psk_conf``), the engine target's configurations, and the
  target's seeds (includes).

Files are named ``<what>-<sha1 prefix>``; the folder of each target is replaced.  The engine
messages carry fresh key-exchange values, so ``decode`` differs from run to run; the other
corpora are reproducible.

Usage:  python3 fuzz/make_corpus.py [target ...]
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine_scenarios
import engine_scenarios_extra
import fuzz_decode
import fuzz_engine
import fuzz_esp
import fuzz_swanctl
import fuzz_vici
from _common import SEEDS_DIR

from petrel.decode.capture import read_capture_bytes
from petrel.lab.strongswan import swanctl_psk_conf

SAMPLE_PCAP = Path(__file__).resolve().parents[1] / "samples" / "ikev2-psk.pcap"
LIMIT = 1 << 20  # all corpora together


def _sample(kind: str) -> list[bytes]:
    return [d.data for d in read_capture_bytes(SAMPLE_PCAP.read_bytes()) if d.kind == kind]


def _engine_messages() -> list[tuple[str, bytes]]:
    """The datagrams of every engine scenario, as the peer sent them."""
    out = []
    for scenario in fuzz_engine.scenarios():
        for number, datagram in enumerate(scenario.raw):
            out.append((f"{scenario.name.replace('/', '-')}-{number}", datagram))
    return out


def decode() -> list[tuple[str, bytes]]:
    out = [(f"sample-pcap-{i}", m) for i, m in enumerate(_sample("ike"))]
    out += _engine_messages()
    out += [(f"builtin-{i}", s) for i, s in enumerate(fuzz_decode.seeds())]
    return out


def engine() -> list[tuple[str, bytes]]:
    names = [s.name.replace("/", "-") for s in fuzz_engine.scenarios()]
    out = [(f"replay-{names[i]}", s) for i, s in enumerate(fuzz_engine.seeds())]
    edits = [  # scenario, then the input's edits (see fuzz_engine.forge and one_input)
        ("auth-request-rfc822-id-fixed-auth", "gcm/auth-request", (2, 3, 0, 0, 0, 2, 9)),
        ("create-child-insert-notify", "gcm/create-child-request", (1, 8, 3, 5)),
        ("rekey-child-notify-protocol", "gcm/rekey-child-request", (1, 3, 0, 2, 0)),
        ("delete-child-insert-nonce", "gcm/delete-child-request", (1, 6, 0, 40)),
        ("create-child-answered-then-later", "gcm/create-child-request",
         (0, 0, 0, 0, 0, 0, 2, 0, 1, 4)),
        ("vip-auth-request-without-cp", "vip/auth-request", (1, 0, 4)),
        ("vip-auth-response-zero-address", "vip/auth-response", (1, 3, 2, 1, 5, 0, 1, 6)),
        ("mobike-update-from-another-nat", "mobike/update-request", (0, 0, 0, 0, 15, 1)),
        ("childless-create-child-without-ke", "childless/create-child-request", (1, 0, 2)),
    ]  # fmt: skip
    for label, name, edit in edits:
        index = [s.name for s in fuzz_engine.scenarios()].index(name)
        out.append((label, bytes((index, *edit))))
    return out


def esp() -> list[tuple[str, bytes]]:
    raw = bytes((fuzz_esp.RAW_MODE,))
    out = [(f"sample-pcap-esp-{i}", raw + p) for i, p in enumerate(_sample("esp"))]
    out += [(f"sample-pcap-keepalive-{i}", raw + p) for i, p in enumerate(_sample("keepalive"))]
    out += [(f"session-{i}", s) for i, s in enumerate(fuzz_esp.seeds())]
    return out


def vici() -> list[tuple[str, bytes]]:
    return [(f"builtin-{i}", s) for i, s in enumerate(fuzz_vici.seeds())]


def swanctl() -> list[tuple[str, bytes]]:
    texts = [
        swanctl_psk_conf(
            local_addr="192.0.2.1",
            remote_addr="192.0.2.2",
            local_id="left",
            remote_id="right",
            local_ts="10.1.0.0/16",
            remote_ts="10.2.0.0/16",
        ),
        swanctl_psk_conf(
            local_addr="2001:db8::1",
            remote_addr="%any",
            local_id="moon.example",
            remote_id="carol@example.org",
            local_ts="fd00:1::/64",
            remote_ts="dynamic",
            proposals="aes128-sha256-modp2048,aes256gcm16-prfsha384-mlkem768",
            esp_proposals="aes128-sha256-esn",
            conn_extra=("encap = yes", "dpd_delay = 30s", "rekey_time = 1h"),
            child_extra=("start_action = trap", "rekey_bytes = 1m", "replay_window = 1024"),
        ),
    ]
    for side, me, peer in (("left", "192.0.2.1", "192.0.2.2"), ("right", "192.0.2.2", "192.0.2.1")):
        texts.append(engine_scenarios._side_conf(side, me, peer, "gcm", True, side == "left"))
    texts.append(engine_scenarios._far_conf())
    for side, me, peer in (("left", "192.0.2.1", "192.0.2.2"), ("right", "192.0.2.2", "192.0.2.1")):
        text = engine_scenarios._side_conf(side, me, peer, "gcm", False, False)
        texts.append(engine_scenarios_extra.vip_tweak(side, text))  # vips, pools
        texts.append(engine_scenarios_extra.childless_force(side, text))
    out = [(f"config-{i}", bytes((0,)) + t.encode()) for i, t in enumerate(texts)]
    out += [(f"builtin-{i}", s) for i, s in enumerate(fuzz_swanctl.seeds())]
    return out


TARGETS = {"decode": decode, "engine": engine, "esp": esp, "vici": vici, "swanctl": swanctl}


def write(name: str) -> int:
    folder = SEEDS_DIR / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    seen = set()
    for label, data in TARGETS[name]():
        digest = hashlib.sha1(data).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        (folder / f"{label}-{digest[:10]}").write_bytes(data)
    return sum(p.stat().st_size for p in folder.iterdir())


def main(argv: list[str]) -> None:
    names = argv[1:] or list(TARGETS)
    for name in names:
        size = write(name)
        print(f"{name}: {len(list((SEEDS_DIR / name).iterdir()))} files, {size} octets")
    total = sum(p.stat().st_size for p in SEEDS_DIR.rglob("*") if p.is_file())
    if total > LIMIT:
        raise SystemExit(f"corpora total {total} octets, more than {LIMIT}")


if __name__ == "__main__":
    main(sys.argv)
