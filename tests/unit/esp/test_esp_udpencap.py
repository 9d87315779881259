"""UDP encapsulation classification (RFC 3948 §2)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from petrel.esp.udpencap import IKE_MARKER, UdpKind, classify, frame_ike, keepalive


def test_keepalive() -> None:
    kind, data = classify(keepalive())
    assert kind is UdpKind.KEEPALIVE
    assert bytes(data) == b""


def test_ike_marker_stripped() -> None:
    message = bytes(range(28))
    kind, data = classify(frame_ike(message))
    assert kind is UdpKind.IKE
    assert bytes(data) == message
    assert frame_ike(message)[:4] == IKE_MARKER


def test_esp_kept_whole() -> None:
    packet = b"\x00\x00\x01\x00" + b"\x00\x00\x00\x01" + b"x" * 40
    kind, data = classify(packet)
    assert kind is UdpKind.ESP
    assert bytes(data) == packet


def test_invalid() -> None:
    for payload in (b"", b"\x00", b"\xff\xff", b"\x01\x02\x03", IKE_MARKER, b"\x01\x02\x03\x04"):
        assert classify(payload)[0] is UdpKind.INVALID


@given(st.binary(max_size=64))
def test_arbitrary_bytes(payload: bytes) -> None:
    kind, data = classify(payload)
    if kind is UdpKind.ESP:
        assert payload[:4] != IKE_MARKER and len(payload) >= 8
    elif kind is UdpKind.IKE:
        assert IKE_MARKER + bytes(data) == payload
