"""IKE message fragmentation and reassembly (RFC 7383), sans-I/O.

Sending (§2.5): the inner payload chain is encoded once; if the whole protected message fits
the datagram limit it goes out as one ordinary SK message, otherwise the *plaintext* chain is
cut into chunks and each chunk is sealed on its own into an Encrypted Fragment (SKF) payload,
with the IKE header and SKF header (final lengths included) as the AAD / ICV prefix.

Receiving (§2.6): :class:`Reassembler` verifies and decrypts every fragment as it arrives,
keeps the fragments of one Message ID at a time and hands back the decoded inner chain once
fragments 1..N are all there.  Whatever is wrong with a single fragment only discards that
fragment (counted in :attr:`Reassembler.drops`); the peer retransmits (§2.6.1).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..crypto.errors import CryptoError
from ..crypto.sk import SkCipher
from ..wire.codec import (
    SK_GENERIC_HEADER_LEN,
    SKF_HEADER_LEN,
    decode_payloads,
    encode_header,
    encode_payloads,
    sk_generic_header,
    skf_header,
)
from ..wire.payloads import IKE_HEADER_LEN, SKF, IkeHeader, Message, Payload
from ..wire.registry import PayloadType

__all__ = [
    "DEFAULT_FRAGMENT_SIZE",
    "IPV4_MIN_DATAGRAM",
    "IPV6_MIN_DATAGRAM",
    "MAX_FRAGMENTS",
    "MAX_REASSEMBLED",
    "REASSEMBLY_TIMEOUT",
    "Reassembler",
    "fragment_message",
    "ike_payload_limit",
    "open_fragment",
]

IPV6_MIN_DATAGRAM = 1280
"""RFC 7383 §2.5.1: IPv6 minimum MTU, the recommended IP datagram size for fragments."""
IPV4_MIN_DATAGRAM = 576
"""RFC 7383 §2.5.1: IPv4 minimum reassembly size, the recommended size on IPv4."""
DEFAULT_FRAGMENT_SIZE = 1280
"""strongSwan's ``charon.fragment_size`` default: a whole IP datagram of 1280 octets."""

MAX_FRAGMENTS = 64
"""Most fragments one reassembled message may have (a local DoS bound, §5)."""
MAX_REASSEMBLED = 64 * 1024
"""Most plaintext octets one reassembled message may have (a local DoS bound, §5)."""
REASSEMBLY_TIMEOUT = 10.0
"""Seconds after its first fragment that an incomplete reassembly is discarded."""

_IP_HEADER = {4: 20, 6: 40}
_UDP_HEADER = 8
_MAX_TOTAL = 0xFFFF  # Total Fragments is a 16-bit field (§2.5)


def ike_payload_limit(ip_datagram: int, ip_version: int) -> int:
    """The UDP payload octets left in an ``ip_datagram``-octet IP packet (§2.5.1).

    ``ike_payload_limit(DEFAULT_FRAGMENT_SIZE, 6)`` is the ``max_datagram`` for
    :func:`fragment_message` that matches strongSwan's default; pass ``marker_len=4`` there too
    when the socket is the NAT-T one (port 4500, RFC 3948 non-ESP marker).
    """
    return ip_datagram - _IP_HEADER[ip_version] - _UDP_HEADER


