"""Proposal selection (RFC 7296 §2.7, §3.3.6; RFC 9370 §2.2.2)."""

from __future__ import annotations

from petrel.crypto.proposals import parse_proposals
from petrel.ike.negotiation import proposal_accepted, select_proposal
from petrel.wire.payloads import Proposal, Transform
from petrel.wire.registry import ProtocolId, TransformType


def ike(text: str) -> tuple[Proposal, ...]:
    return parse_proposals(text, ProtocolId.IKE)


def test_first_acceptable_offered_proposal_wins() -> None:
    offered = ike("aes128-sha256-modp2048,aes256gcm16-prfsha256-x25519")
    chosen = select_proposal(offered, ike("aes256gcm16-prfsha256-x25519,aes128-sha256-modp2048"))
    assert chosen is not None and chosen.number == 1
    assert proposal_accepted(chosen, offered)


def test_one_transform_per_type_in_the_choice() -> None:
    offered = ike("aes128-aes256-sha256-sha384-modp2048-ecp256")
    (chosen,) = [select_proposal(offered, ike("aes256-sha384-ecp256"))]
    assert chosen is not None
    types = [int(t.type) for t in chosen.transforms]
    assert len(types) == len(set(types))


def test_no_common_proposal() -> None:
    assert (
        select_proposal(ike("aes128-sha256-modp2048"), ike("aes256gcm16-prfsha384-ecp384")) is None
    )


def test_optional_additional_key_exchange_is_declined_with_none() -> None:
    base = ike("aes256gcm16-prfsha256-x25519")[0]
    offered = Proposal(
        1,
        ProtocolId.IKE,
        b"",
        (
            *base.transforms,
            Transform(TransformType.ADDKE1, 36),
            Transform(TransformType.ADDKE1, 0),
        ),
    )
    chosen = select_proposal((offered,), (base,))
    assert chosen is not None
    assert Transform(TransformType.ADDKE1, 0) in chosen.transforms


def test_mandatory_additional_key_exchange_is_not_chosen() -> None:
    base = ike("aes256gcm16-prfsha256-x25519")[0]
    offered = Proposal(
        1, ProtocolId.IKE, b"", (*base.transforms, Transform(TransformType.ADDKE1, 36))
    )
    assert select_proposal((offered,), (base,)) is None
