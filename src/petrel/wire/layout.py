"""Field layouts and flag values shared by the IKEv2 decoder and encoder (RFC 7296 §3).

Each ``Struct`` is the fixed part of one structure, named after the section that defines it.
"""

from __future__ import annotations

from struct import Struct

from .payloads import FLAG_INITIATOR, FLAG_RESPONSE, FLAG_VERSION
from .registry import TsType

SK_GENERIC_HEADER_LEN = 4
"""The SK payload's generic header (§3.14); with the IKE header it is the AEAD's AAD."""
SKF_HEADER_LEN = 8
"""The SKF payload's generic header plus Fragment Number and Total Fragments (RFC 7383 §2.5)."""

DEFINED_FLAGS = FLAG_INITIATOR | FLAG_VERSION | FLAG_RESPONSE
CRITICAL = 0x80
AF_TV = 0x8000
LAST = 0
MORE_PROPOSALS = 2  # §3.3.1 Last Substruc
MORE_TRANSFORMS = 3  # §3.3.2 Last Substruc

HEADER = Struct("!8s8sBBBBII")  # §3.1
GENERIC = Struct("!BBH")  # §3.2
PROPOSAL = Struct("!BxHBBBB")  # §3.3.1
TRANSFORM = Struct("!BxHBxH")  # §3.3.2
ATTR = Struct("!HH")  # §3.3.5, §3.15.1
U8_RES3 = Struct("!B3x")  # ID, AUTH, TS, CP bodies start with one octet and three reserved
KE_FIELDS = Struct("!H2x")  # §3.4
NOTIFY_FIELDS = Struct("!BBH")  # §3.10
DELETE_FIELDS = Struct("!BBH")  # §3.11
TS_FIELDS = Struct("!BBHHH")  # §3.13.1
SKF_FIELDS = Struct("!HH")  # RFC 7383 §2.5
U16 = Struct("!H")

# Selector length and address size per supported TS type (§3.13.1).
TS_LAYOUT = {TsType.IPV4_ADDR_RANGE: (16, 4), TsType.IPV6_ADDR_RANGE: (40, 16)}
