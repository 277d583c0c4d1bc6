"""The guest: a tiny multiboot kernel that keeps dirtying a range of its RAM.

QEMU loads it with ``-kernel`` (no disk, no OS): its multiboot loader puts the image at the
load address and jumps to the entry point in 32-bit flat protected mode, so the kernel is only
the dirtying loop. Every page of ``[start, end)`` gets one dword written on every pass, the
dword being the pass counter, so every page is dirty again after each pass and none is ever
all zeroes (QEMU sends zero pages as a flag, not as data).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20
PAGE = 4096

#: Where the kernel image is loaded (1 MiB, the usual multiboot load address).
LOAD_ADDRESS = 0x100000
#: Physical address where the dirtied range starts (above the kernel and its boot info).
DIRTY_START = 0x200000
#: The guest dirties this fraction of its RAM, at most DIRTY_MAX bytes.
DIRTY_FRACTION = 8
DIRTY_MAX = 512 * MIB

MULTIBOOT_MAGIC = 0x1BADB002
#: Header flag 16: the header carries the load addresses (no ELF needed).
MULTIBOOT_ADDRESSES_GIVEN = 1 << 16
HEADER_SIZE = 32


@dataclass(frozen=True)
class GuestKernel:
    """The kernel image plus the guest addresses of its dirtying loop."""

    image: bytes
    dirty_start: int
    dirty_end: int
    loop_start: int
    loop_end: int


def dirty_range(mem_mb: int) -> tuple[int, int]:
    """The range the guest dirties for a guest of ``mem_mb`` MiB (page aligned)."""
    size = min((mem_mb * MIB) // DIRTY_FRACTION, DIRTY_MAX)
    size -= size % PAGE
    return DIRTY_START, DIRTY_START + size


def _u32(value: int) -> bytes:
    return (value & 0xFFFFFFFF).to_bytes(4, "little")


def _rel8(target: int, after: int) -> bytes:
    return (target - after).to_bytes(1, "little", signed=True)


def guest_kernel(start: int, end: int, stride: int = PAGE) -> GuestKernel:
    """Build the multiboot image that writes one dword per ``stride`` bytes of ``[start, end)``.

    Layout (file offset = guest address - LOAD_ADDRESS)::

        00: multiboot header: magic, flags (bit 16), checksum, header_addr,
            load_addr, load_end_addr, bss_end_addr (0: none), entry_addr
        20: FA                cli
        21: 31 D2             xor  edx, edx
        23: 42         outer: inc  edx               ; pass counter
        24: B8 <start>        mov  eax, start
        29: 89 10      inner: mov  [eax], edx        ; dirty one page
        2B: 05 <stride>       add  eax, stride
        30: 3D <end>          cmp  eax, end
        35: 72 F2             jb   inner
        37: EB EA             jmp  outer
    """
    if not (LOAD_ADDRESS < start < end <= 0xFFFFFFFF) or stride <= 0:
        raise ValueError(f"bad dirty range [{start:#x}, {end:#x})")
    code = bytearray()
    code += b"\xfa"  # cli
    code += b"\x31\xd2"  # xor edx, edx
    outer = len(code)
    code += b"\x42"  # inc edx
    code += b"\xb8" + _u32(start)  # mov eax, start
    inner = len(code)
    code += b"\x89\x10"  # mov [eax], edx
    code += b"\x05" + _u32(stride)  # add eax, stride
    code += b"\x3d" + _u32(end)  # cmp eax, end
    code += b"\x72" + _rel8(inner, len(code) + 2)  # jb inner
    code += b"\xeb" + _rel8(outer, len(code) + 2)  # jmp outer
    loop_start = LOAD_ADDRESS + HEADER_SIZE + outer
    loop_end = LOAD_ADDRESS + HEADER_SIZE + len(code)
    size = HEADER_SIZE + len(code)
    size += -size % 16
    if LOAD_ADDRESS + size > start:
        raise ValueError("the dirtied range overlaps the kernel")
    flags = MULTIBOOT_ADDRESSES_GIVEN
    header = b"".join(
        _u32(v)
        for v in (
            MULTIBOOT_MAGIC,
            flags,
            -(MULTIBOOT_MAGIC + flags),
            LOAD_ADDRESS,  # header_addr: the header is the first thing loaded
            LOAD_ADDRESS,  # load_addr
            LOAD_ADDRESS + size,  # load_end_addr
            0,  # bss_end_addr
            LOAD_ADDRESS + HEADER_SIZE,  # entry_addr
        )
    )
    image = (header + bytes(code)).ljust(size, b"\x90")
    return GuestKernel(image, start, end, loop_start, loop_end)


def write_kernel(path: Path, kernel: GuestKernel) -> None:
    """Write the kernel image for ``-kernel``."""
    path.write_bytes(kernel.image)
