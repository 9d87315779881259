"""Operating Petrel (issue 10 §3, §4, §5, §7) between two Petrel daemons in namespaces.

- the ``petrel`` CLI as a VICI client: ``config check``, ``load`` into an empty daemon,
  ``up``, ``status``/``list-*`` (tables and ``--json``), ``loglevel`` at run time (the next
  exchange is logged at level 2, naming its IKE SA), ``log`` following events, ``down``;
- the Prometheus endpoint: a scrape during traffic shows the Child SA's byte counters
  growing; a burst of bad ESP and IKE datagrams shows in the drop counters by reason; a wrong
  PSK in the failures by notify, an unanswered peer in the retransmissions;
- the same CLI drives strongSwan's charon (``petrel load`` as ``swanctl --load-all``);
- the service: sd_notify readiness, SIGHUP reloading the file (the unchanged connection keeps
  its SPIs, a new one appears, a broken file changes nothing), SIGTERM deleting the IKE SA
  with the peer (which forgets it at once: no DPD is configured) before a clean exit.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from petrel.lab import Lab, PetrelPeer, StrongSwan, run_in, strongswan_pair_confs, wait_for
from petrel.lab.pairs import child_spis, logs, petrel_sas
from petrel.lab.strongswan import swanctl_psk_conf

pytestmark = pytest.mark.e2e

METRICS = "127.0.0.1:9273"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(ns: str) -> Samples:
    code = (
        "import sys, urllib.request; "
        "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"
    )
    text = run_in(ns, [sys.executable, "-c", code, f"http://{METRICS}/metrics"]).stdout
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, have), value in samples.items()
        if sample == name and set(labels.items()) <= set(have)
    )


def burst(ns: str, host: str) -> None:
    """200 ESP datagrams for an SPI nobody has (UDP 4500) and 200 garbage IKE datagrams."""
    code = (
        "import os, socket, sys\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "for i in range(200):\n"
        "    s.sendto(b'\\xde\\xad\\xbe\\xef' + i.to_bytes(4, 'big') + os.urandom(64),"
        " (sys.argv[1], 4500))\n"
        "    s.sendto(os.urandom(8) + bytes(8) + b'\\x21\\x20\\x25\\x08' + os.urandom(40),"
        " (sys.argv[1], 500))\n"
    )
    run_in(ns, [sys.executable, "-c", code, host])


def test_cli_load_up_status_loglevel_down_and_metrics(lab: Lab) -> None:
    l_conf, r_conf = strongswan_pair_confs(lab)
    right = PetrelPeer(lab, lab.right.ns, "right", r_conf, daemon_args=["--log-format", "json"])
    right.start()
    left = PetrelPeer(lab, lab.left.ns, "left", None, log="1", daemon_args=["--metrics", METRICS])
    left.start()
    left.conf.write_text(l_conf)
    left.conf.chmod(0o600)

    check = left.cli("config", "check", str(left.conf))
    assert check.returncode == 0 and "c (net)" in check.stdout, check
    loaded = left.cli("load", str(left.conf))
    assert loaded.returncode == 0, loaded
    assert "loaded connection 'c'" in loaded.stdout and "loaded ike secret 'ike-1'" in loaded.stdout
    (conns,) = [json.loads(line) for line in left.cli("list-conns", "--json").stdout.splitlines()]
    assert conns["c"]["children"]["net"]["remote-ts"] == [f"{lab.right.inner4}/32"]

    up = left.cli("up", "c")
    assert up.returncode == 0 and "net: up" in up.stdout, (up, logs(left, right))
    status = json.loads(left.cli("status", "--json").stdout)
    (sa,) = [sa for event in status["sas"] for sa in event.values()]
    assert sa["state"] == "ESTABLISHED" and status["conns"] == ["c"]
    table = left.cli("list-sas").stdout
    assert re.search(r"c #\d+ .*ESTABLISHED", table) and "net #" in table, table
    assert "ESTABLISHED" in left.cli("status").stdout

    # A scrape during traffic: the Child SA's counters grow.
    pinger = lab.spawn_in(
        lab.left.ns,
        ["ping", "-q", "-i", "0.01", "-c", "400", "-I", lab.left.inner4, lab.right.inner4],
        stdout=subprocess.DEVNULL,
    )
    assert wait_for(lambda: total(scrape(lab.left.ns), "petrel_child_sa_packets_total") > 20, 10)
    first = scrape(lab.left.ns)
    time.sleep(1.0)
    second = scrape(lab.left.ns)
    assert pinger.poll() is None, "the transfer ended before the second scrape"
    for direction in ("in", "out"):
        before = total(first, "petrel_child_sa_bytes_total", conn="c", direction=direction)
        after = total(second, "petrel_child_sa_bytes_total", conn="c", direction=direction)
        assert after > before > 0, (direction, before, after)
    assert total(second, "petrel_child_sas", state="INSTALLED") == 1
    assert total(second, "petrel_ike_sas", state="ESTABLISHED") == 1
    assert total(second, "petrel_ike_messages_total", exchange="IKE_AUTH", direction="out") == 1
    lab.stop(pinger)

    # A burst of bad input: drop counters by reason.
    burst(lab.right.ns, lab.left.outer4)
    assert wait_for(lambda: total(scrape(lab.left.ns), "petrel_esp_drops_total") >= 200, 10)
    after_burst = scrape(lab.left.ns)
    esp_reasons = {
        dict(labels)["reason"]: value
        for (name, labels), value in after_burst.items()
        if name == "petrel_esp_drops_total" and value
    }
    assert max(esp_reasons.values()) >= 200, esp_reasons
    assert total(after_burst, "petrel_ike_drops_total") >= 200, after_burst

    # Log levels at run time: the rekey is logged at level 2, naming its IKE SA.
    exchange = re.compile(r"\[IKE\] <c\|\d+> IKE SA \d+: sending CREATE_CHILD_SA request")
    assert not exchange.search(left.log_text())
    assert left.cli("loglevel", "ike=2").returncode == 0
    assert left.cli("loglevel", "bogus=2").returncode == 1
    assert left.cli("rekey", "--child", "net").returncode == 0
    assert wait_for(lambda: exchange.search(left.log_text()), 10), left.log_text()[-3000:]
    assert wait_for(lambda: total(scrape(lab.left.ns), "petrel_child_rekeys_total") >= 1, 10), logs(
        left, right
    )

    # `petrel log` follows events until interrupted; `petrel down` takes the tunnel down.
    follower_out = left.dir / "follow.jsonl"
    with open(follower_out, "wb") as out:
        follower = lab.spawn_in(
            None,
            [sys.executable, "-m", "petrel.cli", "--socket", str(left.vici), "log", "--json"],
            stdout=out,
        )
    time.sleep(1.0)  # registered
    down = left.cli("down", "c")
    assert down.returncode == 0 and "1 IKE SA" in down.stdout, down
    assert wait_for(lambda: "ike-updown" in follower_out.read_text(), 10)
    assert lab.stop(follower, signal.SIGINT) == 0
    events = [json.loads(line) for line in follower_out.read_text().splitlines()]
    assert any(e["event"] == "ike-updown" and "c" in e for e in events), events
    assert wait_for(lambda: not petrel_sas(right), 5)
    assert left.cli("down", "nothing").returncode == 1
    # The responder logged JSON lines, those about the IKE SA naming it.
    lines = [json.loads(line) for line in right.log_text().splitlines()]
    assert {"time", "group", "level", "message"} <= set(lines[0])
    assert any(line.get("conn") == "c" and line["group"] == "chd" for line in lines), lines


def spawn(lab: Lab, peer: PetrelPeer, notify: Path) -> subprocess.Popen[bytes]:
    """``peer``'s daemon with ``NOTIFY_SOCKET`` set, as systemd starts it."""
    argv = [
        *(sys.executable, "-m", "petrel.cli", "--socket", str(peer.vici), "daemon"),
        *("--config", str(peer.conf), "--log", "2"),
    ]
    env = {**os.environ, "NOTIFY_SOCKET": str(notify)}
    peer.proc = lab.spawn_in(peer.ns, argv, peer.log, env=env)
    return peer.proc


