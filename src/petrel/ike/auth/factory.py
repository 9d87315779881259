"""The authenticator for an authentication round's ``auth`` value."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from ...credentials.store import CredentialStore
from ...policy.connection import AuthConfig, SharedSecret
from .base import Authenticator
from .null import NullAuthenticator
from .psk import PskAuthenticator
from .pubkey import PubkeyAuthenticator


def authenticator_for(
    config: AuthConfig,
    secrets: Sequence[SharedSecret],
    store: CredentialStore,
    clock: Callable[[], datetime],
) -> Authenticator:
    if config.method == "psk":
        return PskAuthenticator(secrets)
    if config.method == "null":
        return NullAuthenticator()
    return PubkeyAuthenticator(store, clock)
