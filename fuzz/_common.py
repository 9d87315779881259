"""What the fuzz targets share: instrumentation, the input reader, the corpus, the entry point.

A target is one file ``fuzz/fuzz_X.py`` with a ``TestOneInput(data: bytes)`` function and a
``main``; it imports Petrel inside ``with instrumentation(__name__):`` so that, under atheris,
Petrel's modules are instrumented for coverage feedback.  Nothing here imports Petrel or
atheris at module level: the targets stay importable (pytest replays their corpora) on a
machine without atheris.

Inputs are read with :class:`Input`, a small deterministic reader of the fuzzer's bytes (the
same bytes always mean the same test case, with or without atheris), so that corpus files
stay meaningful across atheris versions.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import enum
import hashlib
import io
import logging
import operator
import os
import pickle
import resource
import shutil
import signal
import sys
import tempfile
import traceback
import types
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

FUZZ_DIR = Path(__file__).resolve().parent
SEEDS_DIR = FUZZ_DIR / "seeds"  # the committed seed corpora (fuzz/corpus/ is git-ignored scratch)

T = TypeVar("T")


def instrumentation(
    module_name: str, only: Sequence[str] = ("petrel",), dataflow: bool = True
) -> contextlib.AbstractContextManager[object]:
    """Under atheris (the target run as a script), instrument Petrel's modules as they are
    imported (coverage feedback): those named by ``only`` (dotted prefixes such as
    ``petrel.ike``) and no others, since instrumentation costs time on every execution.
    Imported by pytest, a no-op."""
    if module_name != "__main__":
        return contextlib.nullcontext()
    import atheris

    exclude = _petrel_modules_but(only)
    if not dataflow:  # coverage only, no comparison tracing (the cost of char-level loops)
        from atheris.import_hook import HookManager

        return HookManager({"petrel"}, set(exclude), True, trace_dataflow=False)
    return atheris.instrument_imports(include=["petrel"], exclude=exclude)


def _petrel_modules_but(only: Sequence[str]) -> list[str]:
    """Every module of the petrel package outside the ``only`` prefixes (not imported)."""
    import importlib.util

    spec = importlib.util.find_spec("petrel")
    assert spec is not None and spec.submodule_search_locations
    root = Path(next(iter(spec.submodule_search_locations)))
    names = []
    for path in root.rglob("*.py"):
        parts = ["petrel", *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    keep = tuple(only)
    return [
        n for n in names if not any(n == k or n.startswith(k + ".") for k in keep) and n != "petrel"
    ]


class Input:
    """Reads the fuzzer's bytes front to back; past the end every read yields zeros."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        value = self.data[self.pos]
        self.pos += 1
        return value

    def int(self, bound: int) -> int:
        """A number in ``0 .. bound-1`` (one octet per 8 bits the bound needs)."""
        if bound <= 1:
            return 0
        width = (bound - 1).bit_length() + 7 >> 3
        return int.from_bytes(self.bytes(width).ljust(width, b"\0"), "big") % bound

    def bool(self) -> bool:
        return bool(self.byte() & 1)

    def chance(self, one_in: int) -> bool:
        """True with probability about ``1/one_in`` for random octets; False for a zero octet
        and past the end (an input of zeros asks for the plain case)."""
        return self.pos < len(self.data) and self.byte() % one_in == one_in - 1

    def bytes(self, count: int) -> bytes:
        chunk = self.data[self.pos : self.pos + max(count, 0)]
        self.pos += len(chunk)
        return chunk

    def blob(self, limit: int) -> bytes:
        """Up to ``limit`` octets, the length read first."""
        return self.bytes(self.int(limit + 1))

    def pick(self, items: Sequence[T]) -> T:
        return items[self.int(len(items))]

    def rest(self) -> bytes:
        chunk = self.data[self.pos :]
        self.pos = len(self.data)
        return chunk