def _max_chunk(cipher: SkCipher, budget: int) -> int:
    """The largest plaintext length whose sealed body fits ``budget`` octets (0 if none)."""
    block = max(cipher.encr.block_size, 1)
    room = budget - cipher.encr.iv_size - cipher.icv_size
    length = (room // block) * block - 1  # padding adds at least the pad-length octet
    while length > 0 and cipher.body_length(length) > budget:
        length -= 1
    return max(length, 0)


def _header(template: IkeHeader, next_payload: int, length: int) -> bytes:
    return encode_header(
        IkeHeader(
            spi_i=template.spi_i,
            spi_r=template.spi_r,
            next_payload=next_payload,
            exchange=template.exchange,
            message_id=template.message_id,
            flags=template.flags,
            major=template.major,
            minor=template.minor,
            length=length,
        )
    )


def fragment_message(
    header: IkeHeader,
    payloads: Sequence[Payload],
    cipher: SkCipher,
    max_datagram: int,
    marker_len: int = 0,
    min_fragments: int = 0,
) -> list[bytes]:
    """The IKE messages carrying one protected message, each ``<= max_datagram - marker_len``.

    ``max_datagram`` is the UDP payload limit (see :func:`ike_payload_limit`); ``marker_len``
    is the non-ESP marker the transport will prepend (0 or 4).  A message that fits is one
    SK message laid out exactly as :func:`petrel.ike.protect.build_protected` makes it;
    otherwise it becomes N SKF messages numbered 1..N (§2.5), every one sealed separately.

    ``min_fragments`` forces at least that many fragments: when a retransmission is
    re-fragmented with a smaller size, pass the previous Total Fragments + 1 so the peer
    restarts reassembly instead of mixing fragments cut at different boundaries (§2.5.3,
    §2.6).  Raises ValueError if ``max_datagram`` cannot carry even one octet per fragment
    or the message would need more than 65535 fragments.
    """
    first, inner = encode_payloads(tuple(payloads))
    sk_body = cipher.body_length(len(inner))
    sk_len = IKE_HEADER_LEN + SK_GENERIC_HEADER_LEN + sk_body
    if min_fragments <= 1 and sk_len + marker_len <= max_datagram:
        aad = _header(header, PayloadType.SK, sk_len) + sk_generic_header(first, sk_body)
        return [aad + cipher.seal(aad, inner)]

    chunk = _max_chunk(cipher, max_datagram - marker_len - IKE_HEADER_LEN - SKF_HEADER_LEN)
    if chunk < 1:
        raise ValueError(f"a {max_datagram}-octet datagram cannot carry an IKE fragment")
    count = max(-(-len(inner) // chunk), min_fragments, 1)
    if count > _MAX_TOTAL:
        raise ValueError(f"message needs {count} fragments, more than Total Fragments allows")
    if count > max(len(inner), 1):
        raise ValueError(f"cannot cut {len(inner)} octets into {count} non-empty fragments")
    # Even cut: the first ``extra`` chunks are one octet longer, none longer than ``chunk``.
    base, extra = divmod(len(inner), count)
    datagrams: list[bytes] = []
    pos = 0
    for number in range(1, count + 1):
        size = base + (1 if number <= extra else 0)
        piece = inner[pos : pos + size]
        pos += size
        body_len = cipher.body_length(len(piece))
        total_len = IKE_HEADER_LEN + SKF_HEADER_LEN + body_len
        aad = _header(header, PayloadType.SKF, total_len) + skf_header(
            first if number == 1 else 0, number, count, body_len
        )
        datagrams.append(aad + cipher.seal(aad, piece))
    return datagrams


def open_fragment(data: bytes, message: Message, cipher: SkCipher) -> bytes:
    """Verify and decrypt the SKF payload ending ``message`` (decoded from ``data``).

    Returns this fragment's share of the inner chain.  Raises
    :class:`petrel.crypto.errors.CryptoError` (IntegrityError on a bad ICV) and ValueError if
    the message does not end in an SKF payload.  The engine can use it on its own to
    authenticate fragment 1 of a retransmitted request before resending its response (§2.6.1).
    """
    skf = message.payloads[-1] if message.payloads else None
    if not isinstance(skf, SKF):
        raise ValueError("message does not end with an SKF payload")
    aad = bytes(data[: len(data) - len(skf.body)])
    return cipher.open(aad, skf.body)


@dataclass(slots=True)
class _Pending:
    message_id: int
    total: int
    started: float
    exchange: int
    flags: int
    first: int = 0
    size: int = 0
    chunks: dict[int, bytes] = field(default_factory=dict)


class Reassembler:
    """Incoming fragments of one IKE SA in one direction (requests or responses) (§2.6).

    Only the Message ID the caller expects is accepted (the engine knows it: the next request
    ID, or the ID of its own outstanding request); fragments of any other message are
    discarded, and a retransmitted request is the engine's to recognise (§2.6.1, see
    :func:`open_fragment`).  At most one message is in reassembly; a fragment for a newer
    expected ID abandons the older one.

    ``drops`` counts discarded fragments by reason: ``not_skf``, ``message_id``,
    ``bad_number``, ``too_many``, ``next_payload``, ``total_smaller``, ``duplicate``,
    ``inconsistent``, ``integrity``, ``too_big``; ``timeout`` and ``superseded`` count abandoned
    reassemblies (and ``restarted`` those given up for a larger Total Fragments).
    """

    def __init__(
        self,
        max_fragments: int = MAX_FRAGMENTS,
        max_size: int = MAX_REASSEMBLED,
        timeout: float = REASSEMBLY_TIMEOUT,
    ) -> None:
        self.max_fragments = max_fragments
        self.max_size = max_size
        self.timeout = timeout
        self.drops: Counter[str] = Counter()
        self._pending: _Pending | None = None

    @property
    def pending_message_id(self) -> int | None:
        """The Message ID under reassembly, if any."""
        return None if self._pending is None else self._pending.message_id

    def reset(self) -> None:
        """Forget any partial message (rekey, SA deletion, message processed elsewhere)."""
        self._pending = None

    def expire(self, now: float) -> bool:
        """Drop a reassembly older than the timeout; True if one was dropped."""
        pending = self._pending
        if pending is not None and now - pending.started > self.timeout:
            self._pending = None
            self.drops["timeout"] += 1
            return True
        return False

    def _drop(self, reason: str) -> None:
        self.drops[reason] += 1

    def add(
        self,
        data: bytes,
        message: Message,
        cipher: SkCipher,
        now: float,
        *,
        expected_message_id: int,
    ) -> tuple[int, tuple[Payload, ...]] | None:
        """Take one fragment; return (first inner payload type, inner payloads) when complete.

        ``message`` is ``decode_message(data)`` and must end in an SKF payload; ``cipher``
        opens the peer's direction.  Returns None while incomplete or when the fragment was
        discarded.  Raises :class:`petrel.wire.errors.DecodeError` only when the reassembled
        chain is malformed (the reassembly state is cleared first).
        """
        self.expire(now)
        skf = message.payloads[-1] if message.payloads else None
        if not isinstance(skf, SKF):
            return self._drop("not_skf")
        head = message.header
        if head.message_id != expected_message_id:
            return self._drop("message_id")
        number, total = skf.fragment_number, skf.total_fragments
        if not 1 <= number <= total:
            return self._drop("bad_number")
        if total > self.max_fragments:
            return self._drop("too_many")
        inner_next = int(skf.inner_next_payload)
        if (number == 1) != (inner_next != 0):
            # §2.5: Next Payload names the first inner payload in fragment 1, is 0 elsewhere.
            return self._drop("next_payload")

        pending = self._pending
        if pending is not None and pending.message_id != head.message_id:
            self._pending = pending = None
            self._drop("superseded")
        if pending is not None:
            if total < pending.total:
                return self._drop("total_smaller")  # §2.6: stale fragment of a larger size
            if total == pending.total and number in pending.chunks:
                return self._drop("duplicate")
            if int(head.exchange) != pending.exchange or head.flags != pending.flags:
                return self._drop("inconsistent")

        # Authenticate before the fragment may change any state (§2.6, §5).
        try:
            plain = open_fragment(data, message, cipher)
        except CryptoError:
            return self._drop("integrity")

        if pending is not None and total > pending.total:
            # §2.6: a retransmission cut into more, smaller fragments; start over with it.
            self._drop("restarted")
            pending = None
        if pending is None:
            pending = _Pending(head.message_id, total, now, int(head.exchange), head.flags)
            self._pending = pending
        if pending.size + len(plain) > self.max_size:
            self._pending = None
            return self._drop("too_big")
        pending.chunks[number] = plain
        pending.size += len(plain)
        if number == 1:
            pending.first = inner_next
        if len(pending.chunks) < pending.total:
            return None

        self._pending = None
        chain = b"".join(pending.chunks[n] for n in range(1, pending.total + 1))
        return pending.first, decode_payloads(pending.first, chain)
