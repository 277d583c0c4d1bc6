#!/usr/bin/env python3
"""Capture a real QEMU live-migration trace on this machine.

Starts a destination and a source ``qemu-system-x86_64`` (TCG, q35, loopback TCP),
migrates a tiny guest that keeps dirtying its RAM, and writes a scenario folder in
the same layout as the recorded traces migtrace ships with:

* ``dst.trace`` / ``src.trace``: the ``log`` trace backend output (``-D``), one line
  per event, ``TID@SEC.USEC:name args`` because of ``-msg timestamp=on``; with
  ``--per-thread`` one file per thread instead (``dst.<TID>.trace``, ``-d tid``);
* ``dst-threads.json`` / ``src-threads.json``: thread names sampled every 50 ms from
  ``/proc/<pid>/task/*/comm``;
* ``query-migrate.json``: the final ``query-migrate`` answer of both sides;
* ``query-migrate-history.jsonl``, ``qmp-events.jsonl``: everything QMP said;
* ``cmdline.txt``: the exact QEMU command lines and every QMP command sent;
* ``events.txt``: the ``-trace events=`` list; ``qemu-version.txt``; ``run.json``;
* ``guest.img``: the boot disk (a hand-written boot sector, see ``boot_sector``).

Only the standard library is used, so the script runs on a bare machine that has
QEMU and Python 3.11.

Exit codes: 0 the migration reached the state the scenario expects (``completed``,
or ``cancelled`` for ``--scenario cancel``); 1 it did not (failed, timed out, a QEMU
died); 2 usage or environment problem (QEMU missing or unable to start).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_MIGRATION_FAILED = 1
EXIT_ENVIRONMENT = 2

MIB = 1 << 20
PAGE = 4096

#: Physical address where the guest starts dirtying RAM (above the BIOS/low memory).
DIRTY_START = 0x200000
#: The guest dirties this fraction of its RAM (at most DIRTY_MAX bytes).
DIRTY_FRACTION = 8
DIRTY_MAX = 512 * MIB

#: Every scenario starts with a bandwidth limit that makes each pass over the dirtied
#: range take about half a second, and a downtime limit the guest's dirty rate cannot
#: meet, so precopy keeps iterating.  (A slow start matters: QEMU 7.2 completes at once,
#: whatever the downtime limit, when the bulk pass ends before its first 100 ms
#: bandwidth measurement.)
ITERATE_PARAMETERS = {"max-bandwidth": 32 * MIB, "downtime-limit": 1}
#: Precopy scenarios: once the source has done this many dirty-bitmap syncs (the first
#: one is the setup sync), these parameters let it converge on the next pass.
PRECOPY_SYNCS = 4
CONVERGE_PARAMETERS = {"max-bandwidth": 1024 * MIB, "downtime-limit": 300}
#: If it still has not converged this many syncs later (a slow or overloaded host),
#: the limit goes up once more.
RELAX_AFTER_SYNCS = 8
RELAXED_DOWNTIME_MS = 5000

#: How long the destination may take to notice a failed or cancelled migration.
DST_GRACE_S = 10.0

SAMPLE_INTERVAL_S = 0.05
POLL_INTERVAL_S = 0.1

# Trace events enabled in every scenario (glob patterns, one per line, as QEMU's
# ``-trace events=FILE`` reads them; ``#`` starts a comment, ``-`` disables).
BASE_EVENTS = """\
# Trace events enabled by migtrace's capture script.  Each line is a glob pattern
# matched against the whole event name (see `qemu-system-x86_64 -trace help`);
# a leading '-' disables what it matches.  Source and destination use the same file.

# migration core: state changes, channels, rate limiting, threads
migrat*
# incoming side: load loop, sections, commands, end of the incoming coroutine
loadvm_*
qemu_loadvm_*
process_incoming_*
# outgoing side: sections, commands, iterate / complete
savevm_*
qemu_savevm_*
# device state load / save
vmstate_*
# postcopy: listen thread, fault thread, page placement, preempt channel
postcopy_*
get_mem_fault_cpu_index
mark_postcopy_blocktime_*
# multifd channels
multifd_*
# RAM: per-page load, queued (postcopy requested) pages, discards
ram_load*
ram_save*
ram_postcopy_*
ram_discard_range
get_queued_page*
# the per-page save event is far too verbose
-ram_save_page
# source return path
source_return_path_thread_*
open_return_path_on_source*
await_return_path_close_on_source_*
qemu_file_fclose
# run state (VM stop / start around the switchover)
runstate_set
vm_state_notify
# QMP command entry / exit
qmp_enter_*
qmp_exit_*
"""

MUTEX_EVENTS = """\

