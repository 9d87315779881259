"""Key exchange methods (IKEv2 Transform Type 4) with RFC 6989 peer-value checks.

- MODP 14-18 (RFC 3526): KE data is g^x padded to the modulus length; the peer value y must
  satisfy 1 < y < p-1 (RFC 6989 §2.1; the RFC 3526 moduli are safe primes).
- ECP 19-21 (RFC 5903) and brainpool 28-30 (RFC 6954): KE data is x | y without the 0x04
  prefix; the point must lie on the curve; the shared secret is the x coordinate.
- Curve25519 / Curve448 (RFC 8031): an all-zero shared secret is rejected.
- ML-KEM-768/1024 (RFC 9370, draft-ietf-ipsecme-ikev2-mlkem): the initiator sends the
  encapsulation key, the responder the ciphertext.

Private values come from the library's key generation (the OS CSPRNG).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from cryptography.exceptions import UnsupportedAlgorithm as _LibUnsupported
from cryptography.hazmat.primitives.asymmetric import dh, ec, mlkem, x448, x25519
from cryptography.utils import CryptographyDeprecationWarning

from petrel.crypto.errors import CryptoError, InvalidPublicValue, UnsupportedAlgorithm
from petrel.wire.registry import KeId

# RFC 3526 MODP primes (generator 2), in hex.  Each is the safe prime
# p = 2^N - 2^(N-64) - 1 + 2^64 * (floor(2^(N-130) * pi) + offset).
_MODP_PRIMES_HEX: dict[int, str] = {
    KeId.MODP_2048: (
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
        "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
        "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
        "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
        "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
        "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
        "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF"
    ),
    KeId.MODP_3072: (
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
        "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
        "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
        "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
        "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
        "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
        "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33"
        "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
        "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864"
        "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
        "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF"
    ),
    KeId.MODP_4096: (
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
        "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
        "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
        "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
        "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
        "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
        "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33"
        "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
        "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864"
        "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
        "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7"
        "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8"
        "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2"
        "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9"
        "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF"
    ),
    KeId.MODP_6144: (
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
        "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
        "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
        "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
        "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
        "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
        "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33"
        "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
        "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864"
        "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
        "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7"
        "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8"
        "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2"
        "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9"
        "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C93402849236C3FAB4D27C7026"
        "C1D4DCB2602646DEC9751E763DBA37BDF8FF9406AD9E530EE5DB382F413001AE"
        "B06A53ED9027D831179727B0865A8918DA3EDBEBCF9B14ED44CE6CBACED4BB1B"
        "DB7F1447E6CC254B332051512BD7AF426FB8F401378CD2BF5983CA01C64B92EC"
        "F032EA15D1721D03F482D7CE6E74FEF6D55E702F46980C82B5A84031900B1C9E"
        "59E7C97FBEC7E8F323A97A7E36CC88BE0F1D45B7FF585AC54BD407B22B4154AA"
        "CC8F6D7EBF48E1D814CC5ED20F8037E0A79715EEF29BE32806A1D58BB7C5DA76"
        "F550AA3D8A1FBFF0EB19CCB1A313D55CDA56C9EC2EF29632387FE8D76E3C0468"
        "043E8F663F4860EE12BF2D5B0B7474D6E694F91E6DCC4024FFFFFFFFFFFFFFFF"
    ),
    KeId.MODP_8192: (
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
        "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
        "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
        "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
        "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
        "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
        "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33"
        "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
        "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864"
        "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
        "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7"
        "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8"
        "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2"
        "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9"
        "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C93402849236C3FAB4D27C7026"
        "C1D4DCB2602646DEC9751E763DBA37BDF8FF9406AD9E530EE5DB382F413001AE"
        "B06A53ED9027D831179727B0865A8918DA3EDBEBCF9B14ED44CE6CBACED4BB1B"
        "DB7F1447E6CC254B332051512BD7AF426FB8F401378CD2BF5983CA01C64B92EC"
        "F032EA15D1721D03F482D7CE6E74FEF6D55E702F46980C82B5A84031900B1C9E"
        "59E7C97FBEC7E8F323A97A7E36CC88BE0F1D45B7FF585AC54BD407B22B4154AA"
        "CC8F6D7EBF48E1D814CC5ED20F8037E0A79715EEF29BE32806A1D58BB7C5DA76"
        "F550AA3D8A1FBFF0EB19CCB1A313D55CDA56C9EC2EF29632387FE8D76E3C0468"
        "043E8F663F4860EE12BF2D5B0B7474D6E694F91E6DBE115974A3926F12FEE5E4"
        "38777CB6A932DF8CD8BEC4D073B931BA3BC832B68D9DD300741FA7BF8AFC47ED"
        "2576F6936BA424663AAB639C5AE4F5683423B4742BF1C978238F16CBE39D652D"
        "E3FDB8BEFC848AD922222E04A4037C0713EB57A81A23F0C73473FC646CEA306B"
        "4BCBC8862F8385DDFA9D4B7FA2C087E879683303ED5BDD3A062B3CF5B3A278A6"
        "6D2A13F83F44F82DDF310EE074AB6A364597E899A0255DC164F31CC50846851D"
        "F9AB48195DED7EA1B1D510BD7EE74D73FAF36BC31ECFA268359046F4EB879F92"
        "4009438B481C6CD7889A002ED5EE382BC9190DA6FC026E479558E4475677E9AA"
        "9E3050E2765694DFC81F56E880B96E7160C980DD98EDD3DFFFFFFFFFFFFFFFFF"
    ),
}


class KeyExchange(Protocol):
    """The initiator's half of one key exchange."""

    @property
    def group(self) -> KeId: ...

    def public_value(self) -> bytes:
        """The KE payload data to send."""
        ...

    def shared_secret(self, peer_value: bytes) -> bytes:
        """The shared secret, from the responder's KE data; raises :class:`InvalidPublicValue`."""
        ...


