"""Exchange tasks (strongSwan's task manager model): one object per exchange role.

An initiator :class:`Task` is queued on its IKE SA; when the window is free (§2.3) the engine
asks it for its request's payloads, sends them, and hands it the response.  A
:class:`Responder` answers one request of the peer.  Both reach the engine's services only
through the :class:`~petrel.ike.services.IkeServices` they are given.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from ..wire.registry import ExchangeType

if TYPE_CHECKING:
    from ..wire.payloads import Message, Payload
    from .sa import IkeSa
    from .services import IkeServices


class Task(ABC):
    """Our side of one exchange as its initiator."""

    exchange: ClassVar[ExchangeType]
    deletes_ike: ClassVar[bool] = False  # the Delete of its IKE SA (§1.4.1, §2.21.4)
    rekeys_ike: ClassVar[bool] = False  # a rekey of its IKE SA (§2.25)

    @abstractmethod
    def build_request(self, ctx: IkeServices, sa: IkeSa, now: float) -> list[Payload] | None:
        """The request's payloads, or None when there is nothing to do any more."""

    def process_response(
        self,
        ctx: IkeServices,
        sa: IkeSa,
        message: Message,
        payloads: tuple[Payload, ...],
        now: float,
    ) -> bool:
        """Act on the peer's answer; True asks for the request to be built and sent again
        (a retry with other parameters: COOKIE, INVALID_KE_PAYLOAD)."""
        return False

    def give_up_at(self, sa: IkeSa, now: float) -> float | None:
        """A deadline past which the exchange fails, whatever the retransmission schedule."""
        return None


class Notification(Task):
    """An INFORMATIONAL whose answer needs no action (error notifies, orphan Deletes)."""

    exchange = ExchangeType.INFORMATIONAL

    def __init__(self, payloads: list[Payload]) -> None:
        self.payloads = payloads

    def build_request(self, ctx: IkeServices, sa: IkeSa, now: float) -> list[Payload] | None:
        return self.payloads


class Responder(ABC):
    """Our side of one exchange the peer initiated."""

    @abstractmethod
    def process_request(
        self, ctx: IkeServices, sa: IkeSa, payloads: tuple[Payload, ...], now: float
    ) -> list[Payload]:
        """The response's payloads."""

    def complete(self, ctx: IkeServices, sa: IkeSa, now: float) -> None:
        """After the response is sent: what must not happen before (installing keys,
        deleting the SA)."""
        return None
