"""Anti-replay window for an inbound SA (RFC 4303 §3.4.3, Appendix A).

The window is a Python ``int`` used as a bitmask: bit ``i`` set means sequence number
``top - i`` was received.  Checking is O(1); advancing is a shift of a ``size``-bit integer.

The receiver calls :meth:`ReplayWindow.check` *before* integrity verification (cheap rejection
of duplicates) and :meth:`ReplayWindow.update` only *after* the ICV verified (§3.4.3), so a
forged packet can never move the window.

With Extended Sequence Numbers only the low 32 bits travel in the packet; :meth:`check` infers
the high 32 bits from the window (Appendix A2.1) and returns the full 64-bit number, which the
caller feeds to the ICV computation and later to :meth:`update`.
"""

from __future__ import annotations

__all__ = ["MAX_WINDOW", "ReplayWindow"]

_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF
MAX_WINDOW = 1 << 20
"""Largest accepted window size; far above what any peer negotiates (Linux caps at 4096)."""
_INFER_WINDOW = 1 << 31
"""Window used only to infer ESN high bits when anti-replay is disabled (closest guess)."""


class ReplayWindow:
    """Sliding window of received sequence numbers (RFC 4303 Appendix A).

    ``size`` is the window width in packets (default 32); ``0`` disables replay checking but
    still tracks the highest number seen so ESN high bits can be inferred.
    """

    __slots__ = ("_full", "_infer", "bitmap", "esn", "size", "top")

    def __init__(self, size: int = 32, esn: bool = False) -> None:
        if not 0 <= size <= MAX_WINDOW:
            raise ValueError(f"replay window size {size} out of range 0..{MAX_WINDOW}")
        self.size = size
        self.esn = esn
        self.top = 0
        """Highest authenticated sequence number (64-bit with ESN); 0 before the first."""
        self.bitmap = 0
        self._full = (1 << size) - 1
        self._infer = size if size else _INFER_WINDOW

    def infer(self, seq_lo: int) -> int:
        """Full sequence number for the 32 low bits ``seq_lo`` (Appendix A2.1).

        Without ESN this is ``seq_lo`` itself.
        """
        if not self.esn:
            return seq_lo
        top = self.top
        th = top >> 32
        tl = top & _MASK32
        w = self._infer
        bottom = (tl - w + 1) & _MASK32
        if tl >= w - 1:
            # Case A: the window lies within one 2^32 subspace.
            if seq_lo < bottom:
                th += 1
        elif seq_lo >= bottom and th:
            # Case B: the window spans two subspaces; seq_lo is in the lower one.
            th -= 1
        return ((th << 32) | seq_lo) & _MASK64

    def check(self, seq_lo: int) -> int | None:
        """Return the full sequence number if the packet may be new, ``None`` if it is a replay,
        too old for the window, or the never-valid number 0 (§3.3.3: counting starts at 1)."""
        seq = self.infer(seq_lo) if self.esn else seq_lo
        if seq == 0:
            return None
        if not self.size:
            return seq
        top = self.top
        if seq > top:
            return seq
        diff = top - seq
        if diff >= self.size or (self.bitmap >> diff) & 1:
            return None
        return seq

    def update(self, seq: int) -> bool:
        """Record an authenticated ``seq`` (as returned by :meth:`check`).

        Returns ``False`` (and changes nothing) if ``seq`` became a replay in the meantime.
        """
        top = self.top
        if seq > top:
            if self.size:
                shift = seq - top
                self.bitmap = ((self.bitmap << shift) | 1) & self._full if shift < self.size else 1
            self.top = seq
            return True
        if not self.size:
            return seq != 0
        diff = top - seq
        if diff >= self.size:
            return False
        bit = 1 << diff
        if self.bitmap & bit:
            return False
        self.bitmap |= bit
        return True

    def __repr__(self) -> str:
        return f"ReplayWindow(size={self.size}, esn={self.esn}, top={self.top})"
