"""Keep fuzz/fuzz_decode.py alive: its target must accept its seeds and their mutations."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from petrel.wire.codec import decode_message

FUZZ_FILE = Path(__file__).resolve().parents[3] / "fuzz" / "fuzz_decode.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("petrel_fuzz_decode", FUZZ_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FUZZ = _load()
SEEDS = FUZZ.seeds()


def test_seeds_include_decodable_messages() -> None:
    """The even seeds are whole messages; they must decode (else the corpus has rotted)."""
    messages = SEEDS[0::2]
    assert len(messages) >= 5
    for seed in messages:
        assert decode_message(seed).payloads


@pytest.mark.parametrize("index", range(len(SEEDS)))
def test_target_accepts_seed_and_its_mutations(index: int) -> None:
    seed = SEEDS[index]
    FUZZ.test_one_input(seed)
    for cut in range(len(seed)):
        FUZZ.test_one_input(seed[:cut])
    for pos in range(0, len(seed), 3):
        flipped = bytearray(seed)
        flipped[pos] ^= 0xFF
        FUZZ.test_one_input(bytes(flipped))


def test_target_rejects_a_round_trip_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    """The target is not a no-op: a broken encoder is reported."""
    monkeypatch.setattr(FUZZ, "encode_message", lambda msg: SEEDS[0])
    with pytest.raises(AssertionError):
        FUZZ.test_one_input(SEEDS[2])
