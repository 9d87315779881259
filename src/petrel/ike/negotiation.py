"""SA proposal selection (RFC 7296 §2.7, §3.3.6) and the algorithms a chosen proposal names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..crypto.encr import EncrSpec, encr_spec
from ..crypto.errors import UnsupportedAlgorithm
from ..crypto.integ import IntegSpec, integ_spec
from ..crypto.prf import PrfSpec, prf_spec
from ..wire.payloads import Proposal, Transform
from ..wire.registry import EncrId, EsnId, IntegId, KeId, PrfId, ProtocolId, TransformType, name_of


def _transforms_by_type(proposal: Proposal) -> dict[int, list[Transform]]:
    grouped: dict[int, list[Transform]] = {}
    for transform in proposal.transforms:
        grouped.setdefault(int(transform.type), []).append(transform)
    return grouped


def _same(a: Transform, b: Transform) -> bool:
    return int(a.id) == int(b.id) and a.key_length == b.key_length


def _effective(grouped: dict[int, list[Transform]], ttype: TransformType) -> list[Transform]:
    """Transforms of one type; an absent ESN, INTEG, KE or ADDKE type means 'none' (§3.3.3,
    RFC 9370 §2.2.2)."""
    found = grouped.get(int(ttype))
    if found:
        return found
    if ttype == TransformType.ESN:
        return [Transform(TransformType.ESN, EsnId.NO_ESN)]
    if ttype == TransformType.INTEG:
        return [Transform(TransformType.INTEG, IntegId.NONE)]
    if ttype == TransformType.KE:
        return [Transform(TransformType.KE, KeId.NONE)]
    if ttype >= TransformType.ADDKE1:  # RFC 9370: an absent additional exchange is NONE
        return [Transform(ttype, KeId.NONE)]
    return []


def _match(offered: Proposal, mine: Proposal) -> Proposal | None:
    """One transform of each type the two proposals share, in the offerer's order."""
    if int(offered.protocol) != int(mine.protocol):
        return None
    theirs = _transforms_by_type(offered)
    ours = _transforms_by_type(mine)
    types = {int(t) for t in theirs} | {int(t) for t in ours}
    chosen: list[Transform] = []
    for ttype in sorted(types):
        ttype_enum = TransformType(ttype) if ttype in TransformType._value2member_map_ else None
        if ttype_enum is None:
            return None
        candidates = _effective(theirs, ttype_enum)
        acceptable = _effective(ours, ttype_enum)
        pick = next((t for t in candidates if any(_same(t, a) for a in acceptable)), None)
        if pick is None:
            return None
        if ttype in theirs:
            chosen.append(pick)
    return Proposal(offered.number, offered.protocol, offered.spi, tuple(chosen))


def select_proposal(offered: Sequence[Proposal], configured: Sequence[Proposal]) -> Proposal | None:
    """The first offered proposal that one of ours accepts, reduced to one transform per type.

    The responder keeps the initiator's proposal number and SPI (§3.3.1).
    """
    for proposal in offered:
        for mine in configured:
            chosen = _match(proposal, mine)
            if chosen is not None:
                return chosen
    return None


def proposal_accepted(reply: Proposal, offered: Sequence[Proposal]) -> bool:
    """True when a responder's single-transform proposal fits one we offered (§2.7)."""
    for mine in offered:
        if mine.number != reply.number or int(mine.protocol) != int(reply.protocol):
            continue
        ours = _transforms_by_type(mine)
        seen: set[int] = set()
        for transform in reply.transforms:
            ttype = int(transform.type)
            if ttype in seen:
                return False
            seen.add(ttype)
            choices = ours.get(ttype, [])
            if not any(_same(transform, c) for c in choices):
                return False
        # Exactly one transform of each type the proposal offered (§3.3.6): a reply that
        # drops one (INTEG, say) would leave a cipher without integrity.
        required = set(ours) | {int(TransformType.ENCR)}
        if int(reply.protocol) == ProtocolId.IKE:
            required |= {int(TransformType.PRF), int(TransformType.KE)}
        return required <= seen
    return False


