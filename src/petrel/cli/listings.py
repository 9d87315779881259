"""Listings: ``status``, ``list-sas``, ``list-conns``, ``list-certs``, ``list-pools``,
``stats`` — a table
each, or ``--json`` (JSON lines: one object per VICI event, or the one reply)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from .common import connect, plain, print_json_lines, print_table
from .errors import EXIT_OK


def format_ike_sa(name: str, sa: Mapping[str, Any]) -> str:
    """swanctl --list-sas style text for one ``list-sa`` event."""
    lines = [
        f"{name}: #{sa.get('uniqueid')}, {sa.get('state')}, IKEv2, "
        f"{sa.get('initiator-spi')}_i{'*' if sa.get('initiator') == 'yes' else ''} "
        f"{sa.get('responder-spi')}_r{'' if sa.get('initiator') == 'yes' else '*'}",
        f"  local  '{sa.get('local-id')}' @ {sa.get('local-host')}[{sa.get('local-port')}]",
        f"  remote '{sa.get('remote-id')}' @ {sa.get('remote-host')}[{sa.get('remote-port')}]",
    ]
    if sa.get("encr-alg"):
        algs = [f"{sa['encr-alg']}" + (f"-{sa['encr-keysize']}" if sa.get("encr-keysize") else "")]
        algs += [sa[k] for k in ("integ-alg", "prf-alg", "dh-group") if sa.get(k)]
        lines.append("  " + "/".join(algs))
    if sa.get("established"):
        lines.append(f"  established {sa['established']}s ago")
    for child_name, child in (sa.get("child-sas") or {}).items():
        encap = ", UDP_ENCAP" if child.get("encap") == "yes" else ""
        lines += [
            f"  {child.get('name', child_name)}: #{child.get('uniqueid')}, "
            f"{child.get('state')}, {child.get('mode')}, ESP{encap}",
            f"    SPIs: {child.get('spi-in')}_i {child.get('spi-out')}_o, {_child_algs(child)}",
            f"    in  {child.get('spi-in')}, {child.get('bytes-in')} bytes, "
            f"{child.get('packets-in')} packets",
            f"    out {child.get('spi-out')}, {child.get('bytes-out')} bytes, "
            f"{child.get('packets-out')} packets",
            f"    local  {' '.join(child.get('local-ts') or [])}",
            f"    remote {' '.join(child.get('remote-ts') or [])}",
        ]
    return "\n".join(lines)


def _child_algs(child: Mapping[str, Any]) -> str:
    algs = str(child.get("encr-alg", ""))
    if child.get("encr-keysize"):
        algs += f"-{child['encr-keysize']}"
    if child.get("integ-alg"):
        algs += f"/{child['integ-alg']}"
    return algs


def _sa_rows(events: list[Mapping[str, Any]]) -> list[list[Any]]:
    rows = []
    for event in events:
        for name, sa in event.items():
            rows.append(
                [
                    f"{name} #{sa.get('uniqueid')}",
                    sa.get("state"),
                    f"{sa.get('local-host')} ⇄ {sa.get('remote-host')}",
                    sa.get("remote-id"),
                    "",
                    "",
                    "",
                ]
            )
            for child in (sa.get("child-sas") or {}).values():
                rows.append(
                    [
                        f"  {child.get('name')} #{child.get('uniqueid')}",
                        child.get("state"),
                        f"{' '.join(child.get('local-ts') or [])} ⇄ "
                        f"{' '.join(child.get('remote-ts') or [])}",
                        _child_algs(child),
                        f"{child.get('spi-in')}/{child.get('spi-out')}",
                        f"{child.get('bytes-in', '-')}/{child.get('bytes-out', '-')}",
                        f"{child.get('packets-in', '-')}/{child.get('packets-out', '-')}",
                    ]
                )
    return rows


_SA_COLUMNS = ("SA", "state", "between", "peer / algorithms", "SPIs in/out", "bytes", "packets")


def list_sas(args: argparse.Namespace) -> int:
    with connect(args) as client:
        message = {"ike": args.ike} if args.ike else {}
        events, _ = client.streamed("list-sas", "list-sa", message)
    if args.json:
        print_json_lines(events)
    elif args.long:
        for event in events:
            for name, sa in event.items():
                print(format_ike_sa(name, sa))
    else:
        print_table("Security Associations", _SA_COLUMNS, _sa_rows(events))
    return EXIT_OK


def list_conns(args: argparse.Namespace) -> int:
    with connect(args) as client:
        events, _ = client.streamed("list-conns", "list-conn", {})
    if args.json:
        print_json_lines(events)
        return EXIT_OK
    rows = []
    for event in events:
        for name, conn in event.items():
            local = ", ".join(conn.get("local_addrs") or []) or "%any"
            remote = ", ".join(conn.get("remote_addrs") or []) or "%any"
            auth = _auth(conn, "local"), _auth(conn, "remote")
            for child, info in (conn.get("children") or {}).items():
                ts = (
                    f"{' '.join(info.get('local-ts') or [])} ⇄ "
                    f"{' '.join(info.get('remote-ts') or [])}"
                )
                rows.append([name, child, f"{local} ⇄ {remote}", " / ".join(auth), ts])
            if not conn.get("children"):
                rows.append([name, "", f"{local} ⇄ {remote}", " / ".join(auth), ""])
    print_table("Connections", ("connection", "child", "addresses", "auth", "traffic"), rows)
    return EXIT_OK


def _auth(conn: Mapping[str, Any], side: str) -> str:
    for key, value in conn.items():
        if str(key).startswith(side) and isinstance(value, Mapping):
            return f"{value.get('class', '?')} {value.get('id', '%any')}"
    return "?"


def _cert_summary(event: Mapping[str, Any]) -> dict[str, Any]:
    """What a ``list-cert`` event's DER says (parsed here, as swanctl does)."""
    from ..crypto.keys import load_public_key
    from ..crypto.pki_errors import CredentialError
    from ..crypto.x509 import load_certificates, load_crl

    kind = str(plain(event.get("type", "")))
    data = event.get("data", b"")
    data = data if isinstance(data, bytes) else str(data).encode()
    out: dict[str, Any] = {"type": kind, "flag": str(plain(event.get("flag", "NONE")))}
    if event.get("has_privkey"):
        out["has_privkey"] = "yes"
    try:
        if kind == "X509":
            cert = load_certificates(data)[0]
            out.update(
                subject=cert.subject_str,
                issuer=cert.issuer_str,
                serial=f"{cert.serial:x}",
                not_before=cert.not_before.isoformat(),
                not_after=cert.not_after.isoformat(),
                key=cert.public_key.describe(),
            )
        elif kind == "X509_CRL":
            crl = load_crl(data)
            out.update(issuer=str(crl.issuer), this_update=crl.this_update.isoformat())
            out["revoked"] = len(crl.revoked)
        elif kind == "PUBKEY":
            out["key"] = load_public_key(data).describe()
            if event.get("subject"):
                out["subject"] = str(plain(event["subject"]))
    except (CredentialError, ValueError, IndexError) as exc:
        out["error"] = f"cannot parse: {exc}"
    return out


