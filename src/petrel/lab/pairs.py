"""Two peers of a lab with mirror PSK configurations: "petrel->strongswan" and the like."""

from __future__ import annotations

import json
from collections.abc import Sequence

from .netns import Lab
from .petrel_peer import PetrelPeer
from .strongswan import StrongSwan, strongswan_pair_confs

Peer = PetrelPeer | StrongSwan
PAIRS = ("petrel->strongswan", "strongswan->petrel", "petrel->petrel")


def fast_retransmit(tries: int = 8) -> dict[str, object]:
    """Keyword arguments of :func:`start_pair` for tests under heavy loss: both sides
    retransmit after 1 s with back-off 1.4 (instead of the default 4 s / 1.8 / 5, ~165 s), so
    that an unlucky run of losses still ends inside a test's timeout. ``tries`` = 8 gives up
    after ~50 s; each try more multiplies the time by ~1.4 and the odds of 20 % loss each way
    defeating an exchange by 0.36."""
    return {
        "charon_extra": "  retransmit_timeout = 1\n  retransmit_base = 1.4\n"
        f"  retransmit_tries = {tries}",
        "daemon_args": (
            *("--retransmit-timeout", "1"),
            *("--retransmit-base", "1.4"),
            *("--retransmit-tries", str(tries)),
        ),
    }


FAST_RETRANSMIT = fast_retransmit()


def start_pair(
    lab: Lab,
    pair: str,
    *,
    encap: bool | None = None,
    l_extra: Sequence[str] = (),
    r_extra: Sequence[str] = (),
    child_extra: Sequence[str] = (),
    l_child_extra: Sequence[str] = (),
    r_child_extra: Sequence[str] = (),
    charon_extra: str = "",
    daemon_args: Sequence[str] = (),
    **conf: object,
) -> tuple[Peer, Peer]:
    """Start R, then L (the initiator) of ``pair``; returns (L, R).

    strongSwan's kernel-libipsec can only install UDP-encapsulated SAs (LAB.md), so a Petrel
    initiating to it forces encapsulation unless a NAT does that anyway (``encap`` overrides).
    ``conf`` goes to :func:`strongswan_pair_confs` (proposals, esp_proposals, v6, …) for both
    sides, as do the child lines ``child_extra``; ``l_extra``/``r_extra`` are connection lines
    for one side, ``l_child_extra``/``r_child_extra`` child lines for one side;
    ``charon_extra`` goes to every charon's strongswan.conf, ``daemon_args`` to every Petrel.
    """
    l_kind, r_kind = pair.split("->")
    if encap is None:
        encap = (l_kind, r_kind) == ("petrel", "strongswan") and not lab.nat
    left_extra = [*l_extra, *(["encap = yes"] if encap else [])]
    l_conf, _ = strongswan_pair_confs(
        lab,
        conn_extra=left_extra,
        child_extra=[*child_extra, *l_child_extra],
        **conf,  # type: ignore[arg-type]
    )
    _, r_conf = strongswan_pair_confs(
        lab,
        conn_extra=list(r_extra),
        child_extra=[*child_extra, *r_child_extra],
        **conf,  # type: ignore[arg-type]
    )
    peers: list[Peer] = []
    for kind, host, name, text in (
        (r_kind, lab.right, "right", r_conf),
        (l_kind, lab.left, "left", l_conf),
    ):
        if kind == "petrel":
            peers.append(PetrelPeer(lab, host.ns, name, text, daemon_args=daemon_args).start())
        else:
            swan = StrongSwan(lab, host.ns, name, text, charon_extra).start()
            swan.load()
            peers.append(swan)
    right, left = peers
    return left, right


def petrel_sas(peer: PetrelPeer) -> list[dict]:  # type: ignore[type-arg]
    """``petrel list-sas --json``: one dict per IKE SA (the VICI list-sa shape)."""
    result = peer.cli("list-sas", "--json")
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return [sa for line in result.stdout.splitlines() if line for sa in json.loads(line).values()]


def child_spis(peer: PetrelPeer) -> list[tuple[str, str]]:
    """(inbound SPI, outbound SPI) of every Child SA ``peer`` lists."""
    return [
        (c["spi-in"], c["spi-out"]) for sa in petrel_sas(peer) for c in sa["child-sas"].values()
    ]


def swan_child_count(swan: StrongSwan) -> int:
    """Installed Child SAs in ``swanctl --list-sas``."""
    return swan.list_sas().count("INSTALLED")


def logs(*peers: Peer) -> str:
    """The tails of the peers' logs, for assertion messages."""
    return "\n".join(f"--- {p.name}\n{p.log_text()[-5000:]}" for p in peers)