# Lock events (every QemuMutex, the BQL included):
# qemu_mutex_lock   = about to block in pthread_mutex_lock
# qemu_mutex_locked = acquired (also after a condvar wait and a successful trylock)
# qemu_mutex_unlock = about to release (also before a condvar wait)
qemu_mutex_lock
qemu_mutex_locked
qemu_mutex_unlock
"""


@dataclass(frozen=True)
class Scenario:
    """What one capture does: capabilities, parameters and the action mid-migration."""

    name: str
    capabilities: tuple[str, ...]
    src_parameters: dict[str, int]
    mutex_events: bool = False
    #: None (precopy, converging after ``precopy_syncs`` dirty syncs), "postcopy"
    #: (migrate-start-postcopy) or "cancel" (migrate_cancel); the last two are done
    #: at the first dirty-bitmap sync after the bulk pass.
    action: str | None = None
    #: for action None: dirty syncs before the downtime limit is raised to converge
    precopy_syncs: int = PRECOPY_SYNCS
    #: final source status that counts as success
    expected: str = "completed"


SCENARIOS: dict[str, Scenario] = {
    "precopy": Scenario(
        "precopy",
        ("events",),
        dict(ITERATE_PARAMETERS),
    ),
    "precopy-mutex": Scenario(
        "precopy-mutex",
        ("events",),
        dict(ITERATE_PARAMETERS),
        mutex_events=True,
    ),
    "postcopy": Scenario(
        "postcopy",
        ("events", "postcopy-ram"),
        {**ITERATE_PARAMETERS, "max-postcopy-bandwidth": 128 * MIB},
        action="postcopy",
    ),
    "postcopy-preempt": Scenario(
        "postcopy-preempt",
        ("events", "postcopy-ram", "postcopy-preempt"),
        {**ITERATE_PARAMETERS, "max-postcopy-bandwidth": 128 * MIB},
        action="postcopy",
    ),
    "cancel": Scenario(
        "cancel",
        ("events",),
        dict(ITERATE_PARAMETERS),
        action="cancel",
        expected="cancelled",
    ),
}

SRC_FINAL = {"completed", "failed", "cancelled"}
DST_FINAL = {"completed", "failed", "cancelled"}


class CaptureError(Exception):
    """A failure that ends the capture; carries the exit code to use."""

    def __init__(self, message: str, code: int = EXIT_MIGRATION_FAILED) -> None:
        super().__init__(message)
        self.code = code


class QMPError(Exception):
    """QMP transport failure or an ``error`` answer."""


class Interrupted(BaseException):
    """Raised from the SIGTERM handler so that the cleanup code runs."""


# --------------------------------------------------------------------------------------
# Guest: a hand-assembled x86 boot sector
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootSector:
    """The boot sector bytes plus the guest addresses of its dirtying loop."""

    data: bytes
    loop_start: int
    loop_end: int


def boot_sector(start: int, end: int, stride: int = PAGE) -> BootSector:
    """Build a 512-byte x86 boot sector that dirties guest RAM forever.

    SeaBIOS loads it at 0x7C00 and jumps to it in 16-bit real mode.  It switches to
    32-bit flat protected mode (so it can reach RAM above 1 MiB), then writes one
    dword per ``stride`` bytes of ``[start, end)`` in an endless loop, the dword
    being a pass counter, so every page of the range is dirtied on every pass and
    no page of it is ever all zeroes.  Interrupts stay disabled.

    Instructions (offset: bytes  mnemonic)::

        ; 16-bit real mode, CS:IP = 0000:7C00
        00: FA                cli
        01: 31 C0             xor  ax, ax
        03: 8E D8             mov  ds, ax
        05: 8E D0             mov  ss, ax
        07: BC 00 7C          mov  sp, 0x7C00
        0A: E4 92             in   al, 0x92          ; "fast A20" system control port
        0C: 0C 02             or   al, 2             ; A20 on
        0E: 24 FE             and  al, 0xFE          ; bit 0 would reset the machine
        10: E6 92             out  0x92, al
        12: 0F 01 16 <gdtr>   lgdt [gdtr]
        17: 0F 20 C0          mov  eax, cr0
        1A: 0C 01             or   al, 1             ; CR0.PE
        1C: 0F 22 C0          mov  cr0, eax
        1F: EA <pm> 08 00     jmp  0x08:pm           ; load the 32-bit code segment
        ; 32-bit protected mode
        24: 66 B8 10 00   pm: mov  ax, 0x10          ; flat data segment
        28: 8E D8             mov  ds, ax
        2A: 8E C0             mov  es, ax
        2C: 8E D0             mov  ss, ax
        2E: BC 00 7C 00 00    mov  esp, 0x7C00
        33: 31 D2             xor  edx, edx
        35: 42         outer: inc  edx               ; pass counter
        36: B8 <start>        mov  eax, start
        3B: 89 10      inner: mov  [eax], edx        ; dirty one page
        3D: 05 <stride>       add  eax, stride
        42: 3D <end>          cmp  eax, end
        47: 72 F2             jb   inner
        49: EB EA             jmp  outer
        4B: 90 90 90 90 90    nop padding up to the 8-byte aligned GDT
        50: GDT: null descriptor, 0x08 code (base 0, 4 GiB, 32-bit, execute/read),
                 0x10 data (base 0, 4 GiB, read/write)
        68: GDTR: limit 23, base 0x7C50
        1FE: 55 AA            boot signature
    """
    if not (0 < start < end <= 0xFFFFFFFF) or stride <= 0:
        raise ValueError("bad dirty range")
    origin = 0x7C00
    gdt_off = 0x50
    gdtr_off = gdt_off + 24

    def u16(v: int) -> bytes:
        return v.to_bytes(2, "little")

    def u32(v: int) -> bytes:
        return v.to_bytes(4, "little")

    code = bytearray()
    code += b"\xfa"  # cli
    code += b"\x31\xc0"  # xor ax, ax
    code += b"\x8e\xd8"  # mov ds, ax
    code += b"\x8e\xd0"  # mov ss, ax
    code += b"\xbc" + u16(origin)  # mov sp, 0x7c00
    code += b"\xe4\x92"  # in al, 0x92
    code += b"\x0c\x02"  # or al, 2
    code += b"\x24\xfe"  # and al, 0xfe
    code += b"\xe6\x92"  # out 0x92, al
    code += b"\x0f\x01\x16" + u16(origin + gdtr_off)  # lgdt [gdtr]
    code += b"\x0f\x20\xc0"  # mov eax, cr0
    code += b"\x0c\x01"  # or al, 1
    code += b"\x0f\x22\xc0"  # mov cr0, eax
    far_jump_at = len(code)
    code += b"\xea\x00\x00" + u16(0x08)  # jmp 0x08:pm (offset patched below)
    pm = len(code)
    code[far_jump_at + 1 : far_jump_at + 3] = u16(origin + pm)
    code += b"\x66\xb8" + u16(0x10)  # mov ax, 0x10
    code += b"\x8e\xd8"  # mov ds, ax
    code += b"\x8e\xc0"  # mov es, ax
    code += b"\x8e\xd0"  # mov ss, ax
    code += b"\xbc" + u32(origin)  # mov esp, 0x7c00
    code += b"\x31\xd2"  # xor edx, edx
    outer = len(code)
    code += b"\x42"  # inc edx
    code += b"\xb8" + u32(start)  # mov eax, start
    inner = len(code)
    code += b"\x89\x10"  # mov [eax], edx
    code += b"\x05" + u32(stride)  # add eax, stride
    code += b"\x3d" + u32(end)  # cmp eax, end
    code += b"\x72" + (inner - (len(code) + 2)).to_bytes(1, "little", signed=True)  # jb inner
    code += b"\xeb" + (outer - (len(code) + 2)).to_bytes(1, "little", signed=True)  # jmp outer
    loop_end = len(code)
    if loop_end > gdt_off:
        raise AssertionError("boot code overlaps the GDT")
    code += b"\x90" * (gdt_off - loop_end)
    code += bytes(8)  # null descriptor
    code += bytes.fromhex("ffff0000009acf00")  # 0x08: code, base 0, limit 4 GiB, 32-bit
    code += bytes.fromhex("ffff00000092cf00")  # 0x10: data, base 0, limit 4 GiB
    code += u16(23) + u32(origin + gdt_off)  # GDTR
    code += bytes(510 - len(code)) + b"\x55\xaa"
    assert len(code) == 512
    return BootSector(bytes(code), origin + pm, origin + loop_end)


def write_boot_disk(path: Path, sector: bytes, size: int = MIB) -> None:
    """Write a raw disk image whose first sector is ``sector`` (the rest is sparse)."""
    with path.open("wb") as f:
        f.write(sector)
        f.truncate(size)


# --------------------------------------------------------------------------------------
# QMP
# --------------------------------------------------------------------------------------


@dataclass
class PollRecord:
    """How often one polled command was sent."""

    side: str
    command: str
    count: int = 0
    first: float = 0.0
    last: float = 0.0


@dataclass
class Journal:
    """Everything sent to and received from both QMP monitors, in order."""

    commands: list[tuple[float, str, str]] = field(default_factory=list)
    polls: dict[tuple[str, str], PollRecord] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def command(self, side: str, text: str, poll: bool, name: str) -> None:
        """Record one command sent by ``side``."""
        now = time.time()
        with self.lock:
            if poll:
                rec = self.polls.setdefault((side, name), PollRecord(side, name, first=now))
                rec.count += 1
                rec.last = now
            else:
                self.commands.append((now, side, text))


class QMPClient:
    """Minimal QMP client over a unix socket: greeting, capabilities, commands, events."""

    def __init__(self, side: str, path: Path, journal: Journal) -> None:
        self.side = side
        self.path = path
        self.journal = journal
        self.sock: socket.socket | None = None
        self.buf = b""
        self.next_id = 0
        self.greeting: dict[str, Any] = {}

    def connect(self, proc: subprocess.Popen[bytes], deadline: float) -> None:
        """Connect once QEMU has created the socket, read the greeting, negotiate."""
        while True:
            if proc.poll() is not None:
                raise QMPError(
                    f"{self.side} QEMU exited (code {proc.returncode}) before QMP came up"
                )
            if self.path.exists():
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(str(self.path))
                except OSError:
                    s.close()
                else:
                    self.sock = s
                    break
            if time.monotonic() > deadline:
                raise QMPError(f"{self.side} QMP socket {self.path} did not come up")
            time.sleep(0.02)
        msg = self._read(deadline)
        if "QMP" not in msg:
            raise QMPError(f"{self.side}: unexpected QMP greeting {msg!r}")
        self.greeting = msg
        self.command("qmp_capabilities", deadline=deadline)

    def close(self) -> None:
        """Close the socket (QEMU keeps running)."""
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None

    def _read(self, deadline: float) -> dict[str, Any]:
        """Read one JSON message; events are journaled and also returned."""
        if self.sock is None:
            raise QMPError(f"{self.side}: QMP not connected")
        while b"\n" not in self.buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QMPError(f"{self.side}: timed out waiting for QMP")
            self.sock.settimeout(min(remaining, 1.0))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as e:
                raise QMPError(f"{self.side}: QMP connection error: {e}") from e
            if not chunk:
                raise QMPError(f"{self.side}: QMP connection closed by QEMU")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            msg: dict[str, Any] = json.loads(line)
        except ValueError as e:
            raise QMPError(f"{self.side}: bad QMP message {line[:200]!r}") from e
        if "event" in msg:
            rec = dict(msg)
            rec["_rx"] = time.time()
            rec["_side"] = self.side
            with self.journal.lock:
                self.journal.events.append(rec)
        return msg

    def command(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        deadline: float,
        poll: bool = False,
    ) -> Any:
        """Send one command and return its ``return`` value; ``error`` raises QMPError."""
        if self.sock is None:
            raise QMPError(f"{self.side}: QMP not connected")
        self.next_id += 1
        req: dict[str, Any] = {"execute": name}
        if arguments is not None:
            req["arguments"] = arguments
        shown = json.dumps(req)
        req["id"] = f"{self.side}-{self.next_id}"
        self.journal.command(self.side, shown, poll, name)
        try:
            self.sock.sendall(json.dumps(req).encode() + b"\n")
        except OSError as e:
            raise QMPError(f"{self.side}: cannot send {name}: {e}") from e
        while True:
            msg = self._read(deadline)
            if msg.get("id") != req["id"]:
                continue
            if "error" in msg:
                err = msg["error"]
                raise QMPError(f"{self.side}: {name} failed: {err.get('class')}: {err.get('desc')}")
            return msg.get("return")

    def drain_events(self) -> None:
        """Read whatever events are already waiting, without blocking."""
        if self.sock is None:
            return
        with contextlib.suppress(QMPError):
            while True:
                self.sock.setblocking(False)
                try:
                    chunk = self.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                finally:
                    self.sock.setblocking(True)
                if not chunk:
                    break
                self.buf += chunk
            while b"\n" in self.buf:
                self._read(time.monotonic() + 1)


# --------------------------------------------------------------------------------------
# Thread-name sampler
# --------------------------------------------------------------------------------------


@dataclass
class ThreadInfo:
    """One thread's sampled history."""

    first_seen: float
    last_seen: float
    first_seen_monotonic_ns: int
    last_seen_monotonic_ns: int
    samples: int = 0
    names: list[dict[str, Any]] = field(default_factory=list)