def list_certs(args: argparse.Namespace) -> int:
    with connect(args) as client:
        events, _ = client.streamed("list-certs", "list-cert", {})
    summaries = [_cert_summary(event) for event in events]
    if args.json:
        print_json_lines(summaries)
        return EXIT_OK
    rows = [
        [
            s["type"] + ("" if s["flag"] in ("NONE", "") else f" {s['flag']}"),
            s.get("subject") or s.get("issuer", ""),
            s.get("issuer", "") if s["type"] == "X509" else "",
            s.get("not_after", s.get("this_update", "")),
            s.get("key", ""),
            s.get("has_privkey", ""),
        ]
        for s in summaries
    ]
    columns = ("type", "subject", "issuer", "valid until", "key", "private key")
    print_table("Certificates and keys", columns, rows)
    return EXIT_OK


def list_pools(args: argparse.Namespace) -> int:
    """Virtual IP pools (VICI get-pools), with their leases."""
    with connect(args) as client:
        reply = client.request("get-pools", {"leases": "yes"})
    pools = plain(reply)
    if args.json:
        print(json.dumps(pools))
        return EXIT_OK
    rows = [
        [name, p.get("base", ""), p.get("size", ""), p.get("online", ""), p.get("offline", "")]
        for name, p in pools.items()
    ]
    print_table("Pools", ("pool", "base", "size", "online", "offline"), rows)
    leases = [
        [name, lease.get("address", ""), lease.get("status", ""), lease.get("identity", "")]
        for name, p in pools.items()
        for lease in (p.get("leases") or {}).values()
    ]
    if leases:
        print_table("Leases", ("pool", "address", "status", "identity"), leases)
    return EXIT_OK


def stats(args: argparse.Namespace) -> int:
    with connect(args) as client:
        reply = client.request("stats", {})
    print(json.dumps(plain(reply), indent=2))
    return EXIT_OK


def status(args: argparse.Namespace) -> int:
    """Daemon version and uptime, SA counts, and the SAs as a table."""
    with connect(args) as client:
        version = client.request("version", {})
        daemon_stats = client.request("stats", {})
        events, _ = client.streamed("list-sas", "list-sa", {})
        conns = client.request("get-conns", {})
    if args.json:
        doc = {"version": version, "stats": daemon_stats, "conns": conns.get("conns", [])}
        doc["sas"] = events
        print(json.dumps(plain(doc)))
        return EXIT_OK
    uptime = daemon_stats.get("uptime", {})
    ikesas = daemon_stats.get("ikesas", {})
    print(
        f"{plain(version.get('daemon'))} {plain(version.get('version'))} "
        f"up {plain(uptime.get('running', '?'))} (since {plain(uptime.get('since', '?'))})"
    )
    print(
        f"connections: {len(conns.get('conns', []))}, IKE SAs: {plain(ikesas.get('total'))} "
        f"({plain(ikesas.get('half-open'))} half-open)"
    )
    print_table("Security Associations", _SA_COLUMNS, _sa_rows(events))
    return EXIT_OK
