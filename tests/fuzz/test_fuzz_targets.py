"""The fuzz targets of fuzz/ in CI (see fuzz/README.md).

(a) Always, in-process: every target's committed corpus (fuzz/seeds/<name>/) and built-in
    seeds go through its ``TestOneInput``; guards check the targets still do their job (the
    engine's re-sealed messages authenticate, ESP sessions get packets through).
(b) Marked ``fuzz``: each target runs under atheris as a subprocess for
    ``-atheris_runs=100000`` (with ``-rss_limit_mb=2048 -timeout=10``, a fixed seed), two at a
    time; each must exit 0 and report at least 100000 executions.  Without atheris these skip,
    except under ``CI=true``, where a missing atheris fails.

``PETREL_FUZZ_RUNS`` changes the number of executions (for a quick local check), and
``PETREL_FUZZ_SEED`` the libFuzzer seed.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

FUZZ_DIR = Path(__file__).resolve().parents[2] / "fuzz"
TARGETS = ("decode", "engine", "esp", "vici", "swanctl")
RUNS = int(os.environ.get("PETREL_FUZZ_RUNS", "100000"))
SEED = os.environ.get("PETREL_FUZZ_SEED", "1")
MAX_SECONDS = 900  # per target: a machine this slow fails with a clear message, not a hang
CORPUS_LIMIT = 1 << 20


def _load(name: str) -> ModuleType:
    path = FUZZ_DIR / f"fuzz_{name}.py"
    spec = importlib.util.spec_from_file_location(f"petrel_fuzz_target_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_MODULES: dict[str, ModuleType] = {}


def target(name: str) -> ModuleType:
    if name not in _MODULES:
        _MODULES[name] = _load(name)
    return _MODULES[name]


def _common() -> ModuleType:
    target("decode")  # puts fuzz/ on sys.path
    import _common

    return _common


# ---------------------------------------------------------------------------- (a) replay


@pytest.mark.parametrize("name", TARGETS)
def test_corpus_replays_cleanly(name: str) -> None:
    module = target(name)
    common = _common()
    files = common.corpus_files(name)
    assert len(files) >= 10, f"fuzz/seeds/{name}/ has rotted: run fuzz/make_corpus.py"
    inputs = [p.read_bytes() for p in files] + list(module.seeds())
    with common.petrel_logs_formatted():
        for data in inputs:
            module.TestOneInput(data)


def test_corpora_are_small() -> None:
    total = sum(p.stat().st_size for p in (FUZZ_DIR / "seeds").rglob("*") if p.is_file())
    assert total < CORPUS_LIMIT


def test_engine_messages_authenticate() -> None:
    """Every scenario's message, re-sealed by the harness, passes the receiver's integrity
    check and decodes: otherwise every mutation would die there and fuzz nothing."""
    module = target("engine")
    common = _common()
    for index, scenario in enumerate(module.scenarios()):
        inp = common.Input(bytes((index,)))
        inp.byte()
        datagrams = module.forge(inp, scenario)
        assert len(datagrams) == len(scenario.raw), scenario.name
        receiver = scenario.receiver.restore()
        for datagram in datagrams:
            receiver.receive(datagram, scenario.local, scenario.remote, scenario.now)
        drops = receiver.drops.counts
        assert not [k for k in drops if "integrity" in k or "malformed" in k], drops
        if not scenario.header.is_response and not drops:  # a request is answered
            assert receiver.take_datagrams(), scenario.name


def test_engine_scenarios_cover_every_exchange() -> None:
    names = [s.name for s in target("engine").scenarios()]
    for needed in (
        "gcm/init-request",
        "gcm/init-response",
        "gcm/auth-request",
        "gcm/auth-response",
        "gcm/create-child-request",
        "gcm/rekey-child-response",
        "gcm/rekey-ike-request",
        "gcm/delete-child-request",
        "gcm/delete-ike-request",
        "gcm/liveness-response",
        "gcm/child-rekey-collision",
        "cbc/auth-request",
        "gcm-frag/auth-request",
        "gcm-frag/rekey-child-request",
        "vip/auth-request",
        "vip/auth-response",
        "mobike/update-request",
        "childless/auth-request",
        "childless/create-child-request",
        "childless-never/auth-request",
    ):
        assert needed in names
    # The committed corpus names scenarios by index: new ones are appended.
    assert (names[0], names[62], names[63]) == (
        "gcm/init-request",
        "gcm-natt/auth-request",
        "vip/auth-request",
    )
    fragmented = [s for s in target("engine").scenarios() if s.fragmented]
    assert fragmented and all(len(s.raw) > 1 for s in fragmented)


def _replayed(name: str) -> tuple[Any, Any]:
    """The receiver of engine scenario ``name`` after its message, unchanged; the scenario."""
    module = target("engine")
    common = _common()
    scenario = next(s for s in module.scenarios() if s.name == name)
    receiver = scenario.receiver.restore()
    for datagram in module.forge(common.Input(b""), scenario):
        receiver.receive(datagram, scenario.local, scenario.remote, scenario.now)
    return receiver, scenario


def _kinds(scenario: Any) -> list[str]:
    """The scenario's payloads: each Notify by its type, the others by their class."""
    names = [type(p).__name__ for p in scenario.payloads]
    return [
        p.notify_type.name if name == "Notify" else name
        for p, name in zip(scenario.payloads, names, strict=True)
    ]


