"""IKEv2 wire codec (RFC 7296 §3, RFC 7383): payload values, IANA registries, encode/decode."""

from .codec import (
    SK_GENERIC_HEADER_LEN,
    SKF_HEADER_LEN,
    decode_header,
    decode_message,
    decode_payloads,
    encode_header,
    encode_message,
    encode_payloads,
    sk_generic_header,
    skf_header,
)
from .errors import DecodeError

__all__ = [
    "SKF_HEADER_LEN",
    "SK_GENERIC_HEADER_LEN",
    "DecodeError",
    "decode_header",
    "decode_message",
    "decode_payloads",
    "encode_header",
    "encode_message",
    "encode_payloads",
    "sk_generic_header",
    "skf_header",
]
