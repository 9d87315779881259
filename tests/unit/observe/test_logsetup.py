"""charon-style logging: groups and levels, run-time changes, IKE SA names, JSON lines."""

from __future__ import annotations

import io
import json
import logging

import pytest

from petrel import logsetup


def test_parse_levels_charon_groups_and_aliases() -> None:
    assert logsetup.parse_levels("ike=2, chd=1,daemon=0,-1") == {
        "ike": 2,
        "chd": 1,
        "dmn": 0,
        "default": -1,
    }
    for bad in ("bogus=1", "ike=5", "ike=x", "9"):
        with pytest.raises(ValueError):
            logsetup.parse_levels(bad)


def _capture(spec: str, fmt: str = "text") -> io.StringIO:
    stream = io.StringIO()
    logsetup.setup_logging(spec, fmt, stream)
    return stream


def test_levels_per_group_and_child_tasks_are_chd() -> None:
    out = _capture("ike=2,chd=0,net=1")
    logging.getLogger("petrel.ike").debug("IKE SA 7707: visible at ike=2")
    record = logging.LogRecord("petrel.ike", logging.INFO, "child_rekey.py", 1, "hidden", (), None)
    record.module = "child_rekey"
    logging.getLogger("petrel.ike").handle(record)
    logging.getLogger("petrel.net").debug("hidden: net is 1")
    logging.getLogger("petrel.net").info("shown: net info")
    text = out.getvalue()
    assert "[IKE] <?|7707> IKE SA 7707: visible at ike=2" in text
    assert "hidden" not in text and "[NET] shown: net info" in text


def test_set_levels_at_run_time_and_reload_hook() -> None:
    out = _capture("1")
    log = logging.getLogger("petrel.ike")
    log.debug("before")
    assert logsetup.reload_log_levels({"log": b"ike=2"}) is None
    log.debug("after")
    assert logsetup.current_levels()["ike"] == 2 and logsetup.current_levels()["net"] == 1
    assert logsetup.reload_log_levels({"log": "ike=9"}) == (
        "log: log level of ike must be -1..4, not 9"
    )
    assert logsetup.reload_log_levels({}) is None  # swanctl --reload-settings: nothing to do
    assert logsetup.current_levels()["ike"] == 2
    assert "before" not in out.getvalue() and "after" in out.getvalue()
    logsetup.set_levels("-1")
    log.warning("silenced")
    assert "silenced" not in out.getvalue()


def test_lines_name_their_ike_sa() -> None:
    out = _capture("2")
    logsetup.set_sa_resolver(
        lambda ike_id: {4: "gw"}.get(ike_id), lambda child: ("gw", 4) if child == 9 else None
    )
    log = logging.getLogger("petrel.ike")
    log.info("IKE SA %d: rekeying the IKE SA", 4)
    log.info("CHILD_SA %s{%d} established", "net", 9)
    log.info("IKE SA %s[%d] established between …", "other", 12)
    log.info("no SA here")
    lines = out.getvalue().splitlines()
    assert "[IKE] <gw|4> IKE SA 4: rekeying" in lines[0]
    assert "[IKE] <gw|4> CHILD_SA net{9}" in lines[1]
    assert "[IKE] <other|12> IKE SA other[12]" in lines[2]
    assert "[IKE] no SA here" in lines[3]
    logsetup.set_sa_resolver(lambda _i: None, lambda _c: None)
    log.info("IKE SA %d (%s) down: %s", 4, "gw", "deleted")  # gone: its name is remembered
    assert "<gw|4>" in out.getvalue().splitlines()[-1]


def test_a_line_may_name_its_sa_itself() -> None:
    """A Child SA gone from its IKE SA cannot be resolved: the engine names the SA (extra=),
    and both the log line and a VICI event's reading keep it."""
    out = _capture("1")
    log = logging.getLogger("petrel.ike")
    log.info("CHILD_SA %s{%d} down", "net", 7, extra={"petrel_sa": ("gw", 3)})
    assert "[IKE] <gw|3> CHILD_SA net{7} down" in out.getvalue()
    record = logging.LogRecord("petrel.ike", logging.INFO, __file__, 1, "CHILD_SA x{7}", (), None)
    record.petrel_sa = ("gw", 3)
    assert logsetup.record_context(record) == ("ike", 1, ("gw", 3))


def test_json_lines() -> None:
    out = _capture("2", "json")
    logsetup.set_sa_resolver(lambda ike_id: "gw", lambda _c: None)
    logging.getLogger("petrel.esp").warning("dropped: %s", "replayed")
    logging.getLogger("petrel.ike").debug("IKE SA 3: sending IKE_AUTH request 1 [ IDi AUTH ]")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["group"] == "esp" and first["level"] == 0
    assert first["message"] == "dropped: replayed" and "conn" not in first
    assert (second["group"], second["level"], second["conn"], second["ike_sa"]) == (
        "ike",
        2,
        "gw",
        3,
    )
    assert second["time"].endswith("Z")


def test_record_context_for_vici_log_events() -> None:
    logsetup.set_sa_resolver(lambda ike_id: "gw" if ike_id == 8 else None, lambda _c: None)
    record = logging.LogRecord("petrel.esp", logging.WARNING, "x.py", 1, "IKE SA %d: x", (8,), None)
    assert logsetup.record_context(record) == ("esp", 0, ("gw", 8))
    record = logging.LogRecord("petrel.control.server", logging.DEBUG, "x.py", 1, "plain", (), None)
    assert logsetup.record_context(record) == ("cfg", 2, None)