@dataclass(frozen=True, slots=True)
class Algorithms:
    """The algorithms a chosen proposal names, ready to key."""

    encr: EncrSpec
    integ: IntegSpec | None
    prf: PrfSpec | None
    ke: KeId | None
    esn: bool

    def describe(self) -> str:
        """strongSwan-like summary, e.g. ``AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE25519``."""
        encr = name_of(self.encr.id, EncrId)
        parts = [f"{encr}_{self.encr.key_bits}" if self.encr.key_bits else encr]
        if self.integ is not None:
            parts.append(name_of(self.integ.id, IntegId))
        if self.prf is not None:
            parts.append("PRF_" + name_of(self.prf.id, PrfId))
        if self.ke is not None:
            parts.append(self.ke.name)
        if self.esn:
            parts.append("ESN")
        return "/".join(parts)


def algorithms_of(proposal: Proposal) -> Algorithms:
    """Resolve a one-transform-per-type proposal into keyed-transform specs.

    Raises :class:`UnsupportedAlgorithm` when a transform has no implementation.
    """
    grouped = _transforms_by_type(proposal)

    def single(ttype: TransformType) -> Transform | None:
        found = grouped.get(int(ttype))
        return found[0] if found else None

    encr_t = single(TransformType.ENCR)
    if encr_t is None:
        raise UnsupportedAlgorithm("proposal without an encryption transform")
    encr = encr_spec(int(encr_t.id), encr_t.key_length)
    integ_t = single(TransformType.INTEG)
    integ = None
    if integ_t is not None and int(integ_t.id) != IntegId.NONE:
        integ = integ_spec(int(integ_t.id))
    if not encr.aead and integ is None:  # RFC 8221 §5: no ESP encryption without integrity
        raise UnsupportedAlgorithm("non-AEAD cipher without integrity")
    prf_t = single(TransformType.PRF)
    prf = prf_spec(int(prf_t.id)) if prf_t is not None else None
    ke_t = single(TransformType.KE)
    ke = KeId(int(ke_t.id)) if ke_t is not None and int(ke_t.id) != KeId.NONE else None
    esn_t = single(TransformType.ESN)
    esn = esn_t is not None and int(esn_t.id) == EsnId.ESN
    return Algorithms(encr, integ, prf, ke, esn)


def first_ke_group(proposals: Sequence[Proposal]) -> KeId | None:
    """The key exchange group the initiator guesses first: the first one it offers (§1.2)."""
    for proposal in proposals:
        for transform in proposal.transforms:
            if int(transform.type) == TransformType.KE and int(transform.id) != KeId.NONE:
                return KeId(int(transform.id))
    return None


def offers_group(proposals: Sequence[Proposal], group: int) -> bool:
    return any(
        int(t.type) == TransformType.KE and int(t.id) == group
        for p in proposals
        for t in p.transforms
    )


def valid_esp_spi(spi: bytes) -> bool:
    """A peer's ESP SPI we may send with: four octets, not one of the values 0-255 that
    RFC 4303 §2.1 reserves (0 local use, 1-255 IANA)."""
    return len(spi) == 4 and int.from_bytes(spi, "big") > 255


def with_spi(proposals: Sequence[Proposal], spi: bytes) -> tuple[Proposal, ...]:
    """Copies of ``proposals`` carrying ``spi`` (Child SA proposals name the sender's SPI)."""
    return tuple(Proposal(p.number, p.protocol, spi, p.transforms) for p in proposals)


def strip_ke(proposal: Proposal) -> Proposal:
    """The proposal without KE transforms (number and SPI kept)."""
    transforms = tuple(t for t in proposal.transforms if int(t.type) != TransformType.KE)
    return Proposal(proposal.number, proposal.protocol, proposal.spi, transforms)


def without_ke(proposals: Sequence[Proposal]) -> tuple[Proposal, ...]:
    """Proposals for the Child SA of IKE_AUTH: no KE transform, since that exchange carries no
    KE payload (RFC 7296 §1.2); duplicates that leaves behind are dropped, numbers kept dense."""
    out: list[Proposal] = []
    for proposal in map(strip_ke, proposals):
        if all(proposal.transforms != p.transforms for p in out):
            out.append(Proposal(len(out) + 1, proposal.protocol, proposal.spi, proposal.transforms))
    return tuple(out)
