"""Thread names of running QEMUs, sampled from ``/proc/<pid>/task/*/comm``.

The log backend prints thread ids but not names; ``-name ...,debug-threads=on`` names QEMU's
threads, and this sampler records the names while the migration runs, for the
``<role>-threads.json`` sidecars migtrace reads with ``--threads``.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

SAMPLE_INTERVAL_S = 0.05


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
                    with open(f"/proc/{pid}/task/{entry}/comm", encoding="utf-8", errors="replace") as f:
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
            "tid_to_name": {str(tid): info.names[-1]["name"] for tid, info in sorted(threads.items())},
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