@dataclasses.dataclass(frozen=True)
class KnownBug:
    """A crash already reported, with its regression test: tolerated by the target until it
    is fixed, so that CI stays green and the fuzzer keeps looking for *new* crashes.

    ``where`` names the function (``module.function``) the exception comes out of, as the
    traceback shows it.  Set ``PETREL_FUZZ_STRICT=1`` to tolerate nothing (to check a fix).
    """

    exception: type[BaseException]
    where: str
    regression_test: str

    def matches(self, exc: BaseException) -> bool:
        if not isinstance(exc, self.exception):
            return False
        module, _, function = self.where.rpartition(".")
        path = module.replace(".", os.sep) + ".py"
        return any(
            frame.name == function and frame.filename.endswith(path)
            for frame in traceback.extract_tb(exc.__traceback__)
        )


def tolerated(exc: BaseException, known: Sequence[KnownBug]) -> bool:
    """Is ``exc`` one of the ``known`` bugs (and tolerance not switched off)?"""
    if os.environ.get("PETREL_FUZZ_STRICT") == "1":
        return False
    return any(bug.matches(exc) for bug in known)


class _FormatEveryRecord(logging.Handler):
    """Formats every record (a broken format string must fail the test case) and drops it."""

    def emit(self, record: logging.LogRecord) -> None:
        record.getMessage()  # raises here, into the target, if the arguments do not fit


@contextlib.contextmanager
def petrel_logs_formatted(level: int = logging.DEBUG) -> Iterator[None]:
    """Petrel's loggers at ``level``, every message formatted and discarded, none printed."""
    logger = logging.getLogger("petrel")
    saved = (logger.level, logger.handlers[:], logger.propagate, logging.root.manager.disable)
    logger.setLevel(level)
    logger.handlers[:] = [_FormatEveryRecord()]
    logger.propagate = False
    logging.disable(logging.NOTSET)
    try:
        yield
    finally:
        logger.setLevel(saved[0])
        logger.handlers[:] = saved[1]
        logger.propagate = saved[2]
        logging.disable(saved[3])


class DetRandom:
    """A deterministic stand-in for ``os.urandom`` (the engines' nonces, SPIs, jitter): the
    same snapshot always continues with the same "random" octets."""

    __slots__ = ("counter", "seed")

    def __init__(self, seed: bytes) -> None:
        self.seed = seed
        self.counter = 0

    def __call__(self, count: int) -> bytes:
        self.counter += 1
        return hashlib.shake_256(self.seed + self.counter.to_bytes(8, "big")).digest(count)


# ---------------------------------------------------------------------------- snapshots


class _FunctionTemplate:
    """Stands for a closure's code, globals and defaults (shared, never copied)."""

    __slots__ = ("function",)

    def __init__(self, function: types.FunctionType) -> None:
        self.function = function


def _clone_function(template: types.FunctionType, cells: tuple[object, ...]) -> object:
    clone = types.FunctionType(
        template.__code__, template.__globals__, template.__name__, template.__defaults__, cells
    )
    clone.__kwdefaults__ = template.__kwdefaults__
    return clone


def _new_cell() -> object:
    return types.CellType()


def _fill_cell(cell: types.CellType, state: tuple[object, ...]) -> None:
    if state:
        cell.cell_contents = state[0]


_RESTORING: list[list[object]] = []  # the shared objects of the snapshot being restored


def _shared_objects() -> list[object]:
    return _RESTORING[-1]


class _SharedObjects:
    """Stands for the snapshot's table of shared objects in the pickle (written once)."""

    __slots__ = ()