def notified(sock: socket.socket, timeout: float = 15) -> list[str]:
    sock.settimeout(timeout)
    return sock.recv(4096).decode().split("\n")


def test_service_notify_sighup_reload_and_sigterm_deletes(lab: Lab, tmp_path: Path) -> None:
    l_conf, r_conf = strongswan_pair_confs(lab)
    right = PetrelPeer(lab, lab.right.ns, "right", r_conf).start()
    left = PetrelPeer(lab, lab.left.ns, "left", l_conf)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(tmp_path / "notify"))
        proc = spawn(lab, left, tmp_path / "notify")
        ready = notified(notify)
        assert "READY=1" in ready and left.vici.exists(), (ready, left.log_text())

        assert left.initiate("net"), logs(left, right)
        spis = child_spis(left)
        assert len(spis) == 1

        # SIGHUP with a second connection added: c keeps its SAs, d is loaded.
        d_conf = swanctl_psk_conf(
            local_addr=lab.left.outer4,
            remote_addr=lab.right.outer4,
            local_id="left",
            remote_id="right",
            local_ts="198.51.100.9/32",
            remote_ts="203.0.113.9/32",
            conn="d",
            child="net2",
        )
        left.conf.write_text(l_conf + d_conf)
        proc.send_signal(signal.SIGHUP)
        reloading = notified(notify)
        assert "RELOADING=1" in reloading and any(
            f.startswith("MONOTONIC_USEC=") for f in reloading
        )
        assert "READY=1" in notified(notify)
        listed = left.cli("list-conns", "--json").stdout.splitlines()
        names = [next(iter(json.loads(line))) for line in listed]
        assert names == ["c", "d"], names
        assert child_spis(left) == spis, "the unchanged connection's Child SA was replaced"

        # A file that no longer parses: nothing changes, the error is logged.
        left.conf.write_text(l_conf.replace("version = 2", "version = 3"))
        proc.send_signal(signal.SIGHUP)
        assert "RELOADING=1" in notified(notify) and "READY=1" in notified(notify)
        assert wait_for(lambda: "not reloaded" in left.log_text(), 5)
        assert left.cli("list-conns", "--json").stdout.count("\n") == 2
        assert proc.poll() is None and child_spis(left) == spis

        # SIGTERM: the IKE SA is deleted with the peer, then a clean exit.
        assert len(petrel_sas(right)) == 1
        started = time.monotonic()
        assert left.stop() == 0
        assert "STOPPING=1" in notified(notify)
    assert wait_for(lambda: not petrel_sas(right), 3), logs(left, right)
    assert time.monotonic() - started < 10
    assert re.search(r"sending INFORMATIONAL request \d+ \[ D\(IKE\) \]", left.log_text())


