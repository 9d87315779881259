"""Text blocks and JSON lines for dissected records (see :mod:`petrel.decode.dissect`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from petrel.wire.payloads import Notify, Payload
from petrel.wire.registry import ExchangeType, name_of

from .dissect import Record
from .render import notify_json, payload_name, view


def _time_text(ts: float | None) -> str:
    if ts is None:
        return ""
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    except (OverflowError, OSError, ValueError):
        return f"{ts:.6f}"


def _endpoint(addr: str | None, port: int | None) -> str:
    if addr is None:
        return "?"
    host = f"[{addr}]" if ":" in addr else addr
    return f"{host}:{port}"


def _flags_text(flags: int, response: bool, initiator: bool) -> str:
    role = "initiator" if initiator else "responder"
    return f"{'response' if response else 'request'} from {role} (flags 0x{flags:02x})"


def _payload_lines(payloads: tuple[Payload, ...], indent: str) -> list[str]:
    lines: list[str] = []
    for payload in payloads:
        v = view(payload)
        lines.append(f"{indent}{v.title}")
        lines.extend(f"{indent}    {line}" for line in v.lines)
    return lines


def format_text(record: Record) -> str:
    """One readable block for one datagram (no trailing newline)."""
    d = record.dgram
    head = f"Frame {d.frame}"
    if d.time is not None:
        head += f"  {_time_text(d.time)}"
    if d.src is not None:
        head += f"  {_endpoint(d.src, d.sport)} -> {_endpoint(d.dst, d.dport)}"
    if d.kind == "keepalive":
        return f"{head}  NAT keepalive"
    if d.kind == "esp":
        esp = record.esp or {}
        notes = "; ".join(record.notes)
        text = (
            f"{head}  ESP spi {esp.get('spi')} seq {esp.get('seq')}, "
            f"{esp.get('length')} octets  {notes}"
        )
        return text + (f"\n  ERROR: {record.error}" if record.error else "")
    lines = [head]
    h = record.header
    if h is not None:
        exchange = name_of(h.exchange, ExchangeType)
        lines.append(
            f"  {exchange} {_flags_text(h.flags, h.is_response, h.is_initiator)}, "
            f"message ID {h.message_id}"
        )
        lines.append(f"  SPIi {h.spi_i.hex()}  SPIr {h.spi_r.hex()}  IKEv{h.major}.{h.minor}")
    lines.extend(_payload_lines(record.payloads, "  "))
    lines.extend(f"  [{note}]" for note in record.notes)
    if record.inner is not None:
        lines.append("  inner payloads:")
        lines.extend(_payload_lines(record.inner, "    "))
    if record.error:
        lines.append(f"  ERROR: {record.error}")
    return "\n".join(lines)


def to_json(record: Record) -> dict[str, Any]:
    """The JSON object for one datagram (one line of ``--json`` output)."""
    d = record.dgram
    out: dict[str, Any] = {
        "frame": d.frame,
        "time": d.time,
        "src": d.src,
        "dst": d.dst,
        "sport": d.sport,
        "dport": d.dport,
        "kind": d.kind,
    }
    if d.kind == "esp":
        out.update(record.esp or {})
        out["notes"] = record.notes
        if record.error:
            out["error"] = record.error
        return out
    if d.kind == "keepalive":
        return out
    h = record.header
    out.update(
        spi_i=h.spi_i.hex() if h else None,
        spi_r=h.spi_r.hex() if h else None,
        exchange=name_of(h.exchange, ExchangeType) if h else None,
        message_id=h.message_id if h else None,
        initiator=h.is_initiator if h else None,
        response=h.is_response if h else None,
        payloads=[payload_name(p) for p in record.payloads],
        inner_payloads=None if record.inner is None else [payload_name(p) for p in record.inner],
        decrypted=record.inner is not None,
        notifies=[
            notify_json(p)
            for p in (*record.payloads, *(record.inner or ()))
            if isinstance(p, Notify)
        ],
        details=[view(p).json for p in record.payloads],
        inner_details=None if record.inner is None else [view(p).json for p in record.inner],
        notes=record.notes,
    )
    if record.error:
        out["error"] = record.error
    return out


def format_json(record: Record) -> str:
    return json.dumps(to_json(record), separators=(",", ":"))