@contextmanager
def _quiet_ffdh() -> Iterator[None]:
    """FFDH is deprecated in ``cryptography`` but required by RFC 7296; silence the warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield


_DH_PARAMS: dict[int, dh.DHParameterNumbers] = {}


def _modp_params(group: KeId) -> dh.DHParameterNumbers:
    params = _DH_PARAMS.get(group)
    if params is None:
        with _quiet_ffdh():
            params = dh.DHParameterNumbers(int(_MODP_PRIMES_HEX[group], 16), 2)
        _DH_PARAMS[group] = params
    return params


class _ModpExchange:
    """Finite-field Diffie-Hellman over an RFC 3526 group."""

    def __init__(self, group: KeId, private_value: int | None = None) -> None:
        self.group = group
        self._params = _modp_params(group)
        self._size = (self._params.p.bit_length() + 7) // 8
        with _quiet_ffdh():
            if private_value is None:
                self._key = self._params.parameters().generate_private_key()
            else:
                public = dh.DHPublicNumbers(pow(2, private_value, self._params.p), self._params)
                self._key = dh.DHPrivateNumbers(private_value, public).private_key()

    def public_value(self) -> bytes:
        with _quiet_ffdh():
            y = self._key.public_key().public_numbers().y
        return y.to_bytes(self._size, "big")

    def shared_secret(self, peer_value: bytes) -> bytes:
        p = self._params.p
        if len(peer_value) != self._size:
            raise InvalidPublicValue(f"MODP KE data must be {self._size} octets")
        y = int.from_bytes(peer_value, "big")
        if not 1 < y < p - 1:
            raise InvalidPublicValue("MODP public value outside 1 < y < p-1 (RFC 6989)")
        try:
            with _quiet_ffdh():
                peer = dh.DHPublicNumbers(y, self._params).public_key()
                secret = self._key.exchange(peer)
        except ValueError as exc:
            raise InvalidPublicValue(f"MODP public value rejected: {exc}") from None
        return secret.rjust(self._size, b"\x00")  # §2.14: padded to the modulus length


_CURVES: dict[int, type[ec.EllipticCurve]] = {
    KeId.ECP_256: ec.SECP256R1,
    KeId.ECP_384: ec.SECP384R1,
    KeId.ECP_521: ec.SECP521R1,
    KeId.ECP_256_BP: ec.BrainpoolP256R1,
    KeId.ECP_384_BP: ec.BrainpoolP384R1,
    KeId.ECP_512_BP: ec.BrainpoolP512R1,
}


class _EcpExchange:
    """ECDH over a prime curve, KE data x | y (RFC 5903 §7, RFC 6954 §4)."""

    def __init__(self, group: KeId, private_value: int | None = None) -> None:
        self.group = group
        self._curve = _CURVES[group]()
        self._coord = (self._curve.key_size + 7) // 8
        if private_value is None:
            self._key = ec.generate_private_key(self._curve)
        else:
            self._key = ec.derive_private_key(private_value, self._curve)

    def public_value(self) -> bytes:
        numbers = self._key.public_key().public_numbers()
        return numbers.x.to_bytes(self._coord, "big") + numbers.y.to_bytes(self._coord, "big")

    def shared_secret(self, peer_value: bytes) -> bytes:
        if len(peer_value) != 2 * self._coord:
            raise InvalidPublicValue(f"ECP KE data must be {2 * self._coord} octets")
        try:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(
                self._curve, b"\x04" + bytes(peer_value)
            )
            return self._key.exchange(ec.ECDH(), peer)
        except ValueError as exc:  # not on the curve, point at infinity, …
            raise InvalidPublicValue(f"ECP public value rejected: {exc}") from None


class _XExchange:
    """X25519 / X448 (RFC 7748, RFC 8031)."""

    def __init__(self, group: KeId, private_value: bytes | None = None) -> None:
        self.group = group
        self._lib = x25519 if group == KeId.CURVE25519 else x448
        self._size = 32 if group == KeId.CURVE25519 else 56
        private_cls = x25519.X25519PrivateKey if group == KeId.CURVE25519 else x448.X448PrivateKey
        if private_value is None:
            self._key = private_cls.generate()
        else:
            self._key = private_cls.from_private_bytes(private_value)

    def public_value(self) -> bytes:
        return self._key.public_key().public_bytes_raw()

    def shared_secret(self, peer_value: bytes) -> bytes:
        if len(peer_value) != self._size:
            raise InvalidPublicValue(f"{self.group.name} KE data must be {self._size} octets")
        public_cls = x25519.X25519PublicKey if self.group == KeId.CURVE25519 else x448.X448PublicKey
        try:
            secret = self._key.exchange(public_cls.from_public_bytes(bytes(peer_value)))
        except ValueError:  # the library refuses an all-zero (low-order) result
            raise InvalidPublicValue("low-order point: all-zero shared secret") from None
        if not any(secret):
            raise InvalidPublicValue("low-order point: all-zero shared secret (RFC 8031 §2)")
        return secret


_MLKEM: dict[int, tuple[type, type, int]] = {
    KeId.ML_KEM_768: (mlkem.MLKEM768PrivateKey, mlkem.MLKEM768PublicKey, 1088),
    KeId.ML_KEM_1024: (mlkem.MLKEM1024PrivateKey, mlkem.MLKEM1024PublicKey, 1568),
}


class _MlKemExchange:
    """The initiator of an ML-KEM exchange: sends the encapsulation key, decapsulates."""

    def __init__(self, group: KeId, seed: bytes | None = None) -> None:
        self.group = group
        private_cls, _, self._ct_size = _MLKEM[group]
        self._key = private_cls.generate() if seed is None else private_cls.from_seed_bytes(seed)

    def public_value(self) -> bytes:
        return self._key.public_key().public_bytes_raw()

    def shared_secret(self, peer_value: bytes) -> bytes:
        if len(peer_value) != self._ct_size:
            raise InvalidPublicValue(f"{self.group.name} ciphertext must be {self._ct_size} octets")
        try:
            return self._key.decapsulate(bytes(peer_value))
        except ValueError as exc:
            raise InvalidPublicValue(f"ML-KEM ciphertext rejected: {exc}") from None


def _mlkem_encapsulate(group: KeId, peer_value: bytes) -> tuple[bytes, bytes]:
    _, public_cls, _ = _MLKEM[group]
    try:
        peer = public_cls.from_public_bytes(bytes(peer_value))
    except ValueError as exc:  # wrong length or a coefficient not reduced modulo q
        raise InvalidPublicValue(f"ML-KEM encapsulation key rejected: {exc}") from None
    secret, ciphertext = peer.encapsulate()
    return ciphertext, secret


_SUPPORTED = frozenset({*_MODP_PRIMES_HEX, *_CURVES, KeId.CURVE25519, KeId.CURVE448, *_MLKEM})


_UNAVAILABLE = {
    KeId.ML_KEM_512: "is not provided by the cryptography library (only ML-KEM-768/1024)",
    KeId.ECP_224_BP: "is not provided by the cryptography library (no brainpoolP224r1)",
}


def supported_groups() -> frozenset[KeId]:
    """The key exchange methods this build can perform."""
    return _SUPPORTED


def _coerce_group(group: int) -> KeId:
    try:
        kid = KeId(int(group))
    except ValueError:
        raise UnsupportedAlgorithm(f"key exchange method {int(group)} is not supported") from None
    if kid not in _SUPPORTED:
        why = _UNAVAILABLE.get(kid, "is not supported")
        raise UnsupportedAlgorithm(f"key exchange method {kid.name} {why}")
    return kid


def new_key_exchange(group: int) -> KeyExchange:
    """Start a key exchange as initiator (or as the DH responder's own half)."""
    kid = _coerce_group(group)
    try:
        if kid in _MODP_PRIMES_HEX:
            return _ModpExchange(kid)
        if kid in _CURVES:
            return _EcpExchange(kid)
        if kid in (KeId.CURVE25519, KeId.CURVE448):
            return _XExchange(kid)
        return _MlKemExchange(kid)
    except _LibUnsupported as exc:
        raise UnsupportedAlgorithm(f"{kid.name} unavailable in this build: {exc}") from None


def respond_key_exchange(group: int, peer_value: bytes) -> tuple[bytes, bytes]:
    """The responder's half: (my KE data, shared secret) from the initiator's KE data."""
    return KeyExchanges().respond(group, peer_value)


def key_exchange_from_private(group: int, private_value: bytes) -> KeyExchange:
    """An ECDH exchange with a given private value, for known answers (RFC 5903 §8, RFC 7748).

    ``private_value`` is the big-endian scalar for ECP groups and the raw 32/56-octet scalar
    for Curve25519/Curve448.  Never use this for live exchanges.
    """
    kid = _coerce_group(group)
    if kid in _CURVES:
        return _EcpExchange(kid, int.from_bytes(private_value, "big"))
    if kid in (KeId.CURVE25519, KeId.CURVE448):
        return _XExchange(kid, bytes(private_value))
    raise CryptoError(f"{kid.name} does not take a private value")


class KeyExchanges:
    """Where the IKE engine gets its key exchanges: the library's own key generation."""

    def new(self, group: int) -> KeyExchange:
        """Our half of an exchange as initiator (the KE payload we send first)."""
        return new_key_exchange(group)

    def respond(self, group: int, peer_value: bytes) -> tuple[bytes, bytes]:
        """(our KE data, shared secret) as responder to the peer's KE data: ML-KEM
        encapsulates to it; the other methods make our half with :meth:`new`."""
        kid = _coerce_group(group)
        if kid in _MLKEM:
            return _mlkem_encapsulate(kid, peer_value)
        mine = self.new(kid)
        return mine.public_value(), mine.shared_secret(peer_value)


class SeededKeyExchanges(KeyExchanges):
    """Private values drawn from an injected random source, so that an engine run with a
    seeded source is reproducible (tests, fuzzing). Never for live exchanges: the default
    :class:`KeyExchanges` uses the library's key generation.

    ML-KEM keys come from a 64-octet seed (FIPS 203 §7.1); an ML-KEM responder's
    encapsulation draws its randomness inside the library and stays unpredictable.
    """

    def __init__(self, random: Callable[[int], bytes]) -> None:
        self._random = random

    def _scalar(self, octets: int, modulus: int) -> int:
        """A value in [2, modulus - 2] from ``octets`` + 8 random octets (bias below 2**-64)."""
        return 2 + int.from_bytes(self._random(octets + 8), "big") % (modulus - 3)

    def new(self, group: int) -> KeyExchange:
        kid = _coerce_group(group)
        if kid in _MODP_PRIMES_HEX:
            # A 512-bit exponent, as short-exponent implementations use (RFC 3526 §8).
            return _ModpExchange(kid, self._scalar(56, _modp_params(kid).p))
        if kid in _CURVES:
            # Below 2**(bits-1), hence below every listed curve's group order.
            bits = _CURVES[kid].key_size
            scalar = int.from_bytes(self._random((bits + 7) // 8), "big") % (1 << (bits - 1))
            return _EcpExchange(kid, scalar or 1)
        if kid in (KeId.CURVE25519, KeId.CURVE448):
            return _XExchange(kid, self._random(32 if kid == KeId.CURVE25519 else 56))
        return _MlKemExchange(kid, self._random(64))