def test_engine_newer_worlds_reach_their_features() -> None:
    """The virtual IP, MOBIKE and childless scenarios carry what they are about, and their
    unchanged messages reach the feature: a lease, an assigned address, a moved IKE SA, a
    childless IKE SA and its first Child SA, a childless IKE_AUTH refused."""
    from petrel.wire.registry import CfgType

    gateway, scenario = _replayed("vip/auth-request")
    (cp,) = [p for p in scenario.payloads if type(p).__name__ == "CP"]
    assert cp.cfg_type == CfgType.CFG_REQUEST
    assert [(str(a), owner, up) for a, owner, up in gateway.pools["p"].leases()] == [
        ("10.3.0.1", "left", True)
    ]
    client, scenario = _replayed("vip/auth-response")
    (cp,) = [p for p in scenario.payloads if type(p).__name__ == "CP"]
    assert cp.cfg_type == CfgType.CFG_REPLY
    assert [sa.local_vips for sa in client.ike_sas() if sa.name == "c"] == [("10.3.0.1",)]
    assert "MOBIKE_SUPPORTED" in _kinds(_replayed("mobike/auth-request")[1])
    right, scenario = _replayed("mobike/update-request")
    assert _kinds(scenario) == [
        "UPDATE_SA_ADDRESSES",
        "NAT_DETECTION_SOURCE_IP",
        "NAT_DETECTION_DESTINATION_IP",
        "COOKIE2",
    ]
    assert [sa.remote for sa in right.ike_sas() if sa.name == "c"] == [("192.0.2.3", 4500)]
    for name in ("childless/auth-request", "childless-never/auth-request"):
        assert not {"SA", "TSi", "TSr"} & set(_kinds(_replayed(name)[1]))
    right, _ = _replayed("childless/auth-request")
    assert [len(sa.children) for sa in right.ike_sas() if sa.name == "c"] == [0]
    right, _ = _replayed("childless/create-child-request")
    assert [len(sa.children) for sa in right.ike_sas() if sa.name == "c"] == [1]
    right, _ = _replayed("childless-never/auth-request")
    assert not [sa for sa in right.ike_sas() if sa.name == "c"]


def test_engine_invariants_catch_a_leaked_or_doubled_lease() -> None:
    """The pool check is not a no-op: a lease counting more (or fewer) IKE SAs than hold it,
    or an IKE SA holding an address its pool does not lease, fails it."""
    module = target("engine")
    gateway, scenario = _replayed("vip/auth-request")
    module.check_engine(gateway, scenario.bystanders)
    pool = gateway.pools["p"]
    offset, refs = pool.online["left"]
    pool.online["left"] = (offset, refs + 1)  # a reference no IKE SA holds: leaked
    with pytest.raises(AssertionError, match="refs"):
        module.check_engine(gateway, scenario.bystanders)
    pool.online["left"] = (offset, refs)
    (sa,) = [sa for sa in gateway.ike_sas() if sa.remote_vips]
    sa.remote_vips += (("p", "10.3.0.9"),)
    with pytest.raises(AssertionError, match="does not lease"):
        module.check_engine(gateway, scenario.bystanders)


def test_engine_invariants_catch_a_child_sa_beyond_the_virtual_ip() -> None:
    """With "dynamic" resolved, a virtual IP client's Child SA for its virtual IP passes and
    one for anything more fails (the check_outputs of the virtual IP world is not a no-op)."""
    import dataclasses

    module = target("engine")
    client, _ = _replayed("vip/auth-response")
    events = client.take_events()
    client._ctx.events = list(events)
    module.check_outputs(client)
    (up,) = [e for e in events if type(e).__name__ == "ChildSaUp"]
    wider = dataclasses.replace(up.local_ts[0], end=ipaddress.ip_address("10.3.0.2"))
    client._ctx.events = [dataclasses.replace(up, local_ts=(wider,))]
    with pytest.raises(module.NotTheVirtualIp):
        module.check_outputs(client)


