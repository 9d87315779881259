"""Routes into the TUN device that no other route can shadow (fail closed).

Protected destinations are routed through the TUN device in Petrel's own routing table,
consulted by a policy rule ahead of the main table — strongSwan's ``routing_table = 220``
and ``routing_table_prio = 220`` — so a route to the same prefix in the main table (or a
more specific one) can never carry protected traffic around the tunnel.  Petrel's own IKE
and ESP sockets carry a firewall mark that the rule excludes (``not fwmark``, as wg-quick
does), so even a protected range that covers the peer's outer address never loops the
encrypted packets back into the TUN device.

Every call acts on the calling process's network namespace and raises :class:`RouteError`
with the kernel's reason when the kernel refuses: the caller must then treat the traffic as
unprotected and say so, never carry on as if the route were there.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

ROUTING_TABLE = 220  # strongSwan's charon.routing_table default
ROUTING_TABLE_PRIO = 220  # strongSwan's charon.routing_table_prio default
FWMARK = 0x2200  # on Petrel's IKE/ESP sockets: their packets skip the routing table above
FIB_RULE_INVERT = 0x2  # linux/fib_rules.h: the rule applies to packets *without* the mark
SO_MARK = 36  # linux/socket.h

RouteSpec = str | tuple[str, str | None]
"""A destination prefix, or ``(prefix, preferred source)``: locally originated packets then
leave with the protected (inner) address."""


class RouteError(OSError):
    """The kernel refused a route or rule; ``str()`` names what and why."""


@dataclass(frozen=True)
class PolicyRouting:
    """Petrel's routing table and the rule that puts it ahead of the main table."""

    table: int = ROUTING_TABLE
    priority: int = ROUTING_TABLE_PRIO
    fwmark: int = FWMARK

    def install_rules(self) -> None:
        """Add the IPv4 and IPv6 rules (once: an identical rule left by a crashed run is
        replaced, never duplicated)."""
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            for family in (socket.AF_INET, socket.AF_INET6):
                self._delete_rule(ipr, family)
                try:
                    ipr.rule("add", family=family, **self._rule_fields())
                except Exception as exc:
                    raise RouteError(
                        f"policy rule 'not fwmark {self.fwmark:#x} lookup {self.table}' "
                        f"(IPv{4 if family == socket.AF_INET else 6}) not added: {exc}"
                    ) from exc

    def remove_rules(self) -> None:
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            for family in (socket.AF_INET, socket.AF_INET6):
                self._delete_rule(ipr, family)

    def add_routes(self, ifname: str, routes: Iterable[RouteSpec]) -> None:
        """Route each prefix through ``ifname`` in our table (``replace``: the table is ours,
        and re-adding a route that is already there is no error)."""
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            links = ipr.link_lookup(ifname=ifname)
            if not links:
                raise RouteError(f"no interface {ifname!r} to route through")
            local = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr()}
            for spec in routes:
                fields = route_fields(spec, links[0], self.table)
                if fields.get("prefsrc") not in local:  # only an address we have can be one
                    fields.pop("prefsrc", None)
                try:
                    ipr.route("replace", **fields)
                except Exception as exc:
                    raise RouteError(
                        f"route {fields['dst']}/{fields['dst_len']} via {ifname} "
                        f"(table {self.table}) not added: {exc}"
                    ) from exc

    def mark(self, sock: socket.socket) -> None:
        """Exempt ``sock``'s packets from our table (needs CAP_NET_ADMIN)."""
        sock.setsockopt(socket.SOL_SOCKET, SO_MARK, self.fwmark)

    def _rule_fields(self) -> dict[str, object]:
        return {
            "table": self.table,
            "priority": self.priority,
            "fwmark": self.fwmark,
            "fwmask": 0xFFFFFFFF,
            "flags": FIB_RULE_INVERT,
        }

    def _delete_rule(self, ipr: object, family: int) -> None:
        for rule in ipr.get_rules(family=family):  # type: ignore[attr-defined]
            if (
                rule.get_attr("FRA_PRIORITY") == self.priority
                and rule.get_attr("FRA_TABLE") == self.table
                and rule.get_attr("FRA_FWMARK") == self.fwmark
            ):
                ipr.rule("del", family=family, **self._rule_fields())  # type: ignore[attr-defined]


def route_fields(spec: RouteSpec, oif: int, table: int | None = None) -> dict[str, object]:
    """pyroute2 fields of a route to ``spec`` through interface index ``oif``."""
    dst, source = (spec, None) if isinstance(spec, str) else spec
    net = ipaddress.ip_network(dst, strict=False)
    fields: dict[str, object] = {
        "dst": str(net.network_address),
        "dst_len": net.prefixlen,
        "oif": oif,
        "family": socket.AF_INET if net.version == 4 else socket.AF_INET6,
    }
    if table is not None:
        fields["table"] = table
    if source is not None:
        fields["prefsrc"] = source
    return fields
