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
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

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
    ):
        assert needed in names
    fragmented = [s for s in target("engine").scenarios() if s.fragmented]
    assert fragmented and all(len(s.raw) > 1 for s in fragmented)


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