def test_engine_invariants_catch_a_disturbed_bystander() -> None:
    """The bystander check is not a no-op: an engine whose bystander SA changed fails it."""
    module = target("engine")
    scenario = module.scenarios()[0]
    receiver = scenario.receiver.restore()
    module.check_engine(receiver, scenario.bystanders)
    (bystander,) = [sa for sa in receiver.ike_sas() if sa.ike_id in scenario.bystanders]
    bystander.next_request_id += 1
    with pytest.raises(AssertionError, match="bystander"):
        module.check_engine(receiver, scenario.bystanders)


def test_esp_sessions_get_packets_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ESP target's authentic packets are accepted (so the checks behind the ICV run),
    the sample capture's packets included."""
    module = target("esp")
    results: list[object] = []
    decapsulate = module.InboundSa.decapsulate

    def counting(self: object, packet: bytes, now: float | None = None) -> object:
        results.append(decapsulate(self, packet, now))
        return results[-1]

    monkeypatch.setattr(module.InboundSa, "decapsulate", counting)
    for data in module.seeds():
        module.TestOneInput(data)
    assert sum(r is not None for r in results) >= len(module.SUITES)
    results.clear()
    for path in _common().corpus_files("esp"):
        if path.name.startswith("sample-pcap-esp"):
            module.TestOneInput(path.read_bytes())
    assert len([r for r in results if r is not None]) >= 2  # both directions' echo


def test_known_bugs_name_their_regression_tests() -> None:
    root = FUZZ_DIR.parent
    for name in TARGETS:
        for bug in getattr(target(name), "KNOWN_BUGS", ()):
            path, _, test = bug.regression_test.partition("::")
            assert (root / path).is_file() and f"def {test}(" in (root / path).read_text()


# ---------------------------------------------------------------------------- (b) atheris


def _atheris_missing() -> str | None:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return "atheris is not installed (pip install -e '.[fuzz]')"
    return None


def _run(name: str, workdir: Path) -> tuple[int, str, float]:
    corpus = workdir / f"corpus-{name}"
    corpus.mkdir()
    common = _common()
    for path in common.corpus_files(name):
        (corpus / path.name).write_bytes(path.read_bytes())
    command = [
        sys.executable,
        str(FUZZ_DIR / f"fuzz_{name}.py"),
        f"-atheris_runs={RUNS}",
        "-rss_limit_mb=2048",
        "-timeout=10",
        f"-max_total_time={MAX_SECONDS}",
        f"-seed={SEED}",
        f"-artifact_prefix={workdir}/{name}-",
        str(corpus),
    ]
    start = time.monotonic()
    done = subprocess.run(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=workdir
    )
    return done.returncode, done.stdout, time.monotonic() - start


@pytest.fixture(scope="module")
def fuzz_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future] | str]:
    """All targets under atheris, two at a time (the machine has two cores); or why not."""
    missing = _atheris_missing()
    if missing:
        yield missing
        return
    workdir = tmp_path_factory.mktemp("fuzz")
    order = ("engine", "swanctl", "esp", "vici", "decode")  # the longest first
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {name: pool.submit(_run, name, workdir) for name in order}


@pytest.mark.fuzz
@pytest.mark.parametrize("name", TARGETS)
def test_fuzz_target_runs(name: str, fuzz_runs: dict[str, Future] | str) -> None:
    if isinstance(fuzz_runs, str):
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {fuzz_runs}")
        pytest.skip(fuzz_runs)
    returncode, output, seconds = fuzz_runs[name].result()
    lines = output.splitlines()
    crash = [i for i, line in enumerate(lines) if "Uncaught Python exception" in line]
    tail = "\n".join(lines[crash[0] - 2 :] if crash else lines[-30:])
    assert returncode == 0, f"fuzz_{name}.py exited {returncode}:\n{tail}"
    done = re.findall(r"^Done (\d+) (?:runs )?in (\d+) second", output, re.MULTILINE)
    assert done, f"fuzz_{name}.py printed no 'Done N in S seconds':\n{tail}"
    runs = int(done[-1][0])
    usage = re.findall(r"petrel-fuzz: \w+ cpu_seconds=([\d.]+) peak_rss_mb=(\d+)", output)
    cpu, rss = (float(usage[-1][0]), int(usage[-1][1])) if usage else (0.0, 0)
    print(
        f"fuzz_{name}: {runs} executions in {seconds:.0f} s ({runs / seconds:.0f}/s), "
        f"{cpu:.0f} s CPU ({runs / max(cpu, 1):.0f}/CPU s), peak RSS {rss} MB"
    )
    assert runs >= RUNS, f"fuzz_{name}.py: only {runs} executions (wanted {RUNS}):\n{tail}"
    assert rss < 2048, f"fuzz_{name}.py: peak RSS {rss} MB"
