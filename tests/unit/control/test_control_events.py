"""SA events and log streaming through the control seam, against a stand-in ControlHost:
ike-updown/child-updown with charon's sections, child-rekey and ike-rekey with old and new,
down events from the last snapshot, ``log`` lines and an initiation's ``control-log``."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from petrel import logsetup
from petrel.control.api import ChildSaSnapshot, IkeSaSnapshot, TrafficSnapshot
from petrel.control.commands import ControlCommands
from petrel.control.events import SaEvents
from petrel.control.logstream import LogLine, ViciLogHandler
from petrel.control.vici import decode_message, encode_message
from petrel.crypto.encr import encr_spec
from petrel.ike import events as ev
from petrel.ike.negotiation import Algorithms
from petrel.policy.selectors import Selector
from petrel.wire.registry import EncrId, NotifyType

GCM = Algorithms(encr_spec(EncrId.AES_GCM_16, 256), None, None, None, False)


def child(child_id: int, spi_in: int, traffic: TrafficSnapshot | None = None) -> ChildSaSnapshot:
    return ChildSaSnapshot(
        name="net",
        child_id=child_id,
        state="INSTALLED",
        mode="TUNNEL",
        spi_in=spi_in,
        spi_out=spi_in + 1,
        encap=True,
        algorithms=GCM,
        local_ts=(Selector.from_cidr("198.51.100.1/32"),),
        remote_ts=(Selector.from_cidr("203.0.113.1/32"),),
        install_time=3,
        traffic=traffic or TrafficSnapshot(bytes_in=10, packets_in=1),
    )


def ike(ike_id: int, *children: ChildSaSnapshot) -> IkeSaSnapshot:
    return IkeSaSnapshot(
        name="c",
        ike_id=ike_id,
        state="ESTABLISHED",
        local=("192.0.2.1", 4500),
        remote=("192.0.2.2", 4500),
        local_id="left",
        remote_id="right",
        initiator=True,
        spi_i=bytes(range(8)),
        spi_r=bytes(range(8, 16)),
        nat_local=False,
        nat_remote=False,
        nat_fake=True,
        encap=True,
        algorithms=GCM,
        established=5,
        children=children,
    )


class Host:
    """The few ControlHost queries the events use; SAs set by the test."""

    def __init__(self) -> None:
        self.sas: dict[int, IkeSaSnapshot] = {}
        self.traffic: dict[int, TrafficSnapshot] = {}
        self.started: list[tuple[str, str | None]] = []

    def ike_sa(self, ike_id: int) -> IkeSaSnapshot | None:
        return self.sas.get(ike_id)

    def ike_sas(self) -> list[IkeSaSnapshot]:
        return list(self.sas.values())

    def ike_name(self, ike_id: int) -> str | None:
        sa = self.sas.get(ike_id)
        return sa.name if sa else None

    def child_owner(self, child_id: int) -> int | None:
        return next(
            (i for i, sa in self.sas.items() if any(c.child_id == child_id for c in sa.children)),
            None,
        )

    def child_traffic(self, child_id: int) -> TrafficSnapshot | None:
        return self.traffic.get(child_id)

    def ike_drops(self) -> Mapping[str, int]:
        return {}

    def message_counts(self) -> Mapping[str | None, Mapping[str, int]]:
        return {}

    def initiate_child(self, child_name: str) -> int:
        logging.getLogger("petrel.ike").info("IKE SA 7 (c): initiating to 192.0.2.2:500")
        logging.getLogger("petrel.ike").info("IKE SA 8 (x): someone else's line")
        return 7


def up_child(ike_id: int, child_id: int) -> ev.ChildSaUp:
    keys = ev.ChildKeys(1, GCM.encr, b"", None, b"")
    return ev.ChildSaUp(
        ike_id, child_id, "net", keys, keys, False, 32, (), (), ("", 0), ("", 0), True
    )


def wire(message: Mapping[str, Any]) -> dict[str, Any]:
    return decode_message(encode_message(message))


def test_sa_events_carry_charons_sections() -> None:
    host = Host()
    sent: list[tuple[str, dict[str, Any]]] = []
    events = SaEvents(host, lambda name, message: sent.append((name, wire(message))))  # type: ignore[arg-type]

    host.sas[1] = ike(1)
    events.on_event(ev.IkeSaUp(1, "c", ("", 0), ("", 0), "left", "right"))
    name, message = sent[-1]
    assert name == "ike-updown" and message["up"] == "yes"
    section = message["c"]
    assert section["uniqueid"] == "1" and section["initiator-spi"] == "0001020304050607"
    assert section["encr-alg"] == "AES_GCM_16" and section["encr-keysize"] == "256"
    assert "child-sas" not in section  # list_ike alone, as charon

    host.sas[1] = ike(1, child(2, 0x1000))
    events.on_event(up_child(1, 2))
    name, message = sent[-1]
    assert name == "child-updown" and message["up"] == "yes"
    sa = message["c"]["child-sas"]["net-2"]
    assert sa["spi-in"] == "00001000" and sa["state"] == "INSTALLED"
    assert sa["local-ts"] == ["198.51.100.1/32"] and sa["bytes-in"] == "10"

    # rekeyed: child-rekey with old (its last counters) and new; no child-updown for the old
    host.sas[1] = ike(1, child(2, 0x1000), child(3, 0x2000))
    events.on_event(up_child(1, 3))
    host.sas[1] = ike(1, child(3, 0x2000))
    host.traffic[2] = TrafficSnapshot(bytes_in=999, packets_in=9)
    events.on_event(ev.ChildSaRekeyed(1, 2, 3, "net"))
    events.on_event(ev.ChildSaDown(1, 2, "net", 0x1000, 0x1001, "rekeyed"))
    name, message = sent[-1]
    assert name == "child-rekey"
    pair = message["c"]["child-sas"]["net"]
    assert pair["old"]["spi-in"] == "00001000" and pair["old"]["state"] == "REKEYED"
    assert pair["old"]["bytes-in"] == "999"
    assert pair["new"]["spi-in"] == "00002000"

    # its peer moved (NAT mapping): ike-update with the new addresses first
    events.on_event(ev.IkeSaUpdated(1, ("192.0.2.1", 4500), ("192.0.2.9", 1024), True))
    name, message = sent[-1]
    assert name == "ike-update"
    assert (message["remote-host"], message["remote-port"]) == ("192.0.2.9", "1024")
    assert message["c"]["uniqueid"] == "1"

    # the IKE SA rekeyed: old and new sections; its children follow the new one
    host.sas[4] = dataclasses.replace(ike(4, child(3, 0x2000)), spi_i=b"\xaa" * 8)
    events.on_event(ev.IkeSaRekeyed(1, 4, "c"))
    del host.sas[1]
    name, message = sent[-1]
    assert name == "ike-rekey"
    assert message["c"]["old"]["uniqueid"] == "1" and message["c"]["new"]["uniqueid"] == "4"
    assert events.child_owner(3) == 4

    # down: the engine forgot them; the last snapshots are reported
    del host.sas[4]
    events.on_event(ev.ChildSaDown(4, 3, "net", 0x2000, 0x2001, "deleted by us"))
    name, message = sent[-1]
    assert name == "child-updown" and "up" not in message
    assert message["c"]["child-sas"]["net-3"]["state"] == "DELETED"
    events.on_event(ev.IkeSaDown(4, "c", "deleted by us"))
    name, message = sent[-1]
    assert name == "ike-updown" and "up" not in message
    assert message["c"]["uniqueid"] == "4" and message["c"]["state"] == "DELETING"
    assert events.ike_name(4) is None  # forgotten once down


def test_alerts_name_what_went_wrong() -> None:
    host = Host()
    sent: list[tuple[str, dict[str, Any]]] = []
    events = SaEvents(host, lambda name, message: sent.append((name, wire(message))))  # type: ignore[arg-type]
    host.sas[1] = dataclasses.replace(ike(1), established=None)
    events.on_event(ev.NegotiationFailed(1, "c", NotifyType.AUTHENTICATION_FAILED, "x", True))
    events.on_event(ev.NegotiationFailed(1, "c", NotifyType.AUTHENTICATION_FAILED, "x", False))
    events.on_event(ev.NegotiationFailed(1, "c", NotifyType.NO_PROPOSAL_CHOSEN, "x", True))
    host.sas[1] = ike(1)
    events.on_event(ev.NegotiationFailed(1, "c", NotifyType.NO_PROPOSAL_CHOSEN, "x", True))
    events.on_event(ev.NegotiationFailed(1, "c", NotifyType.TS_UNACCEPTABLE, "x", False))
    events.on_event(ev.NegotiationFailed(1, "c", NotifyType.INVALID_SYNTAX, "x", False))
    del host.sas[1]
    events.on_event(ev.IkeSaDown(1, "c", "peer not responding"))
    alerts = [m for name, m in sent if name == "alert"]
    assert [a["type"] for a in alerts] == [
        "local-auth-failed",
        "peer-auth-failed",
        "proposal-mismatch-ike",
        "proposal-mismatch-child",
        "ts-mismatch",
        "retransmit-send-timeout",
    ]
    assert alerts[-1]["ike-sa"]["c"]["uniqueid"] == "1"  # from the last snapshot


def test_log_records_become_charon_lines() -> None:
    """Records become charon's log lines through the log set-up's own reading of their group,
    level and IKE SA (a Child SA named by its id is resolved through the daemon's resolver)."""
    logsetup.set_sa_resolver(lambda ike_id: None, {9: ("c", 4)}.get)
    lines: list[LogLine] = []
    handler = ViciLogHandler(lines.append, lambda: True, lambda *a: None)
    logger = logging.getLogger("petrel.control.test_logstream")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        logger.info("IKE SA %d (%s): initiating to %s", 3, "c", "192.0.2.2")
        logger.info("IKE SA c[5] rekeyed as [6]")
        logger.debug("CHILD_SA net{9} established")
        logger.warning("nothing about an SA")
    finally:
        logger.removeHandler(handler)
    assert [(line.ike_id, line.level) for line in lines] == [(3, 1), (5, 1), (4, 2), (None, 0)]
    assert lines[0].msg == "IKE SA 3 (c): initiating to 192.0.2.2"
    assert lines[0].group == "CFG" and lines[0].thread == 1

    # another reading of records may be given (group, level, IKE SA): it is used
    def context(record: logging.LogRecord) -> tuple[str, int, tuple[str | None, int] | None]:
        return "chd", 1, ("c", 42)

    lines.clear()
    handler = ViciLogHandler(lines.append, lambda: True, lambda *a: None, context)
    logger.addHandler(handler)
    try:
        logger.info("CHILD_SA net{9} established")
    finally:
        logger.removeHandler(handler)
    assert [(line.group, line.level, line.ike_id) for line in lines] == [("CHD", 1, 42)]


class Emitted:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def registered(self, event: str) -> bool:
        return event == "control-log"

    def emit_nowait(self, event: str, message: Mapping[str, Any]) -> bool:
        self.events.append((event, wire(message)))
        return True


def test_initiate_streams_its_ike_sas_lines_only() -> None:
    async def main() -> None:
        host = Host()
        control = ControlCommands(host)  # type: ignore[arg-type]
        handler = control.log_handler()
        root = logging.getLogger("petrel")
        old_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        emitter = Emitted()
        try:
            task = asyncio.ensure_future(
                control.initiate({"child": "net", "timeout": "2000"}, emitter)  # type: ignore[arg-type]
            )
            await asyncio.sleep(0.05)
            logging.getLogger("petrel.ike").info("IKE SA 7: IKE_SA_INIT done")
            logging.getLogger("petrel.ike").debug("IKE SA 7: beyond loglevel 1")
            control.on_event(ev.IkeSaUp(7, "c", ("", 0), ("", 0), "l", "r"))
            control.on_event(up_child(7, 1))
            reply = await task
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
        assert reply == {"success": "yes"}
        msgs = [m["msg"] for name, m in emitter.events if name == "control-log"]
        assert msgs == ["IKE SA 7 (c): initiating to 192.0.2.2:500", "IKE SA 7: IKE_SA_INIT done"]
        first = emitter.events[0][1]
        assert first["group"] == "IKE" and first["level"] == "1"
        assert first["ikesa-uniqueid"] == "7"
        assert not control._taps  # the tap ends with the command

    asyncio.run(main())


def test_initiate_timeout_and_unknown_config() -> None:
    async def main() -> None:
        control = ControlCommands(Host())  # type: ignore[arg-type]
        emitter = Emitted()
        reply = await control.initiate({"child": "net", "timeout": "50"}, emitter)  # type: ignore[arg-type]
        assert reply == {"success": "no", "errmsg": "CHILD_SA 'net' not established after 50ms"}
        reply = await control.initiate({}, emitter)  # type: ignore[arg-type]
        assert reply == {"success": "no", "errmsg": "missing configuration name"}

    asyncio.run(main())


def test_loglevel_above_the_daemons_adds_lines_only_for_the_command() -> None:
    async def main() -> None:
        host = Host()
        control = ControlCommands(host)  # type: ignore[arg-type]
        handler = control.log_handler()
        root, ike_log = logging.getLogger("petrel"), logging.getLogger("petrel.ike")
        printed: list[str] = []

        class Stderr(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                printed.append(record.getMessage())

        stderr = Stderr()
        root.handlers[:] = [stderr, handler]  # tests/unit/conftest.py puts the loggers back
        root.setLevel(logging.INFO)
        ike_log.setLevel(logging.INFO)  # the daemon logs ike at level 1
        emitter = Emitted()
        task = asyncio.ensure_future(
            control.initiate({"child": "net", "timeout": "2000", "loglevel": "2"}, emitter)  # type: ignore[arg-type]
        )
        await asyncio.sleep(0.05)
        assert ike_log.isEnabledFor(logging.DEBUG)  # boosted for the command
        ike_log.debug("IKE SA 7: sending IKE_AUTH request 1 [ IDi AUTH SA TSi TSr ]")
        control.on_event(ev.IkeSaUp(7, "c", ("", 0), ("", 0), "l", "r"))
        control.on_event(up_child(7, 1))
        assert await task == {"success": "yes"}
        assert not ike_log.isEnabledFor(logging.DEBUG)  # and restored after it
        ike_log.debug("IKE SA 7: after the command")
        msgs = [m["msg"] for name, m in emitter.events if name == "control-log"]
        assert "IKE SA 7: sending IKE_AUTH request 1 [ IDi AUTH SA TSi TSr ]" in msgs
        assert [m["level"] for _, m in emitter.events if "IKE_AUTH" in m["msg"]] == ["2"]
        assert not any("IKE_AUTH" in m or "after the command" in m for m in printed), printed
        assert any("initiating to" in m for m in printed)  # level 1 printed as before
        assert not stderr.filters

    asyncio.run(main())


def test_list_sas_filters_ike_and_child_sas() -> None:
    async def main() -> None:
        host = Host()
        host.sas[1] = ike(1, child(2, 0x1000), dataclasses.replace(child(3, 0x2000), name="x"))
        host.sas[4] = dataclasses.replace(ike(4), name="d")
        control = ControlCommands(host)  # type: ignore[arg-type]
        listed: list[dict[str, Any]] = []

        class Collect:
            async def emit(self, event: str, message: Mapping[str, Any]) -> bool:
                listed.append(wire(message))
                return True

        await control.list_sas({}, Collect())  # type: ignore[arg-type]
        assert [next(iter(m)) for m in listed] == ["c", "d"]
        listed.clear()
        await control.list_sas({"ike": "c", "child": "x"}, Collect())  # type: ignore[arg-type]
        assert list(listed[0]["c"]["child-sas"]) == ["x-3"]
        listed.clear()
        await control.list_sas({"ike-id": "1", "child-id": "2"}, Collect())  # type: ignore[arg-type]
        assert list(listed[0]["c"]["child-sas"]) == ["net-2"]

    asyncio.run(main())


def test_commands_with_hostile_values_answer_no() -> None:
    async def main() -> None:
        host = Host()
        host.connections = lambda: {}  # type: ignore[attr-defined]
        control = ControlCommands(host)  # type: ignore[arg-type]
        emitter = Emitted()
        odd: list[dict[str, Any]] = [
            {"child": ["net", "x"], "timeout": {"a": "1"}},
            {"ike": {"c": "1"}, "ike-id": ["1"], "loglevel": "nine"},
            {"child": "", "child-id": "-1", "timeout": "1e9"},
        ]
        for message in odd:
            for command in (control.initiate, control.terminate, control.rekey):
                reply = await command(message, emitter)  # type: ignore[arg-type]
                assert reply["success"] == "no", (command, message, reply)

    asyncio.run(main())
