"""Opt-in key export for debugging (``petrel daemon --save-keys DIR``), like strongSwan's
save-keys plugin: every IKE and ESP SA's keys in Wireshark's own table formats, so that
``petrel decode`` and Wireshark can decrypt a capture of the daemon's traffic.

Anyone who can read these files can decrypt that traffic: the files are created 0600 and the
daemon says so when it starts.  Keys never go to the log.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .decode.keys import EspSaKeys, IkeSaKeys, KeyFileError
from .ike.events import ChildKeys, ChildSaUp
from .ike.sa import IkeSa
from .wire.registry import EncrId, IntegId

log = logging.getLogger("petrel.daemon")

IKE_TABLE = "ikev2_decryption_table"
ESP_TABLE = "esp_sa"


class KeySaver:
    """Appends one row per SA to DIR/ikev2_decryption_table and DIR/esp_sa."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        log.warning(
            "saving IKE and ESP keys to %s: whoever reads these files can decrypt the traffic",
            self.directory,
        )

    def _append(self, name: str, line: str) -> None:
        path = self.directory / name
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as out:
            out.write(line + "\n")

    def ike_sa(self, sa: IkeSa) -> None:
        keys, alg = sa.keys, sa.algorithms
        if keys is None or alg is None:
            return
        row = IkeSaKeys(
            sa.spi_i,
            sa.spi_r,
            keys.sk_ei,
            keys.sk_er,
            EncrId(alg.encr.id),
            alg.encr.key_bits,
            keys.sk_ai,
            keys.sk_ar,
            IntegId(alg.integ.id if alg.integ else 0),
        )
        try:
            self._append(IKE_TABLE, row.to_line())
        except KeyFileError as exc:
            log.warning("IKE SA %d: keys not saved: %s", sa.ike_id, exc)

    def child_sa(self, up: ChildSaUp) -> None:
        def row(src: str, dst: str, keys: ChildKeys) -> str:
            integ = keys.integ.id if keys.integ else 0
            return EspSaKeys.for_sa(
                src, dst, keys.spi, keys.encr.id, keys.encr_key, integ, keys.integ_key
            ).to_line()

        try:
            self._append(ESP_TABLE, row(up.local[0], up.remote[0], up.outbound))
            self._append(ESP_TABLE, row(up.remote[0], up.local[0], up.inbound))
        except KeyFileError as exc:
            log.warning("CHILD_SA %s{%d}: keys not saved: %s", up.name, up.child_id, exc)