class ThreadSampler(threading.Thread):
    """Samples ``/proc/<pid>/task/*/comm`` of several processes every 50 ms."""

    def __init__(self, pids: dict[str, int], interval: float = SAMPLE_INTERVAL_S) -> None:
        super().__init__(name="thread-sampler", daemon=True)
        self.pids = pids
        self.interval = interval
        self.stop_event = threading.Event()
        self.threads: dict[str, dict[int, ThreadInfo]] = {role: {} for role in pids}
        self.samples: dict[str, int] = dict.fromkeys(pids, 0)
        self.started_at: dict[str, float] = {}
        self.ended_at: dict[str, float] = {}

    def sample_once(self) -> None:
        """Take one sample of every process that is still alive."""
        for role, pid in self.pids.items():
            now = time.time()
            mono = time.monotonic_ns()
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            seen = False
            for entry in tids:
                try:
                    with open(
                        f"/proc/{pid}/task/{entry}/comm", encoding="utf-8", errors="replace"
                    ) as f:
                        name = f.read().rstrip("\n")
                except OSError:
                    continue  # thread ended between listdir and open
                seen = True
                tid = int(entry)
                info = self.threads[role].get(tid)
                if info is None:
                    info = ThreadInfo(now, now, mono, mono)
                    self.threads[role][tid] = info
                info.last_seen = now
                info.last_seen_monotonic_ns = mono
                info.samples += 1
                if info.names and info.names[-1]["name"] == name:
                    info.names[-1]["last_seen"] = now
                else:
                    info.names.append({"name": name, "first_seen": now, "last_seen": now})
            if seen:
                self.samples[role] += 1
                self.started_at.setdefault(role, now)
                self.ended_at[role] = now

    def run(self) -> None:
        """Sample until stopped."""
        while not self.stop_event.is_set():
            self.sample_once()
            self.stop_event.wait(self.interval)

    def stop(self) -> None:
        """Stop sampling and wait for the thread."""
        self.stop_event.set()
        self.join(timeout=5)

    def sidecar(self, role: str) -> dict[str, Any]:
        """The ``<role>-threads.json`` document for one process."""
        pid = self.pids[role]
        threads = self.threads[role]
        return {
            "pid": pid,
            "role": role,
            "source": "/proc/<pid>/task/<tid>/comm (15 chars max)",
            "sample_interval_s": self.interval,
            "samples": self.samples[role],
            "sampling_started": self.started_at.get(role),
            "sampling_ended": self.ended_at.get(role),
            "clock": (
                "first_seen/last_seen: time.time() wall clock, the clock of the log backend's "
                "TID@SEC.USEC prefix (gettimeofday); *_monotonic_ns: CLOCK_MONOTONIC"
            ),
            "main_thread_tid": pid,
            "tid_to_name": {
                str(tid): info.names[-1]["name"] for tid, info in sorted(threads.items())
            },
            "threads": {
                str(tid): {
                    "first_seen": info.first_seen,
                    "last_seen": info.last_seen,
                    "first_seen_monotonic_ns": info.first_seen_monotonic_ns,
                    "last_seen_monotonic_ns": info.last_seen_monotonic_ns,
                    "samples": info.samples,
                    "names": info.names,
                }
                for tid, info in sorted(threads.items())
            },
        }


