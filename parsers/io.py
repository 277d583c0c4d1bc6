"""Opening trace inputs: plain, gzip, xz and zstd files and stdin, all read the same way.

Compression is recognised by magic bytes, not by the file name, so a renamed or piped file works.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

CHUNK_BYTES = 8 << 20

_GZIP_MAGIC = b"\x1f\x8b"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_BZ2_MAGIC = b"BZh"


class InputError(Exception):
    """An input cannot be opened or read; the message names the path and the reason."""


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


class _Decompressed(io.RawIOBase):
    """A streaming decompressor that keeps every byte it could decode.

    The standard library's file wrappers raise on a truncated stream and lose the data decoded
    in that read; here the output produced so far is returned first, and the truncation is
    reported on the next read, so a cut trace yields everything before the cut.
    """

    def __init__(self, raw: BinaryIO, compression: str) -> None:
        self._raw = raw
        self._kind = compression
        self._dec = self._new_decoder()
        self._pending = b""
        self._raw_eof = False
        self._error: str | None = None

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
        while len(self._pending) < want and not self._raw_eof and self._error is None:
            chunk = self._raw.read(1 << 20)
            if not chunk:
                self._raw_eof = True
                if not getattr(self._dec, "eof", True):
                    self._error = "unexpected end of compressed data"
                break
            try:
                out = self._dec.decompress(chunk)
                self._pending += out
                # Concatenated members (gzip -c a b, pzstd, multi-stream xz) restart the decoder.
                while getattr(self._dec, "eof", False) and self._dec.unused_data:
                    rest = self._dec.unused_data
                    self._dec = self._new_decoder()
                    self._pending += self._dec.decompress(rest)
            except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as exc:
                self._error = str(exc) or type(exc).__name__
            except Exception as exc:  # zstandard.ZstdError has no common base with the above
                self._error = str(exc) or type(exc).__name__

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        self._fill(len(view))
        if not self._pending and self._error is not None:
            raise InputError(f"corrupt or truncated compressed data: {self._error}")
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
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
    """Opens ``path`` (or ``-`` for stdin) and returns its decompressed byte stream."""
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


def peek_decompressed(path: str, nbytes: int = 65536) -> bytes:
    """The first ``nbytes`` of a file after decompression (for format detection)."""
    opened = open_input(path)
    try:
        return read_exactly(opened.stream, nbytes, path)
    finally:
        opened.stream.close()


def read_exactly(stream: BinaryIO, nbytes: int, path: str) -> bytes:
    """Reads up to ``nbytes`` (less only at end of input), turning decoder errors into InputError."""
    parts = []
    want = nbytes
    while want > 0:
        try:
            part = stream.read(want)
        except (InputError, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
            reason = str(exc).removeprefix("corrupt or truncated compressed data: ")
            raise InputError(f"{path}: corrupt or truncated compressed data: {reason}") from None
        if not part:
            break
        parts.append(part)
        want -= len(part)
    return b"".join(parts)


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
