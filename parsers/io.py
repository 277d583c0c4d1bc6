"""Opening trace inputs: plain, gzip, xz and zstd files and stdin, all read the same way.

Compression is recognised by magic bytes, not by the file name, so a renamed or piped file works.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import stat
import sys
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO

CHUNK_BYTES = 8 << 20

_GZIP_MAGIC = b"\x1f\x8b"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_BZ2_MAGIC = b"BZh"


class InputError(Exception):
    """An input cannot be opened or read; the message names the path and the reason.

    ``str(error)`` is one line: line breaks in it (a file name may hold one) read ``\\n``."""

    def __str__(self) -> str:
        return super().__str__().replace("\r", "\\r").replace("\n", "\\n")


@dataclass(frozen=True)
class Opened:
    """An open input: a binary stream of the decompressed bytes and what it was."""

    stream: BinaryIO
    compression: str  # "none", "gzip", "xz", "zstd", "bz2"
    size: int | None  # size of the file on disk, when known
    raw: BinaryIO | None = None  # the file itself (its position measures progress)

    def consumed(self) -> int:
        """Bytes of the file (compressed, when it is) read so far."""
        try:
            return (self.raw or self.stream).tell()
        except (OSError, ValueError):
            return 0


def _detect_compression(head: bytes) -> str:
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_XZ_MAGIC):
        return "xz"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    if head.startswith(_BZ2_MAGIC) and len(head) > 3 and head[3:4].isdigit():
        return "bz2"
    return "none"


_RAW_PIECE = 1 << 16  # compressed bytes handed to the decoder at once
_OUT_PIECE = 1 << 18  # most bytes one decoder call may produce
_FINE_PIECE = 1 << 10  # both, when decoding again up to damage


class _Decompressed(io.RawIOBase):
    """A streaming decompressor that keeps every byte it could decode.

    The standard library's file wrappers raise on a truncated or corrupt stream and lose the
    data decoded in that read. Here the output produced so far is returned first and the damage
    is reported on the next read. A decoder that raises loses the output of that one call, so
    on damage the file (when seekable) is decoded once more, in 1 KiB steps near the damage,
    and everything decodable before it is kept, even when it lies in the first 64 KiB.
    """

    def __init__(self, raw: BinaryIO, compression: str) -> None:
        self._raw = raw
        self._kind = compression
        self._dec = self._new_decoder()
        self._pending = bytearray()
        self._pos = 0  # bytes of _pending already handed out
        self._input = b""  # compressed bytes read but not yet given to the decoder
        self._raw_eof = False
        self._error: str | None = None
        self._produced = 0  # bytes appended to _pending since the start of the stream
        self._fine = False  # decoding again, in small steps, up to where damage was found
        self._skip = 0  # while _fine: bytes already handed out that decoding passes again

    def _new_decoder(self) -> Any:
        if self._kind == "gzip":
            return zlib.decompressobj(wbits=31)
        if self._kind == "xz":
            return lzma.LZMADecompressor()
        if self._kind == "bz2":
            return bz2.BZ2Decompressor()
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj()

    def readable(self) -> bool:
        return True

    def _fill(self, want: int) -> None:
        while len(self._pending) - self._pos < want and self._error is None:
            try:
                if not self._step():
                    break
            except Exception as exc:  # zlib.error, LZMAError, OSError, EOFError, ZstdError...
                if not self._decode_again():
                    self._error = str(exc) or type(exc).__name__

    def _decode_again(self) -> bool:
        """Starts decoding from the beginning in small steps, once; False when it cannot."""
        if self._fine or not self._raw.seekable():
            return False
        self._raw.seek(0)
        self._fine = True
        self._skip = self._produced
        self._produced = 0
        self._dec = self._new_decoder()
        self._input = b""
        return True

    def _emit(self, out: bytes) -> None:
        if self._skip:
            drop = min(self._skip, len(out))
            self._skip -= drop
            out = out[drop:]
        self._pending += out
        self._produced += len(out)

    def _out_limit(self) -> int:
        if not self._fine:
            return _OUT_PIECE
        return min(_OUT_PIECE, self._skip) if self._skip > _FINE_PIECE else _FINE_PIECE

    def _step(self) -> bool:
        """One bounded decoder call; False at the clean end of the input."""
        dec = self._dec
        if dec.eof:
            rest = dec.unused_data + self._input or self._raw.read(_RAW_PIECE)
            if not rest:
                self._raw_eof = True
                return False
            # Concatenated members (gzip -c a b, pzstd, multi-stream xz) restart the decoder.
            self._dec = self._new_decoder()
            self._input = rest
            return True
        if self._kind in ("xz", "bz2") and not dec.needs_input:
            self._emit(dec.decompress(b"", self._out_limit()))
            return True
        if self._kind == "gzip" and dec.unconsumed_tail:
            self._emit(dec.decompress(dec.unconsumed_tail, self._out_limit()))
            return True
        piece = _FINE_PIECE if self._fine and self._kind == "zstd" else _RAW_PIECE
        chunk = self._input or self._raw.read(piece)
        self._input = b""
        if not chunk:
            self._raw_eof = True
            self._error = "unexpected end of compressed data"
            return False
        if self._kind == "zstd":
            self._input, chunk = chunk[piece:], chunk[:piece]
            self._emit(dec.decompress(chunk))
        else:
            self._emit(dec.decompress(chunk, self._out_limit()))
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        self._fill(len(view))
        available = len(self._pending) - self._pos
        if not available and self._error is not None:
            raise InputError(f"corrupt or truncated compressed data: {self._error}")
        n = min(len(view), available)
        with memoryview(self._pending) as pending:
            view[:n] = pending[self._pos : self._pos + n]
        self._pos += n
        if self._pos > len(self._pending) // 2:
            del self._pending[: self._pos]
            self._pos = 0
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def _wrap(raw: BinaryIO, compression: str) -> BinaryIO:
    if compression == "none":
        return raw
    # Unbuffered on purpose: a buffer layer would retry after a truncation error and drop the
    # bytes already decoded in that call.
    return _Decompressed(raw, compression)  # type: ignore[return-value]


def open_input(path: str) -> Opened:
    """Opens ``path`` (or ``-`` for stdin) and returns its decompressed byte stream (from memory
    when it was read ahead: :func:`read_ahead`)."""
    ahead = _ahead.pop(path, None)
    if ahead is not None:
        opened = ahead.take(path)
        if opened is not None:
            return opened
    return _open(path)


def _open(path: str) -> Opened:
    if path == "-":
        raw: BinaryIO = sys.stdin.buffer
        size = None
    else:
        if os.path.isdir(path):
            raise InputError(f"{path}: is a directory (give the files in it, or a glob)")
        try:
            raw = open(path, "rb", buffering=1 << 16)  # noqa: SIM115 - closed by the caller
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except PermissionError:
            raise InputError(f"{path}: permission denied") from None
        except OSError as exc:
            raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from None
        size = os.fstat(raw.fileno()).st_size
    head = raw.peek(8)[:8] if hasattr(raw, "peek") else b""
    compression = _detect_compression(head)
    return Opened(_wrap(raw, compression), compression, size, raw)


def peek_partial(path: str, nbytes: int = 65536) -> tuple[bytes, str | None]:
    """The first ``nbytes`` of a file after decompression, or as many as could be decoded
    before damage, and the damage ("corrupt or truncated compressed data: ...") or None."""
    opened = _open(path)  # a read-ahead is left for the reader
    try:
        return read_exactly(opened.stream, nbytes, path)
    finally:
        opened.stream.close()


def peek_decompressed(path: str, nbytes: int = 65536) -> bytes:
    """The first ``nbytes`` of a file after decompression (for format detection); fewer when
    the compressed data is damaged there. InputError when nothing could be decoded at all."""
    head, error = peek_partial(path, nbytes)
    if error and not head:
        raise InputError(f"{path}: {error}")
    return head


def read_exactly(stream: BinaryIO, nbytes: int, path: str) -> tuple[bytes, str | None]:
    """Reads up to ``nbytes`` (less only at end of input or at damaged compressed data).

    Returns the bytes and, when decoding stopped at damage, the reason.
    """
    parts = []
    want = nbytes
    error = None
    while want > 0:
        try:
            part = stream.read(want)
        except (InputError, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
            reason = str(exc).removeprefix("corrupt or truncated compressed data: ")
            error = f"corrupt or truncated compressed data: {reason}"
            break
        if not part:
            break
        parts.append(part)
        want -= len(part)
    return b"".join(parts), error


def iter_line_chunks(
    stream: BinaryIO, path: str, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[tuple[memoryview, bool]]:
    """Yields ``(block, final)`` where every block ends on a line boundary.

    Blocks are views into one reused buffer: use each before asking for the next. The last block
    may lack a trailing newline (``final`` is True for it). A line longer than the buffer grows
    the buffer, so no line is ever split. A corrupt or truncated compressed stream yields what
    was decoded, then raises InputError.
    """
    buf = bytearray(chunk_bytes)
    filled = 0  # bytes at the front of buf that belong to an unfinished line
    while True:
        if filled == len(buf):
            buf.extend(bytes(len(buf)))
        view = memoryview(buf)
        try:
            n = stream.readinto(view[filled:])  # type: ignore[attr-defined]
        except (InputError, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
            view.release()
            if filled:
                with memoryview(buf) as whole, whole[:filled] as block:
                    yield block, True
            reason = str(exc).removeprefix("corrupt or truncated compressed data: ")
            raise InputError(f"{path}: corrupt or truncated compressed data: {reason}") from None
        if not n:
            if filled:
                block = view[:filled]
                yield block, True
                block.release()
            view.release()
            return
        end = filled + n
        cut = buf.rfind(b"\n", filled, end)
        if cut < 0:
            filled = end
            view.release()
            continue
        block = view[: cut + 1]
        yield block, False
        block.release()
        view.release()
        tail = end - cut - 1
        buf[:tail] = buf[cut + 1 : end]
        filled = tail


# ------------------------------------------------------------------------------ reading ahead

READ_AHEAD_FILES = 2 << 20
"""Compressed inputs are read ahead only when all the inputs together are at most this big..."""
READ_AHEAD_OUT = 128 << 20
"""... and then only as long as they decompress to at most this many bytes together (QEMU's
trace text compresses 40-50 times with xz: 2 MiB of it hold about 100 MiB)."""

_ONE_PASS: dict[str, Callable[[], Any]] = {
    "xz": lzma.LZMADecompressor,
    "gzip": lambda: zlib.decompressobj(wbits=31),
    "bz2": bz2.BZ2Decompressor,
}
"""The decoders that take a whole file in one call (and release the GIL for it)."""


class _Abandoned(Exception):
    """A read-ahead that stopped: the file is read the usual way."""


@dataclass
class _Ahead:
    """One input decompressed ahead into memory (a memfd), or abandoned (``fd`` None)."""

    identity: tuple[int, int, int, int]
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fd: int | None = None
    dropped: bool = False

    def take(self, path: str) -> Opened | None:
        """The decompressed bytes as an input, once decoding is done; None when it was
        abandoned or the file changed since."""
        self.done.wait()
        with self.lock:
            fd, self.fd, self.dropped = self.fd, None, True
        if fd is None:
            return None
        try:
            same = _identity(os.stat(path)) == self.identity
        except OSError:
            same = False
        if not same:
            os.close(fd)
            return None
        return Opened(os.fdopen(fd, "rb"), "none", os.fstat(fd).st_size)

    def settle(self, fd: int | None) -> None:
        """Decoding ended with ``fd`` (None: abandoned); closed at once when nobody wants it."""
        with self.lock:
            if self.dropped and fd is not None:
                os.close(fd)
            else:
                self.fd = fd
        self.done.set()

    def drop(self) -> None:
        with self.lock:
            fd, self.fd, self.dropped = self.fd, None, True
        if fd is not None:
            os.close(fd)


_ahead: dict[str, _Ahead] = {}


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@contextmanager
def read_ahead(paths: Sequence[str]) -> Iterator[None]:
    """Decompresses the small compressed files among ``paths`` on a thread of its own while the
    body runs: the decoders release the GIL, so they use the second core while the caller does
    work that holds it (``migtrace`` imports pandas meanwhile). :func:`open_input` then hands out
    the bytes from memory, and the reader scans them without decompressing or copying.

    Only when every path is a regular file, all of them together hold at most
    ``READ_AHEAD_FILES`` bytes and decompress to at most ``READ_AHEAD_OUT``. A file that does
    not decode cleanly (damage, truncation, something after the end) or that changed meanwhile
    is read the usual way, which reports the damage. What no reader took is freed at the end."""
    jobs = _ahead_jobs(paths)
    if jobs:
        threading.Thread(target=_decode_ahead, args=(jobs,), name="migtrace-read-ahead", daemon=True).start()
    try:
        yield
    finally:
        for path, _, ahead in jobs:
            if _ahead.get(path) is ahead:
                del _ahead[path]
            ahead.drop()


def _ahead_jobs(paths: Sequence[str]) -> list[tuple[str, str, _Ahead]]:
    if not hasattr(os, "memfd_create") or not paths or "-" in paths:
        return []
    try:
        stats = [os.stat(p) for p in paths]
    except (OSError, ValueError):
        return []
    if not all(stat.S_ISREG(st.st_mode) for st in stats):
        return []
    if sum(st.st_size for st in stats) > READ_AHEAD_FILES:
        return []
    jobs = []
    for path, st in zip(paths, stats, strict=True):
        try:
            with open(path, "rb") as f:
                kind = _detect_compression(f.read(8))
        except OSError:
            continue
        if kind in _ONE_PASS and path not in _ahead:
            _ahead[path] = ahead = _Ahead(_identity(st))
            jobs.append((path, kind, ahead))
    return jobs


def _decode_ahead(jobs: list[tuple[str, str, _Ahead]]) -> None:
    budget = READ_AHEAD_OUT
    for path, kind, ahead in jobs:
        fd = None
        try:
            fd, used = _decode_into_memory(path, kind, budget)
            budget -= used
        except Exception:  # damage, truncation, too big, unreadable: the usual reading says why
            fd = None
        finally:
            ahead.settle(fd)


def _decode_into_memory(path: str, kind: str, limit: int) -> tuple[int, int]:
    """A memfd holding the decompressed bytes of ``path`` and their count; _Abandoned when they
    are more than ``limit`` or the stream does not end cleanly."""
    with open(path, "rb") as f:
        data = f.read()
    fd = os.memfd_create("migtrace-input", os.MFD_CLOEXEC)
    try:
        total = 0
        while data:  # concatenated members (xz -c a b, gzip -c a b) follow each other
            dec = _ONE_PASS[kind]()
            out = dec.decompress(data, limit - total + 1)
            total += len(out)
            if total > limit or not dec.eof:
                raise _Abandoned(path)
            view = memoryview(out)
            while view:
                view = view[os.write(fd, view) :]
            data = dec.unused_data
        if not total:
            raise _Abandoned(path)
        os.lseek(fd, 0, os.SEEK_SET)
        return fd, total
    except BaseException:
        os.close(fd)
        raise
