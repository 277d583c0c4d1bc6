"""A small QMP client over a unix socket, and the journal of everything said on it."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracetool._capture.errors import QMPError


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
                raise QMPError(f"{self.side} QEMU exited (code {proc.returncode}) before QMP came up")
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
        # QEMU can send an event (RESUME as the guest starts) before the greeting: the thread
        # emitting it and the monitor thread greeting a new client race (seen with Debian's 7.2;
        # a lock for it was proposed on qemu-devel in December 2025). Such events are journaled
        # like any other.
        while "event" in msg and "QMP" not in msg:
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
