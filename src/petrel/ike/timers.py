"""Typed timers of an IKE SA: what fires (:class:`TimerKind`) and for which Child SA."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class TimerKind(enum.Enum):
    DPD = "dpd"  # liveness check when the peer was quiet for dpd_delay (§2.4)
    REKEY_IKE = "rekey-ike"  # IKE SA rekey_time (less a random share of rand_time)
    EXPIRE_IKE = "expire-ike"  # IKE SA hard lifetime (rekey_time + over_time)
    REAUTH = "reauth"  # make-before-break reauthentication (reauth_time)
    REKEY_CHILD = "rekey-child"  # Child SA rekey_time
    EXPIRE_CHILD = "expire-child"  # Child SA life_time
    CREATE_CHILD = "create-child"  # retry of a CREATE_CHILD_SA after TEMPORARY_FAILURE
    CRL_WAIT = "crl-wait"  # an IKE_AUTH parked for CRL fetches stops waiting (crl_wait.py)


@dataclass(frozen=True, slots=True)
class TimerKey:
    """One timer of an IKE SA: its kind and, for Child SA timers, the child it concerns
    (``child_id`` of an existing Child SA, or ``child_name`` of one still to create)."""

    kind: TimerKind
    child_id: int | None = None
    child_name: str | None = None

    @classmethod
    def rekey_child(cls, child_id: int) -> TimerKey:
        return cls(TimerKind.REKEY_CHILD, child_id)

    @classmethod
    def expire_child(cls, child_id: int) -> TimerKey:
        return cls(TimerKind.EXPIRE_CHILD, child_id)

    @classmethod
    def create_child(cls, child_name: str) -> TimerKey:
        return cls(TimerKind.CREATE_CHILD, child_name=child_name)

    @classmethod
    def of_child(cls, child_id: int) -> tuple[TimerKey, TimerKey]:
        """The timers that belong to an existing Child SA (they move and die with it)."""
        return cls.rekey_child(child_id), cls.expire_child(child_id)


DPD = TimerKey(TimerKind.DPD)
REKEY_IKE = TimerKey(TimerKind.REKEY_IKE)
EXPIRE_IKE = TimerKey(TimerKind.EXPIRE_IKE)
REAUTH = TimerKey(TimerKind.REAUTH)
CRL_WAIT = TimerKey(TimerKind.CRL_WAIT)