# --------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGKILL it if the capture process dies first."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def qemu_version(qemu: str) -> str:
    """``qemu --version`` output; CaptureError (exit 2) if it cannot run."""
    try:
        out = subprocess.run(
            [qemu, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as e:
        raise CaptureError(f"cannot run {qemu}: {e}", EXIT_ENVIRONMENT) from e
    except subprocess.TimeoutExpired as e:
        raise CaptureError(f"{qemu} --version did not answer", EXIT_ENVIRONMENT) from e
    if out.returncode != 0:
        raise CaptureError(
            f"{qemu} --version failed ({out.returncode}): {out.stderr.strip()}", EXIT_ENVIRONMENT
        )
    return out.stdout.strip()


def find_qemu(name: str) -> str:
    """Resolve ``--qemu`` to an executable path, or raise CaptureError (exit 2)."""
    path = shutil.which(name)
    if path is None:
        raise CaptureError(
            f"QEMU not found: {name!r} is not an executable on PATH; on Debian/Ubuntu: "
            "apt-get install -y --no-install-recommends qemu-system-x86",
            EXIT_ENVIRONMENT,
        )
    return path


def qemu_command(
    qemu: str,
    role: str,
    mem_mb: int,
    disk: Path,
    qmp_sock: Path,
    log_path: Path,
    events_file: Path,
    per_thread: bool,
) -> list[str]:
    """The command line of one side."""
    cmd = [
        qemu,
        "-msg", "timestamp=on",
        "-name", f"{role},debug-threads=on",
        "-machine", "q35",
        "-accel", "tcg",
        "-cpu", "qemu64",
        "-smp", "1",
        "-m", str(mem_mb),
        "-nic", "none",
        "-display", "none",
        "-monitor", "none",
        "-serial", "none",
        "-parallel", "none",
        "-drive", f"file={disk},format=raw,if=ide",
        "-qmp", f"unix:{qmp_sock},server=on,wait=off",
    ]  # fmt: skip
    if per_thread:
        cmd += ["-d", "tid"]
    cmd += ["-D", str(log_path), "-trace", f"events={events_file}"]
    if role == "dst":
        cmd += ["-incoming", "defer"]
    return cmd


@dataclass
class Side:
    """One running QEMU with its QMP client."""

    role: str
    cmd: list[str]
    proc: subprocess.Popen[bytes]
    qmp: QMPClient
    stderr_path: Path

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def stderr_tail(self, lines: int = 15) -> str:
        """The last lines QEMU wrote to stderr, for error messages."""
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def kill(self) -> None:
        """Kill the process if it still runs, and reap it."""
        self.qmp.close()
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


# --------------------------------------------------------------------------------------
# The capture
# --------------------------------------------------------------------------------------


@dataclass
class Options:
    """Parsed command-line options."""

    out: Path
    qemu: str
    scenario: Scenario
    mem_mb: int
    timeout: float
    per_thread: bool
    warmup: float


class Capture:
    """Runs one scenario and writes its folder."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.out = opts.out
        self.journal = Journal()
        self.sides: dict[str, Side] = {}
        self.sampler: ThreadSampler | None = None
        self.start_mono = time.monotonic()
        self.deadline = self.start_mono + opts.timeout
        self.run_info: dict[str, Any] = {"scenario": opts.scenario.name}
        self.final: dict[str, Any] = {}
        self.sock_dir: Path | None = None
        size = min((opts.mem_mb * MIB) // DIRTY_FRACTION, DIRTY_MAX)
        size -= size % PAGE
        self.dirty = (DIRTY_START, DIRTY_START + size)
        self.boot = boot_sector(*self.dirty)

    # -- helpers -------------------------------------------------------------------

    def log(self, msg: str) -> None:
        """One progress line on stderr."""
        print(
            f"[capture {time.monotonic() - self.start_mono:6.2f}s] {msg}",
            file=sys.stderr,
            flush=True,
        )

    def check_deadline(self, what: str) -> None:
        """Raise CaptureError once the overall timeout has passed."""
        if time.monotonic() > self.deadline:
            raise CaptureError(f"timed out after {self.opts.timeout:g} s while {what}")

    def qmp(
        self,
        role: str,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        poll: bool = False,
        timeout: float = 30.0,
    ) -> Any:
        """Run one QMP command on ``role``; errors become CaptureError."""
        side = self.sides[role]
        deadline = min(self.deadline, time.monotonic() + timeout)
        try:
            return side.qmp.command(name, arguments, deadline=deadline, poll=poll)
        except QMPError as e:
            if time.monotonic() >= self.deadline:
                raise CaptureError(
                    f"timed out after {self.opts.timeout:g} s (waiting for {name} on {role})"
                ) from e
            extra = ""
            if not side.alive():
                extra = f" ({role} QEMU exited with code {side.proc.returncode})"
                tail = side.stderr_tail()
                if tail:
                    extra += f"\n{role} stderr:\n{tail}"
            raise CaptureError(f"{e}{extra}") from e

    def query_migrate(self, role: str, timeout: float = 30.0) -> dict[str, Any]:
        """Poll ``query-migrate`` and keep the answer in the history."""
        info: dict[str, Any] = self.qmp(role, "query-migrate", poll=True, timeout=timeout)
        with self.journal.lock:
            self.journal.history.append({"t": time.time(), "side": role, "info": info})
        return info

    # -- phases --------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the output folder, the events list and the boot disk."""
        sc = self.opts.scenario
        self.out.mkdir(parents=True, exist_ok=True)
        stale = [*self.out.glob("dst*.trace"), *self.out.glob("src*.trace")]
        for p in stale:
            p.unlink()
        events = BASE_EVENTS + (MUTEX_EVENTS if sc.mutex_events else "")
        (self.out / "events.txt").write_text(events)
        write_boot_disk(self.out / "guest.img", self.boot.data)
        self.sock_dir = Path(tempfile.mkdtemp(prefix="migtrace-qmp-"))

    def spawn(self) -> None:
        """Start the destination, then the source, then the thread sampler."""
        assert self.sock_dir is not None
        o = self.opts
        for role in ("dst", "src"):
            log_path = self.out / (f"{role}.%d.trace" if o.per_thread else f"{role}.trace")
            sock = self.sock_dir / f"{role}-qmp.sock"
            cmd = qemu_command(
                o.qemu,
                role,
                o.mem_mb,
                self.out / "guest.img",
                sock,
                log_path,
                self.out / "events.txt",
                o.per_thread,
            )
            stderr_path = self.out / f"{role}-stderr.txt"
            with stderr_path.open("wb") as err:
                try:
                    proc = subprocess.Popen(
                        cmd,
                        stdin=subprocess.DEVNULL,
                        stdout=err,
                        stderr=err,
                        preexec_fn=_die_with_parent,  # runs before any thread is started
                    )
                except OSError as e:
                    raise CaptureError(f"cannot start {o.qemu}: {e}", EXIT_ENVIRONMENT) from e
            self.run_info[f"t_{role}_spawn"] = time.time()
            self.run_info[f"{role}_pid"] = proc.pid
            self.sides[role] = Side(
                role, cmd, proc, QMPClient(role, sock, self.journal), stderr_path
            )
            self.log(f"started {role} QEMU, pid {proc.pid}")
        self.sampler = ThreadSampler({r: s.proc.pid for r, s in self.sides.items()})
        self.sampler.start()

    def connect(self) -> None:
        """Connect both QMP monitors; a QEMU that dies here is an environment problem."""
        for role, side in self.sides.items():
            try:
                side.qmp.connect(side.proc, min(self.deadline, time.monotonic() + 30))
            except QMPError as e:
                time.sleep(0.2)
                tail = side.stderr_tail()
                raise CaptureError(
                    f"{role} QEMU did not start: {e}"
                    + (f"\n{role} stderr:\n{tail}" if tail else ""),
                    EXIT_ENVIRONMENT,
                ) from e
        self.run_info["query_version"] = self.qmp("src", "query-version")

    def wait_guest_loop(self) -> None:
        """Wait until the source vCPU runs the dirtying loop, then a little longer."""
        t0 = time.monotonic()
        limit = t0 + 30
        last = ""
        while True:
            self.check_deadline("waiting for the guest to boot")
            regs = str(
                self.qmp(
                    "src", "human-monitor-command", {"command-line": "info registers"}, poll=True
                )
            )
            eip = _register(regs, "EIP")
            cr0 = _register(regs, "CR0")
            last = f"EIP={eip:#x} CR0={cr0:#x}" if eip is not None and cr0 is not None else regs
            if (
                eip is not None
                and cr0 is not None
                and cr0 & 1
                and self.boot.loop_start <= eip < self.boot.loop_end
            ):
                break
            if time.monotonic() > limit:
                raise CaptureError(f"the guest did not reach its dirtying loop in 30 s ({last})")
            time.sleep(0.05)
        self.log(f"guest runs its loop ({last}) after {time.monotonic() - t0:.2f} s")
        time.sleep(self.opts.warmup)

    def start_migration(self) -> None:
        """Capabilities on both sides, migrate-incoming on dst, migrate on src."""
        sc = self.opts.scenario
        caps = [{"capability": c, "state": True} for c in sc.capabilities]
        try:
            self.qmp("dst", "migrate-set-capabilities", {"capabilities": caps})
        except CaptureError as e:
            hint = ""
            if "postcopy-ram" in sc.capabilities:
                hint = (
                    "\npostcopy needs userfaultfd(2): run as root, or set "
                    "vm.unprivileged_userfaultfd=1, and allow the syscall in the container"
                )
            raise CaptureError(
                f"this QEMU/host cannot use {', '.join(sc.capabilities)}: {e}{hint}",
                EXIT_ENVIRONMENT,
            ) from e
        for attempt in range(5):
            port = free_tcp_port()
            uri = f"tcp:127.0.0.1:{port}"
            try:
                self.qmp("dst", "migrate-incoming", {"uri": uri})
                break
            except CaptureError as e:
                if attempt == 4 or not self.sides["dst"].alive():
                    raise
                self.log(f"migrate-incoming on port {port} failed ({e}); trying another port")
        self.run_info["uri"] = uri
        self.qmp("src", "migrate-set-capabilities", {"capabilities": caps})
        self.qmp("src", "migrate-set-parameters", dict(sc.src_parameters))
        self.run_info["t_migrate"] = time.time()
        self.qmp("src", "migrate", {"uri": uri})
        self.log(f"migrate {uri} ({sc.name})")

    def run_migration(self) -> str:
        """Poll the source until it reaches a final state; do the scenario's action."""
        sc = self.opts.scenario
        acted = False
        params_set: dict[str, int] = {}
        status = ""
        while True:
            self.check_deadline(f"migrating (source status {status or 'unknown'})")
            if not self.sides["src"].alive():
                raise CaptureError(
                    "source QEMU exited during the migration\n" + self.sides["src"].stderr_tail()
                )
            info = self.query_migrate("src")
            status = str(info.get("status", ""))
            syncs = int(info.get("ram", {}).get("dirty-sync-count", 0))
            if status in SRC_FINAL:
                break
            if not sc.action:
                params: dict[str, int] = {}
                if syncs >= sc.precopy_syncs + RELAX_AFTER_SYNCS:
                    params = {"downtime-limit": RELAXED_DOWNTIME_MS}
                elif syncs >= sc.precopy_syncs:
                    params = dict(CONVERGE_PARAMETERS)
                if params and params != params_set:
                    params_set = params
                    self.log(f"dirty sync {syncs} done: {params} to converge")
                    self.qmp("src", "migrate-set-parameters", params)
            if sc.action and not acted and status == "active" and syncs >= 2:
                acted = True
                self.run_info["t_action"] = time.time()
                if sc.action == "postcopy":
                    self.log(f"dirty sync {syncs} done: migrate-start-postcopy")
                    self.qmp("src", "migrate-start-postcopy")
                else:
                    self.log(f"dirty sync {syncs} done: migrate_cancel")
                    self.qmp("src", "migrate_cancel")
            time.sleep(POLL_INTERVAL_S)
        self.run_info["t_src_final"] = time.time()
        self.run_info["src_final_status"] = status
        self.final["source"] = info
        self.log(f"source: {status}")
        if sc.action and not acted:
            self.log(
                f"warning: the migration ended ({status}) before '{sc.action}' could be issued"
            )
        return status

    def wait_destination(self, src_status: str) -> str:
        """Wait for the destination's final state (or its exit after a failure).

        After a completed source the destination must complete too (within the overall
        timeout); after a failed or cancelled one it gets a few seconds to notice.
        """
        dst = self.sides["dst"]
        status = "unknown"
        info: dict[str, Any] = {}
        grace_end = None if src_status == "completed" else time.monotonic() + DST_GRACE_S
        while True:
            if not dst.alive():
                self.log(f"destination QEMU exited with code {dst.proc.returncode}")
                dst.qmp.drain_events()
                # Use the last MIGRATION event it managed to send, if any.
                for ev in reversed(self.journal.events):
                    if ev.get("_side") == "dst" and ev.get("event") == "MIGRATION":
                        status = str(ev.get("data", {}).get("status", status))
                        break
                else:
                    status = "exited"
                info = {
                    "status": status,
                    "exit-code": dst.proc.returncode,
                    "note": "no query-migrate answer: the destination QEMU had exited",
                }
                break
            if grace_end is not None and time.monotonic() > min(grace_end, self.deadline):
                break  # keep the last status seen
            self.check_deadline(f"waiting for the destination (status {status})")
            try:
                info = self.query_migrate("dst", timeout=DST_GRACE_S)
            except CaptureError:
                if grace_end is None and dst.alive():
                    raise
                time.sleep(POLL_INTERVAL_S)
                continue  # it is probably exiting; the branch above reports it
            status = str(info.get("status", ""))
            if status in DST_FINAL:
                break
            time.sleep(POLL_INTERVAL_S)
        self.final["destination"] = info
        self.run_info["t_dst_final"] = time.time()
        self.run_info["dst_final_status"] = status
        self.log(f"destination: {status}")
        return status

    def finish(self) -> None:
        """Let the destination guest run a moment, query the run states, quit both."""
        if self.final.get("destination", {}).get("status") == "completed":
            time.sleep(0.5)  # the guest runs on the destination now
        for role, side in self.sides.items():
            if side.alive():
                with contextlib.suppress(CaptureError):
                    self.run_info[f"{role}_query_status"] = self.qmp(
                        role, "query-status", timeout=10
                    )
        for role, side in self.sides.items():
            if side.alive():
                with contextlib.suppress(CaptureError):
                    self.qmp(role, "quit", timeout=10)
        for role, side in self.sides.items():
            try:
                side.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.log(f"{role} QEMU did not quit; killing it")
                side.kill()
            self.run_info[f"{role}_exit_code"] = side.proc.returncode
            side.qmp.drain_events()
            side.qmp.close()

    # -- output --------------------------------------------------------------------

    def write_outputs(self, version: str, outcome: str) -> None:
        """Write every metadata file of the scenario folder."""
        out = self.out
        if self.sampler is not None:
            for role in self.sides:
                _write_json(out / f"{role}-threads.json", self.sampler.sidecar(role))
        qm = {
            "status": outcome,
            "expected": self.opts.scenario.expected,
            "scenario": self.opts.scenario.name,
            "source": self.final.get("source", {}),
            "destination": self.final.get("destination", {}),
        }
        _write_json(out / "query-migrate.json", qm)
        with (out / "query-migrate-history.jsonl").open("w") as f:
            for rec in self.journal.history:
                f.write(json.dumps(rec) + "\n")
        with (out / "qmp-events.jsonl").open("w") as f:
            for ev in self.journal.events:
                f.write(json.dumps(ev) + "\n")
        qv = self.run_info.get("query_version")
        (out / "qemu-version.txt").write_text(
            version + "\n" + (f"QMP query-version: {json.dumps(qv)}\n" if qv else "")
        )
        self.run_info.update(
            {
                "qemu_version": version,
                "outcome": outcome,
                "params": {
                    "mem_mb": self.opts.mem_mb,
                    "capabilities": list(self.opts.scenario.capabilities),
                    "src_parameters": self.opts.scenario.src_parameters,
                    "converge_parameters": None
                    if self.opts.scenario.action
                    else CONVERGE_PARAMETERS,
                    "precopy_syncs": None
                    if self.opts.scenario.action
                    else self.opts.scenario.precopy_syncs,
                    "action": self.opts.scenario.action,
                    "mutex_events": self.opts.scenario.mutex_events,
                    "per_thread": self.opts.per_thread,
                    "dirty_range": [hex(a) for a in self.dirty],
                    "warmup_s": self.opts.warmup,
                    "timeout_s": self.opts.timeout,
                },
                "t_end": time.time(),
            }
        )
        if "t_migrate" in self.run_info and "t_src_final" in self.run_info:
            self.run_info["migration_wall_s"] = round(
                self.run_info["t_src_final"] - self.run_info["t_migrate"], 3
            )
        self.run_info["capture_wall_s"] = round(time.monotonic() - self.start_mono, 3)
        _write_json(out / "run.json", self.run_info)
        self.write_cmdline()

    def write_cmdline(self) -> None:
        """``cmdline.txt``: command lines and the QMP conversation."""
        lines = [
            f"# migtrace capture, scenario {self.opts.scenario.name}",
            "# capture: " + shlex.join([sys.executable, *sys.argv]),
        ]
        lo, hi = self.dirty
        lines.append(
            f"# guest: {self.out / 'guest.img'}, a boot sector that writes one dword per "
            f"4 KiB page of [{lo:#x}, {hi:#x}) in an endless loop"
        )
        names = {
            "dst": "destination QEMU",
            "src": "source QEMU (started right after the destination)",
        }
        for role, side in self.sides.items():
            lines += ["", f"# {names[role]}", shlex.join(side.cmd)]
        lines += [
            "",
            "# QMP commands in order (t = wall clock, side, command as sent without "
            'its "id"); polled commands are summarised after the list',
        ]
        lines += [f"{t:.6f} {side} {text}" for t, side, text in self.journal.commands]
        if self.journal.polls:
            lines.append("")
        for rec in self.journal.polls.values():
            where = (
                " (answers in query-migrate-history.jsonl)"
                if rec.command == "query-migrate"
                else ""
            )
            lines.append(
                f"# polled: {rec.side} {json.dumps({'execute': rec.command})} x{rec.count}, "
                f"every ~{POLL_INTERVAL_S:g} s from {rec.first:.6f} to {rec.last:.6f}{where}"
            )
        (self.out / "cmdline.txt").write_text("\n".join(lines) + "\n")

    def check_traces(self) -> None:
        """Make sure both sides left trace output."""
        for role in self.sides:
            files = list(
                self.out.glob(f"{role}.*.trace" if self.opts.per_thread else f"{role}.trace")
            )
            if not files or all(f.stat().st_size == 0 for f in files):
                raise CaptureError(f"{role} QEMU wrote no trace output in {self.out}")

    # -- driver --------------------------------------------------------------------

    def run(self) -> int:
        """Run the whole capture; always leaves no QEMU running."""
        version = qemu_version(self.opts.qemu)
        outcome = "error"
        try:
            self.prepare()
            self.spawn()
            self.connect()
            self.wait_guest_loop()
            self.start_migration()
            src_status = self.run_migration()
            dst_status = self.wait_destination(src_status)
            sc = self.opts.scenario
            if sc.expected == "completed":
                ok = src_status == "completed" and dst_status == "completed"
            else:
                ok = src_status == sc.expected
            outcome = src_status if ok else f"{src_status}/{dst_status}"
            self.finish()
            self.check_traces()
            if not ok:
                raise CaptureError(
                    f"migration ended source={src_status} destination={dst_status}, expected "
                    f"{sc.expected}"
                )
            return EXIT_OK
        except CaptureError:
            if outcome == "error":
                outcome = "failed"
            raise
        finally:
            for side in self.sides.values():
                side.kill()
            if self.sampler is not None:
                self.sampler.stop()
            if self.sides:
                try:
                    self.write_outputs(version, outcome)
                except OSError as e:
                    self.log(f"could not write metadata: {e}")
            if self.sock_dir is not None:
                shutil.rmtree(self.sock_dir, ignore_errors=True)


def _register(text: str, name: str) -> int | None:
    """Read one register value (hex) from HMP ``info registers`` output."""
    key = f"{name}="
    i = text.find(key)
    if i < 0:
        return None
    j = i + len(key)
    k = j
    while k < len(text) and text[k] in "0123456789abcdefABCDEF":
        k += 1
    return int(text[j:k], 16) if k > j else None


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1) + "\n")


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> Options:
    """Parse the command line (argparse exits with 2 on a usage error)."""
    p = argparse.ArgumentParser(
        description="Run a real source/destination QEMU live migration on loopback (TCG) and "
        "write its trace-events output plus capture metadata to a scenario folder.",
        epilog="Exit codes: 0 ok, 1 migration failed or timed out, 2 usage or environment "
        "(e.g. QEMU missing).",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (created if needed)")
    p.add_argument(
        "--qemu",
        default="qemu-system-x86_64",
        help="QEMU binary, a path or a name on PATH (default: %(default)s)",
    )
    p.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        default="precopy",
        help="what to migrate and how (default: %(default)s)",
    )
    p.add_argument(
        "--mem",
        type=int,
        default=128,
        metavar="MB",
        help="guest RAM in MiB, at least 32 (default: %(default)s)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="give up (and kill both QEMUs) after S seconds (default: %(default)s)",
    )
    p.add_argument(
        "--per-thread",
        action="store_true",
        help="one trace file per thread: -d tid -D DIR/dst.%%d.trace",
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=0.5,
        metavar="S",
        help="seconds the guest runs its loop before migrating (default: %(default)s)",
    )
    a = p.parse_args(argv)
    if a.mem < 32:
        p.error("--mem must be at least 32 (MiB)")
    if a.timeout <= 0 or a.warmup < 0:
        p.error("--timeout must be positive and --warmup not negative")
    return Options(
        a.out.resolve(), a.qemu, SCENARIOS[a.scenario], a.mem, a.timeout, a.per_thread, a.warmup
    )


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into an exception for the duration, so cleanup code runs."""

    def handler(signum: int, frame: object) -> None:
        raise Interrupted(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    opts = parse_args(argv)
    if not sys.platform.startswith("linux"):
        print("error: capture needs Linux (/proc, unix sockets)", file=sys.stderr)
        return EXIT_ENVIRONMENT
    try:
        opts.qemu = find_qemu(opts.qemu)
        with _sigterm_raises():
            code = Capture(opts).run()
    except CaptureError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    except (KeyboardInterrupt, Interrupted):
        print("error: interrupted; both QEMUs were stopped", file=sys.stderr)
        return EXIT_MIGRATION_FAILED
    print(f"capture: {opts.scenario.name} ok, written to {opts.out}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
