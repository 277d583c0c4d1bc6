"""The QMP client against a QMP server on a real unix socket that says what QEMU says, in the
orders QEMU has been seen to say it."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracetool._capture.errors import QMPError
from tracetool._capture.qmp import Journal, QMPClient

GREETING: dict[str, object] = {
    "QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}
}
RESUME: dict[str, object] = {"timestamp": {"seconds": 1796520128, "microseconds": 240664}, "event": "RESUME"}


def _serve(server: socket.socket, first: list[dict[str, object]]) -> None:
    """Accepts one client, sends ``first``, then answers every command with an empty return."""
    conn, _ = server.accept()
    with conn:
        for msg in first:
            conn.sendall(json.dumps(msg).encode() + b"\n")
        buf = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                conn.sendall(json.dumps({"return": {}, "id": json.loads(line)["id"]}).encode() + b"\n")


@pytest.fixture
def qemu_stand_in() -> Iterator[subprocess.Popen[bytes]]:
    """A running process for the client to watch, as it watches QEMU."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def _connect(tmp_path: Path, proc: subprocess.Popen[bytes], first: list[dict[str, object]]) -> QMPClient:
    path = tmp_path / "qmp.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    threading.Thread(target=_serve, args=(server, first), daemon=True).start()
    client = QMPClient("src", path, Journal())
    try:
        client.connect(proc, time.monotonic() + 10)
    finally:
        server.close()
    return client


def test_an_event_before_the_greeting_is_journaled_and_the_greeting_still_read(
    tmp_path: Path, qemu_stand_in: subprocess.Popen[bytes]
) -> None:
    client = _connect(tmp_path, qemu_stand_in, [RESUME, GREETING])
    try:
        assert client.greeting == GREETING
        assert [e["event"] for e in client.journal.events] == ["RESUME"]
        assert client.command("query-status", deadline=time.monotonic() + 10) == {}
    finally:
        client.close()


def test_a_monitor_that_does_not_greet_is_refused(
    tmp_path: Path, qemu_stand_in: subprocess.Popen[bytes]
) -> None:
    with pytest.raises(QMPError, match="unexpected QMP greeting"):
        _connect(tmp_path, qemu_stand_in, [{"return": {}}])
