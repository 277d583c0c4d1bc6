"""Which reader handles which input: every backend registers here, detection picks one.

A backend is a name, a sniffer that scores the first bytes of the (decompressed) input, and a
reader that turns a list of input files into Segments. The first 64 KiB decide: the highest
score above 0 wins, ties go to the backend registered first.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from parsers.inputs import InputFile
from parsers.io import InputError, peek_decompressed

if TYPE_CHECKING:
    from parsers.segment import Segment

SNIFF_BYTES = 65536


class Progress(Protocol):
    """Receives reading progress: call ``start`` per file, then ``advance`` as it is read."""

    def start(self, path: str, total_bytes: int | None) -> None: ...

    def advance(self, done_bytes: int, lines: int) -> None: ...


@dataclass
class ReadContext:
    """What a reader may ask of the rest of migtrace, without importing it."""

    is_known_event: Callable[[str], bool] = lambda name: False
    # For binary formats: the C argument types of an event, one list per known signature variant.
    arg_types: Callable[[str], Sequence[Sequence[str]]] = lambda name: ()
    # For headerless binary formats: event names in trace-events order (id = position).
    event_order: Sequence[str] = ()
    engine: str | None = None  # "compiled" or "python" for the text scanner; None = best
    progress: Progress | None = None  # told how far reading got (for a progress bar)
    options: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Backend:
    """A trace backend's reader."""

    name: str
    description: str
    sniff: Callable[[bytes], int]  # 0 (not this format) .. 100 (certain)
    read: Callable[[Sequence[InputFile], ReadContext], list[Segment]]


_BACKENDS: dict[str, Backend] = {}

BUILTIN_MODULES = ("log", "simple", "ftrace", "lttng")
"""Reader modules registered on first use, in this order (which also breaks ties between equal
detection scores); each exposes ``BACKENDS``, a list of :class:`Backend`."""
_builtin_loaded = False


def _builtin() -> dict[str, Backend]:
    """The registered backends, the built-in readers first (imported on first use, so that
    importing ``parsers`` does not import numpy and every reader)."""
    global _builtin_loaded
    if not _builtin_loaded:
        _builtin_loaded = True
        ours = dict(_BACKENDS)
        _BACKENDS.clear()
        for name in BUILTIN_MODULES:
            if importlib.util.find_spec(f"parsers.{name}") is not None:
                for backend in importlib.import_module(f"parsers.{name}").BACKENDS:
                    _BACKENDS[backend.name] = backend
        _BACKENDS.update(ours)  # registered by others before first use: kept, after ours
    return _BACKENDS


class UnknownFormat(InputError):
    """No backend recognised an input."""


def register(backend: Backend) -> None:
    """Adds a backend (a later registration with the same name replaces the earlier)."""
    _builtin()[backend.name] = backend


def backends() -> list[Backend]:
    """Registered backends, in registration order."""
    return list(_builtin().values())


def get(name: str) -> Backend:
    """The backend called ``name``; InputError listing the choices when there is none."""
    try:
        return _builtin()[name]
    except KeyError:
        raise InputError(f"unknown input format {name!r}; supported: {', '.join(_builtin())}") from None


def best_backend(head: bytes) -> Backend | None:
    """The backend whose sniffer scores ``head`` highest (the first registered on a tie), or
    None when every one scores 0."""
    best: tuple[int, Backend] | None = None
    for b in _builtin().values():
        score = b.sniff(head)
        if score >= 1 and (best is None or score > best[0]):
            best = (score, b)
    return best[1] if best else None


def sniff_head(head: bytes, path: str) -> Backend:
    """The backend that reads ``head``; UnknownFormat when no backend recognises it."""
    if not head:
        raise InputError(f"{path}: empty input")
    best = best_backend(head)
    if best is None:
        raise UnknownFormat(
            f"{path}: not a QEMU trace in any supported format ({', '.join(_builtin())}; "
            "'migtrace formats' describes them); force one with --input-format"
        )
    return best


def detect(path: str) -> Backend:
    """Detects the format of a file from its first bytes (after decompression; of a damaged
    compressed file, from what could be decoded)."""
    return sniff_head(peek_decompressed(path, SNIFF_BYTES), path)
