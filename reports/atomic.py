"""Writing output files atomically: a reader sees the old file or the whole new one, never a part.

The content goes to a temporary file in the target's directory (same filesystem), is flushed to
disk, and replaces the target with ``os.replace``. Any error or interruption before that
removes the temporary file and leaves an existing target untouched. A target that cannot be
written (no such directory, no permission) is a :class:`~tracetool.errors.UsageError` naming it.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from tracetool.errors import UsageError

INTERRUPTED = threading.Event()
"""Set by the command line's SIGINT handler: a file finished after it is not put in place."""


def _new_file_mode(path: str) -> int:
    """The mode a plain ``open(path, "w")`` would give: the existing file's, else 0666 & ~umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):  # mkstemp then says why it cannot write
        mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
        os.umask(mask)
        return 0o666 & ~mask


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path next to ``path`` for a writer that takes a file name; renamed onto
    ``path`` when the block succeeds, removed when it fails."""
    target = os.path.abspath(os.fspath(path))
    directory, name = os.path.split(target)
    mode = _new_file_mode(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise UsageError(f"{os.fspath(path)}: cannot write there: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        yield Path(tmp)
        if INTERRUPTED.is_set():
            raise KeyboardInterrupt
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextmanager
def atomic_writer(path: str | os.PathLike[str], encoding: str | None = "utf-8") -> Iterator[IO[str]]:
    """Yields a text file (binary when ``encoding`` is None) to write; on a clean exit it
    replaces ``path``, on any exception it is removed and ``path`` stays as it was."""
    with atomic_path(path) as tmp:
        mode = "w" if encoding else "wb"
        # A file name that is not UTF-8 (a lone surrogate) is written as \udcff, not refused.
        errors = "backslashreplace" if encoding else None
        with open(tmp, mode, encoding=encoding, errors=errors, newline="" if encoding else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def write_text(path: str | os.PathLike[str], text: str | Callable[[], str], encoding: str = "utf-8") -> int:
    """Writes text atomically; ``text`` may be a function producing it (called inside the
    write, so a failure while producing it leaves no file either). Returns the bytes written."""
    with atomic_writer(path, encoding=encoding) as f:
        content = text() if callable(text) else text
        f.write(content)
    return len(content.encode(encoding, "backslashreplace"))


def write_bytes(path: str | os.PathLike[str], data: bytes) -> int:
    """Writes bytes atomically; returns how many."""
    with atomic_writer(path, encoding=None) as f:
        f.write(data)  # type: ignore[arg-type]
    return len(data)