@pytest.mark.interop
def test_cli_drives_charon_too(lab: Lab) -> None:
    """The CLI is a plain VICI client: ``petrel load`` configures strongSwan's charon as
    ``swanctl --load-all`` would, and ``up``/``status``/``list-*``/``down`` work against it
    (charon initiating to a Petrel peer)."""
    l_conf, r_conf = strongswan_pair_confs(lab)
    right = PetrelPeer(lab, lab.right.ns, "right", r_conf).start()
    swan = StrongSwan(lab, lab.left.ns, "left", l_conf).start()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "petrel.cli", "--socket", str(swan.vici), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

    loaded = cli("load", str(swan.conf))
    assert loaded.returncode == 0, (loaded, swan.log_text()[-2000:])
    (conn,) = [json.loads(line) for line in cli("list-conns", "--json").stdout.splitlines()]
    assert conn["c"]["children"]["net"]["local-ts"] == [f"{lab.left.inner4}/32"]
    up = cli("up", "net")
    assert up.returncode == 0, (up, logs(right, swan))
    status = json.loads(cli("status", "--json").stdout)
    assert status["version"]["daemon"] == "charon"
    (sa,) = [sa for event in status["sas"] for sa in event.values()]
    assert sa["state"] == "ESTABLISHED" and len(petrel_sas(right)) == 1
    assert lab.ping(lab.left.ns, lab.left.inner4, lab.right.inner4, count=2) == 2
    assert cli("down", "c").returncode == 0
    assert wait_for(lambda: not petrel_sas(right), 10)
    # Reloading the same file changes nothing and unloads nothing.
    again = cli("load", str(swan.conf))
    assert again.returncode == 0 and "unloaded" not in again.stdout, again


def test_metrics_count_failures_and_retransmissions(lab: Lab) -> None:
    """A wrong PSK shows as a failure by notify; an unanswered IKE_SA_INIT as retransmissions
    and an IKE SA given up; `petrel up` exits 1 for both."""
    l_conf, _ = strongswan_pair_confs(lab)
    _, r_conf = strongswan_pair_confs(lab, secret="0sd3JvbmdXUk9OR3dyb25nV1JPTkc=")
    right = PetrelPeer(lab, lab.right.ns, "right", r_conf).start()
    fast = ["--retransmit-timeout", "0.5", "--retransmit-base", "1.2", "--retransmit-tries", "2"]
    left = PetrelPeer(lab, lab.left.ns, "left", l_conf, daemon_args=["--metrics", METRICS, *fast])
    left.start()

    assert left.cli("up", "c", "--timeout", "10").returncode == 1
    samples = scrape(lab.left.ns)
    failed = total(samples, "petrel_ike_failures_total", notify="AUTHENTICATION_FAILED")
    assert failed >= 1, {k: v for k, v in samples.items() if "failures" in k[0]}
    assert total(samples, "petrel_ike_sas_established_total") == 0

    right.stop()
    assert left.cli("up", "c", "--timeout", "15").returncode == 1
    samples = scrape(lab.left.ns)
    retransmitted = total(
        samples, "petrel_ike_retransmissions_total", exchange="IKE_SA_INIT", kind="request"
    )
    assert retransmitted >= 2, logs(left)
    assert total(samples, "petrel_ike_sa_down_total") >= 1
