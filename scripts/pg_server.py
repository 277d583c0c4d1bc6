#!/usr/bin/env python3
"""A throwaway PostgreSQL server for the tests of the PostgreSQL history (standard library only).

    python3 scripts/pg_server.py start DIR   # initdb in DIR, start on 127.0.0.1, print the URL
    python3 scripts/pg_server.py stop DIR    # stop it (the folder stays; remove it yourself)

It uses the PostgreSQL programs of the machine (Debian's ``postgresql`` package:
``/usr/lib/postgresql/<version>/bin``, or ``initdb`` on PATH). The cluster listens on
127.0.0.1 only, on a free port, with its socket in DIR; it trusts local connections and has a
role ``migtrace`` (password ``migtrace``, allowed to create databases) and a database
``migtrace_test``. PostgreSQL refuses to run as root: as root, the cluster is made and run by
the ``postgres`` user (``runuser``), which must exist (the Debian package creates it).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

ROLE = PASSWORD = "migtrace"
DATABASE = "migtrace_test"
START_TIMEOUT_S = 60


class ServerError(Exception):
    """The server cannot be made or started; the message says why."""


def bin_dir() -> Path:
    """Where initdb, pg_ctl and psql are: the newest /usr/lib/postgresql/N/bin, else PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name or 0)
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    raise ServerError("no PostgreSQL server programs (initdb): apt-get install postgresql")


def _as_owner(cmd: list[str]) -> list[str]:
    """The command run as the postgres user when we are root."""
    if os.geteuid() != 0:
        return cmd
    if shutil.which("runuser") is None:
        raise ServerError("running as root and runuser is missing: cannot start PostgreSQL as postgres")
    return ["runuser", "-u", "postgres", "--", *cmd]


def _run(cmd: list[str], what: str) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False)
    if out.returncode != 0:
        last = (out.stderr or out.stdout).strip().splitlines()
        raise ServerError(f"{what} failed: {last[-1] if last else f'exit code {out.returncode}'}")
    return out.stdout


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(folder: str) -> str:
    """Makes and starts a cluster in ``folder``; returns its URL."""
    bindir = bin_dir()
    root = Path(folder).resolve()
    data = root / "data"
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    if not (data / "PG_VERSION").exists():
        _run(
            _as_owner(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ]
            ),
            "initdb",
        )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
    _run(
        _as_owner(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "server.log"),
                "-o",
                options,
                "-w",
                "start",
            ]
        ),
        "pg_ctl start",
    )
    (root / "port").write_text(f"{port}\n")
    psql = [
        str(bindir / "psql"),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-U",
        "postgres",
        "-v",
        "ON_ERROR_STOP=1",
        "-q",
    ]
    exists = _run([*psql, "-tAc", f"SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}'"], "psql").strip()
    if not exists:
        _run([*psql, "-c", f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}'"], "create role")
        _run([*psql, "-c", f"CREATE DATABASE {DATABASE} OWNER {ROLE}"], "create database")
    return f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"


def stop(folder: str) -> None:
    """Stops the cluster in ``folder`` (nothing when it is not running)."""
    data = Path(folder).resolve() / "data"
    if not (data / "postmaster.pid").exists():
        return
    _run(_as_owner([str(bin_dir() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]), "pg_ctl stop")


def main(argv: list[str]) -> int:
    """``start DIR`` / ``stop DIR``."""
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: pg_server.py start|stop DIR", file=sys.stderr)
        return 2
    try:
        if argv[0] == "start":
            print(start(argv[1]))
        else:
            stop(argv[1])
    except (ServerError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"pg_server: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