class _Pickler(pickle.Pickler):
    """Pickles an object graph, sharing the immutable objects: each is written once as
    ``shared[i]`` (a C-level ``getitem``, memoized), the table itself as one call."""

    def __init__(self, out: io.BytesIO, shared: list[object], atomic: frozenset[type]) -> None:
        super().__init__(out, protocol=pickle.HIGHEST_PROTOCOL)
        self.shared = shared
        self.atomic = atomic
        self.index: dict[int, int] = {}
        self.kinds: dict[type, bool] = {}
        self.table = _SharedObjects()

    def _share(self, obj: object) -> object:
        index = self.index.get(id(obj))
        if index is None:
            index = self.index[id(obj)] = len(self.shared)
            self.shared.append(obj)
        return (operator.getitem, (self.table, index))

    def _is_atomic(self, kind: type) -> bool:
        verdict = self.kinds.get(kind)
        if verdict is None:
            verdict = (
                kind in self.atomic
                or issubclass(kind, enum.Enum)
                or (
                    dataclasses.is_dataclass(kind) and kind.__dataclass_params__.frozen  # type: ignore[attr-defined]
                )
            )
            self.kinds[kind] = verdict
        return verdict

    def reducer_override(self, obj: object) -> object:
        if obj is self.table:
            return (_shared_objects, ())
        kind = type(obj)
        if kind is _FunctionTemplate:
            return self._share(obj.function)  # type: ignore[attr-defined]
        if kind is types.FunctionType:
            if obj in _BY_NAME:
                return NotImplemented
            if obj.__closure__ is None:  # type: ignore[attr-defined]
                return self._share(obj)
            # A closure: new cells, same code.
            return (_clone_function, (_FunctionTemplate(obj), obj.__closure__))  # type: ignore[arg-type,attr-defined]
        if kind is types.CellType:
            try:
                state: tuple[object, ...] = (obj.cell_contents,)  # type: ignore[attr-defined]
            except ValueError:  # an empty cell
                state = ()
            return (_new_cell, (), state, None, None, _fill_cell)
        if self._is_atomic(kind):
            return self._share(obj)
        return NotImplemented


_BY_NAME = frozenset({_shared_objects, _clone_function, _new_cell, _fill_cell})


class Snapshot:
    """A frozen copy of an object graph (an engine with its SAs), restored in ~50 µs.

    Pickle does the copying; objects that never change after they are made (frozen
    dataclasses, enums, keyed ciphers, key-exchange objects, loggers, plain functions, and
    the ``atomic`` types) are shared, not copied.  Closures (callbacks waiting for a response)
    are rebuilt with fresh cells, so a restored engine never reaches into the original.
    """

    def __init__(self, obj: object, atomic: frozenset[type] = frozenset()) -> None:
        out = io.BytesIO()
        self._shared: list[object] = []
        _Pickler(out, self._shared, atomic).dump(obj)
        self._data = out.getvalue()

    def restore(self) -> object:
        _RESTORING.append(self._shared)
        try:
            return pickle.loads(self._data)
        finally:
            _RESTORING.pop()


def corpus_files(name: str) -> list[Path]:
    """The committed seed corpus of target ``name`` (``fuzz/seeds/<name>/``), sorted."""
    folder = SEEDS_DIR / name
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def main(
    name: str,
    argv: list[str],
    test_one_input: Callable[[bytes], None],
    log_level: int = logging.DEBUG,
    seeds: Callable[[], list[bytes]] | None = None,
    defaults: Sequence[str] = (),
) -> None:
    """Run ``test_one_input`` under atheris.

    Without a corpus directory among the arguments, the committed corpus
    (``fuzz/seeds/<name>/``) and the target's built-in ``seeds`` are copied into a temporary
    directory first, so that libFuzzer never writes into the source tree.  ``defaults`` are
    libFuzzer flags the target wants unless the command line gives them (``-max_len=…``).
    """
    import atheris

    args = list(argv)
    for default in defaults:  # ``-flag=value`` unless the command line sets that flag
        if not any(a.startswith(default.split("=")[0] + "=") for a in args[1:]):
            args.insert(1, default)
    if not any(not a.startswith("-") for a in args[1:]):
        corpus = tempfile.mkdtemp(prefix=f"petrel-fuzz-{name}-")
        atexit.register(shutil.rmtree, corpus, True)
        for path in corpus_files(name):
            shutil.copy(path, corpus)
        for index, seed in enumerate(seeds() if seeds else []):
            Path(corpus, f"builtin-{index:03d}").write_bytes(seed)
        args.append(corpus)
    atexit.register(_report, name)  # registered last: runs first
    with petrel_logs_formatted(log_level):
        atheris.Setup(args, test_one_input)
        atheris.Fuzz()


def _report(name: str) -> None:
    """At exit: stop libFuzzer's per-input alarm (a SIGALRM during interpreter shutdown killed
    a finished run), then print this process's CPU time and peak memory for CI and campaigns."""
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"petrel-fuzz: {name} cpu_seconds={usage.ru_utime + usage.ru_stime:.1f} "
        f"peak_rss_mb={usage.ru_maxrss // 1024}",
        file=sys.stderr,
        flush=True,
    )
