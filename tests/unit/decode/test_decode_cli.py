"""End-to-end tests of ``petrel decode`` on the shipped sample and on hostile input."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dpkt
import pytest
from decode_helpers import SAMPLE_ESP_KEYS, SAMPLE_IKE_KEYS, SAMPLE_PCAP, pcapng_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from petrel.decode.capture import read_capture
from petrel.decode.cli import EXIT_MESSAGE_ERRORS, EXIT_OK, EXIT_USAGE, decode_main
from petrel.decode.dissect import AEAD_FAILED
from petrel.wire.registry import PayloadType

KEYS = ["--ike-keys", str(SAMPLE_IKE_KEYS), "--esp-keys", str(SAMPLE_ESP_KEYS)]


def run(argv: list[str], stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    status = decode_main(argv, stdin=io.StringIO(stdin), stdout=out)
    return status, out.getvalue()


def run_json(argv: list[str], stdin: str = "") -> tuple[int, list[dict]]:
    status, text = run([*argv, "--json"], stdin)
    return status, [json.loads(line) for line in text.splitlines()]


def test_sample_with_keys_lists_decrypted_inner_payloads() -> None:
    status, records = run_json([str(SAMPLE_PCAP), *KEYS])
    assert status == EXIT_OK
    by_frame = {r["frame"]: r for r in records}
    assert [r["frame"] for r in records] == list(range(1, 10))
    assert by_frame[1]["exchange"] == "IKE_SA_INIT"
    assert by_frame[1]["payloads"][:3] == ["SA", "KE", "NONCE"]
    auth_req = by_frame[3]
    assert auth_req["exchange"] == "IKE_AUTH" and auth_req["payloads"] == ["SK"]
    assert auth_req["inner_payloads"] == ["IDi", "NOTIFY", "AUTH", "SA", "TSi", "TSr"]
    assert auth_req["initiator"] is True and auth_req["response"] is False
    assert {"type": "INITIAL_CONTACT", "data": ""} in auth_req["notifies"]
    assert by_frame[4]["inner_payloads"] == ["IDr", "AUTH", "SA", "TSi", "TSr"]
    assert by_frame[4]["response"] is True and by_frame[4]["initiator"] is False
    assert by_frame[5]["kind"] == "esp" and by_frame[5]["decrypted"] is True
    assert by_frame[5]["inner"] == "IPv4 198.51.100.1 -> 203.0.113.1 icmp, 60 octets"
    assert by_frame[7]["kind"] == "keepalive"
    assert by_frame[8]["inner_payloads"] == ["DELETE"]
    assert by_frame[9]["inner_payloads"] == []
    assert not any("error" in r for r in records)


def test_sample_text_output_is_readable() -> None:
    status, text = run([str(SAMPLE_PCAP), *KEYS])
    assert status == EXIT_OK
    assert "Frame 3  2026-01-01 00:00:00.020000  192.0.2.1:4500 -> 192.0.2.2:4500" in text
    assert "IKE_AUTH request from initiator (flags 0x08), message ID 1" in text
    assert "#1 IKE: ENCR_AES_GCM_16 (256), PRF_HMAC_SHA2_256, KE CURVE25519" in text
    assert "IDi: FQDN initiator.petrel.example" in text
    assert "AUTH: method PSK, 32 octets" in text
    assert "#1 ESP spi c0ffee01: ENCR_AES_GCM_16 (256), NO_ESN" in text
    assert "198.51.100.0/24 proto any ports any" in text
    assert "NOTIFY: SIGNATURE_HASH_ALGORITHMS hashes SHA2_256, SHA2_384, SHA2_512" in text
    assert "DELETE: IKE (IKE SA)" in text
    keepalive = (
        "Frame 7  2026-01-01 00:00:00.060000  192.0.2.1:4500 -> 192.0.2.2:4500  NAT keepalive"
    )
    assert keepalive in text


def test_sample_without_keys_says_encrypted() -> None:
    status, records = run_json([str(SAMPLE_PCAP)])
    assert status == EXIT_OK
    auth_req = records[2]
    assert auth_req["inner_payloads"] is None and auth_req["decrypted"] is False
    assert auth_req["notes"] == ["encrypted (no keys for this IKE SA)"]
    assert records[4]["notes"] == ["ESP (not decrypted)"]


def test_wrong_key_reports_integrity_failure(tmp_path: Path) -> None:
    line = next(x for x in SAMPLE_IKE_KEYS.read_text().splitlines() if x and not x.startswith("#"))
    fields = line.split(",")
    fields[2] = ("0" if fields[2][0] != "0" else "1") + fields[2][1:]  # corrupt SK_ei only
    bad = tmp_path / "ikev2_decryption_table"
    bad.write_text(",".join(fields) + "\n")
    status, text = run([str(SAMPLE_PCAP), "--ike-keys", str(bad)])
    assert status == EXIT_MESSAGE_ERRORS
    assert text.count(f"ERROR: {AEAD_FAILED}") == 2  # frames 3 and 8, from the initiator
    assert "Traceback" not in text
    status, records = run_json([str(SAMPLE_PCAP), "--ike-keys", str(bad)])
    assert records[2]["error"] == AEAD_FAILED and records[2]["inner_payloads"] is None
    assert records[3]["inner_payloads"] == ["IDr", "AUTH", "SA", "TSi", "TSr"]


def _sample_ike_hex() -> list[str]:
    with open(SAMPLE_PCAP, "rb") as fh:
        return [d.data.hex() for d in read_capture(fh) if d.kind == "ike"]


def test_hex_stdin_decodes_like_the_capture() -> None:
    lines = _sample_ike_hex()
    # One line with a non-ESP marker and spaces, one comment, one blank line.
    lines[2] = "0000 0000 " + " ".join(lines[2][i : i + 8] for i in range(0, len(lines[2]), 8))
    text = "# sample\n\n" + "\n".join(lines) + "\n"
    status, records = run_json(["-", *KEYS], stdin=text)
    assert status == EXIT_OK
    assert [r["exchange"] for r in records] == [
        "IKE_SA_INIT",
        "IKE_SA_INIT",
        "IKE_AUTH",
        "IKE_AUTH",
        "INFORMATIONAL",
        "INFORMATIONAL",
    ]
    assert records[2]["inner_payloads"] == ["IDi", "NOTIFY", "AUTH", "SA", "TSi", "TSr"]
    assert records[0]["frame"] == 3  # frame numbers are line numbers for hex input
    assert records[0]["src"] is None and records[0]["time"] is None


def test_json_shape() -> None:
    _, records = run_json([str(SAMPLE_PCAP), *KEYS])
    required = {
        "frame": int,
        "time": float,
        "src": str,
        "dst": str,
        "sport": int,
        "dport": int,
        "spi_i": str,
        "spi_r": str,
        "exchange": str,
        "message_id": int,
        "initiator": bool,
        "response": bool,
        "payloads": list,
        "notifies": list,
    }
    for record in (r for r in records if r["kind"] == "ike"):
        for key, kind in required.items():
            assert isinstance(record[key], kind), key
        assert len(record["spi_i"]) == 16 and int(record["spi_i"], 16) >= 0
        assert isinstance(record["inner_payloads"], list | None)
        for notify in record["notifies"]:
            assert set(notify) >= {"type", "data"}


def test_malformed_message_reports_notify_name_not_traceback() -> None:
    good = _sample_ike_hex()[0]
    truncated = good[:-10]  # length field now disagrees with the datagram
    bad_version = good[:34] + "30" + good[36:]
    status, text = run(["-"], stdin=f"{truncated}\n{bad_version}\nzz\n")
    assert status == EXIT_MESSAGE_ERRORS
    assert "ERROR: INVALID_SYNTAX: IKE header length" in text
    assert "ERROR: INVALID_MAJOR_VERSION: major version 3" in text
    assert "ERROR: line is not hex" in text


def test_pcapng_input_matches_pcap(tmp_path: Path) -> None:
    with open(SAMPLE_PCAP, "rb") as fh:
        frames = [bytes(buf) for _, buf in dpkt.pcap.Reader(fh)]
    ng = tmp_path / "sample.pcapng"
    ng.write_bytes(pcapng_bytes(frames, dpkt.pcap.DLT_EN10MB))
    _, from_pcap = run_json([str(SAMPLE_PCAP), *KEYS])
    _, from_ng = run_json([str(ng), *KEYS])
    strip = [{k: v for k, v in r.items() if k != "time"} for r in from_pcap]
    assert [{k: v for k, v in r.items() if k != "time"} for r in from_ng] == strip


@pytest.mark.skipif(shutil.which("editcap") is None, reason="editcap not installed")
def test_editcap_pcapng(tmp_path: Path) -> None:
    ng = tmp_path / "sample.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", str(SAMPLE_PCAP), str(ng)], check=True)
    _, records = run_json([str(ng), *KEYS])
    assert records[2]["inner_payloads"] == ["IDi", "NOTIFY", "AUTH", "SA", "TSi", "TSr"]


def test_unreadable_inputs_exit_2(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pcap"
    garbage.write_bytes(b"this is not a capture file at all")
    assert run([str(garbage)])[0] == EXIT_USAGE
    assert run([str(tmp_path / "missing.pcap")])[0] == EXIT_USAGE
    bad_keys = tmp_path / "keys"
    bad_keys.write_text('# comment\naa,bb,cc,dd,"AES-XYZ",,,"NONE [RFC4306]"\n')
    assert run([str(SAMPLE_PCAP), "--ike-keys", str(bad_keys)])[0] == EXIT_USAGE
    assert run(["--no-such-option"])[0] == EXIT_USAGE


def test_truncated_capture_stops_quietly(tmp_path: Path) -> None:
    data = SAMPLE_PCAP.read_bytes()
    for cut in (24, 30, 100, len(data) // 2, len(data) - 3):
        path = tmp_path / f"cut{cut}.pcap"
        path.write_bytes(data[:cut])
        status, _ = run([str(path), *KEYS])
        assert status in (EXIT_OK, EXIT_MESSAGE_ERRORS)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(min_size=1, max_size=300))
def test_arbitrary_hex_never_crashes(data: bytes) -> None:
    status, text = run(["-", *KEYS], stdin=data.hex() + "\n")
    assert status in (EXIT_OK, EXIT_MESSAGE_ERRORS)
    assert text.startswith("Frame 1")


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 5), st.integers(0, 400), st.integers(1, 255))
def test_mutated_sample_messages_never_crash(index: int, position: int, xor: int) -> None:
    message = bytearray(bytes.fromhex(_sample_ike_hex()[index]))
    message[position % len(message)] ^= xor
    status, records = run_json(["-", *KEYS], stdin=message.hex() + "\n")
    assert status in (EXIT_OK, EXIT_MESSAGE_ERRORS)
    assert len(records) == 1


def _tshark_payload_types(tmp_path: Path) -> dict[int, list[int]]:
    profile = tmp_path / "xdg" / "wireshark"
    profile.mkdir(parents=True)
    shutil.copy(SAMPLE_IKE_KEYS, profile / "ikev2_decryption_table")
    shutil.copy(SAMPLE_ESP_KEYS, profile / "esp_sa")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)}
    result = subprocess.run(
        ["tshark", "-r", str(SAMPLE_PCAP), "-o", "esp.enable_encryption_decode:TRUE",
         "-T", "fields", "-e", "frame.number", "-e", "isakmp.typepayload", "-e", "icmp.type"],
        env=env, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    out: dict[int, list[int]] = {}
    for line in result.stdout.splitlines():
        frame, types, icmp = [*line.split("\t"), "", ""][:3]
        # isakmp.typepayload also lists proposal (2) and transform (3) substructures.
        out[int(frame)] = [int(t) for t in types.split(",") if t and int(t) > 3]
        if icmp:
            out[int(frame)].append(-int(icmp) - 1)  # marks a decrypted ICMP packet
    return out


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_decrypts_the_same_payloads_with_the_same_key_files(tmp_path: Path) -> None:
    theirs = _tshark_payload_types(tmp_path)
    _, records = run_json([str(SAMPLE_PCAP), *KEYS])
    ours: dict[int, list[int]] = {}
    for r in records:
        if r["kind"] == "ike":
            names = r["payloads"] + (r["inner_payloads"] or [])
            ours[r["frame"]] = [int(PayloadType[n]) for n in names]
        elif r["kind"] == "esp":
            assert r["decrypted"]
            ours[r["frame"]] = [-9 if "198.51.100.1 ->" in r["inner"] else -1]
        else:
            ours[r["frame"]] = []
    assert theirs == ours
    assert theirs[3] == [46, 35, 41, 39, 33, 44, 45]  # SK, IDi, N, AUTH, SA, TSi, TSr


def test_module_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "petrel.decode", str(SAMPLE_PCAP), *KEYS, "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 9


def test_sample_is_reproducible(tmp_path: Path) -> None:
    script = SAMPLE_PCAP.parent / "make_sample.py"
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, timeout=120)
    for name in ("ikev2-psk.pcap", "ikev2_decryption_table", "esp_sa"):
        assert (tmp_path / name).read_bytes() == (SAMPLE_PCAP.parent / name).read_bytes(), name
