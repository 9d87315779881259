"""Anti-replay window (RFC 4303 §3.4.3, Appendix A)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from petrel.esp.replay import ReplayWindow


def accept(window: ReplayWindow, seq_lo: int) -> int | None:
    """check + update, as the SA does once the ICV verified."""
    seq = window.check(seq_lo)
    if seq is not None:
        assert window.update(seq)
    return seq


def test_in_order_then_duplicate() -> None:
    w = ReplayWindow()
    for seq in range(1, 100):
        assert accept(w, seq) == seq
        assert w.check(seq) is None
    assert w.top == 99


def test_zero_is_never_valid() -> None:
    w = ReplayWindow()
    assert w.check(0) is None
    accept(w, 5)
    assert w.check(0) is None


def test_check_does_not_move_window() -> None:
    w = ReplayWindow()
    assert w.check(10) == 10
    assert w.check(10) == 10  # unverified packets never move the window
    assert w.top == 0


@pytest.mark.parametrize("size", [2, 32, 64, 1024, 4096])
def test_window_edges(size: int) -> None:
    w = ReplayWindow(size)
    top = size * 3
    accept(w, top)
    oldest = top - size + 1
    assert w.check(oldest) == oldest  # inside the window, not yet seen
    assert w.check(oldest - 1) is None  # just behind it
    assert w.check(1) is None  # far behind
    accept(w, oldest)
    assert w.check(oldest) is None
    # Far ahead: window slides entirely; the old top falls out when size allows.
    far = top + size * 10
    assert accept(w, far) == far
    assert w.check(top) is None
    assert w.bitmap == 1


def test_out_of_order_within_window() -> None:
    w = ReplayWindow(64)
    order = [10, 3, 7, 64, 1, 2, 50, 11]
    for seq in order:
        assert accept(w, seq) == seq
    for seq in order:
        assert w.check(seq) is None
    assert w.check(4) == 4
    assert w.check(0) is None


def test_update_rejects_late_duplicate() -> None:
    w = ReplayWindow()
    a = w.check(7)
    b = w.check(7)
    assert a == b == 7
    assert w.update(7)
    assert not w.update(7)


def test_disabled_window_accepts_everything_but_zero() -> None:
    w = ReplayWindow(0)
    for seq in (5, 5, 1, 1000, 3):
        assert accept(w, seq) == seq
    assert w.check(0) is None


def test_size_bounds() -> None:
    with pytest.raises(ValueError):
        ReplayWindow(-1)
    ReplayWindow(4096)


class TestEsn:
    def test_starts_in_subspace_zero(self) -> None:
        w = ReplayWindow(32, esn=True)
        assert w.check(0xFFFFFFF0) == 0xFFFFFFF0
        assert w.check(1) == 1
        assert w.check(0) is None

    def test_crosses_boundary(self) -> None:
        w = ReplayWindow(32, esn=True)
        accept(w, 0xFFFFFFFE)
        # Low bits wrapped: inferred in the next subspace (case A).
        assert w.check(0) == 1 << 32
        assert w.check(3) == (1 << 32) + 3
        assert w.check(0xFFFFFFF0) == 0xFFFFFFF0  # still inside the window, old subspace
        assert accept(w, 2) == (1 << 32) + 2
        assert w.top == (1 << 32) + 2
        # Case B: the window spans both subspaces.
        assert w.check(0xFFFFFFFF) == 0xFFFFFFFF  # not seen yet, inside window
        assert w.check(0xFFFFFFFE) is None  # seen
        # Below the window: case B reads it as ahead in the current subspace (ICV decides).
        assert w.check(0xFFFFFFE0) == (1 << 32) + 0xFFFFFFE0
        assert w.check(1) == (1 << 32) + 1
        assert w.check(2) is None
        assert w.check(100) == (1 << 32) + 100

    def test_same_subspace_far_ahead_low(self) -> None:
        w = ReplayWindow(32, esn=True)
        w.top, w.bitmap = (5 << 32) + 1000, 1
        assert w.check(999) == (5 << 32) + 999
        assert w.check(1000) is None
        assert w.check(969) == (5 << 32) + 969  # oldest slot of a 32-wide window
        assert w.check(968) == (6 << 32) + 968  # below the window: next subspace (A2.1)
        assert w.check(2000) == (5 << 32) + 2000

    def test_disabled_window_infers_nearest(self) -> None:
        w = ReplayWindow(0, esn=True)
        w.top = (2 << 32) + 10
        assert w.check(5) == (2 << 32) + 5
        assert w.check(0xFFFFFFF0) == (1 << 32) + 0xFFFFFFF0
        assert accept(w, 0x80000000) == (2 << 32) + 0x80000000
        assert accept(w, 0xFFFFFF00) == (2 << 32) + 0xFFFFFF00
        assert w.check(3) == (3 << 32) + 3


@given(
    st.lists(st.integers(min_value=0, max_value=300), max_size=200),
    st.sampled_from([0, 1, 8, 32, 100]),
)
def test_matches_reference_model(seqs: list[int], size: int) -> None:
    """Accept iff new, non-zero, and within ``size`` of the highest accepted number."""
    w = ReplayWindow(size)
    seen: set[int] = set()
    top = 0
    for seq in seqs:
        expect = seq != 0 and (size == 0 or (seq not in seen and (seq > top or top - seq < size)))
        got = accept(w, seq)
        assert (got is not None) == expect, (seq, top)
        if expect:
            seen.add(seq)
            top = max(top, seq)
