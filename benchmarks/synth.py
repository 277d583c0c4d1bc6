"""Generate large synthetic QEMU log-backend traces with the event mix of a BQL-tracing run.

The mix follows what a real destination QEMU writes with ``-trace 'qemu_mutex_*'`` plus the
migration events: about 83% ``qemu_mutex_lock/locked/unlock`` lines (the BQL taken by the main
loop, the vCPU and the load thread, other mutexes and semaphore noise from qemu-thread-posix.c),
about 17% ``ram_load_loop`` lines, and a few section/vmstate events (one RAM section per
thousands of pages, as in real traces). Threads
interleave with small cross-thread timestamp back-steps, as the log backend produces.

The ``distinct-args`` mix is the same mutex traffic with one line in eight a ``ram_load_loop``
line of a page never seen before (a 64 GiB guest's RAM walked once), as RAM-load and
page-request traces are: there most argument texts are distinct, so interning does not shrink
them.

``generate_broken`` (``--mix broken``) writes the opposite case: BQL events only, whose threads
never complete a lock / locked / unlock sequence, so that every event is an inconsistency of the
lock protocol.

This is for scale and speed only; correctness is tested on real traces.

    python benchmarks/synth.py OUT --lines 10000000 [--era tid|iso] [--mix bql|distinct-args|broken]
        [--seed 1]
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime
from typing import TextIO

BQL = 0x55F0C0A48500
OTHER_MUTEXES = [a for a in (0x55F0C0A48000 + 0x40 * i for i in range(1, 60)) if a != BQL]
SEMAPHORES = [0x55F0F2E90000 + 0x100 * i for i in range(1, 20)]
BQL_LOCK_SITES = [
    "../src/util/main-loop.c:311",
    "../src/accel/tcg/tcg-accel-ops-rr.c:203",
    "../src/system/physmem.c:2748",
    "../src/migration/savevm.c:3091",
    "../src/migration/savevm.c:3182",
    "../src/migration/migration.c:780",
    "../src/hw/core/cpu-common.c:94",
]
BQL_UNLOCK_SITE = "../src/system/cpus.c:575"
OTHER_SITES = [
    "/usr/src/qemu/include/qemu/lockable.h:56",
    "../src/util/qemu-timer.c:534",
    "../src/util/rcu.c:359",
    "../src/monitor/monitor.c:584",
    "../src/block/block-backend.c:2769",
    "../src/util/async.c:717",
]
SEM_SITES = ["../src/util/qemu-thread-posix.c:270", "../src/util/qemu-thread-posix.c:307"]
THREADS = {"main": 1000, "rcu": 1003, "vcpu": 1010, "load": 1014, "io": 1008}


class Writer:
    """Formats lines in one log-backend era and keeps per-thread clocks."""

    def __init__(self, out: TextIO, era: str, start_ns: int, rng: random.Random) -> None:
        self.out = out
        self.era = era
        self.rng = rng
        self.now = start_ns
        self.last = dict.fromkeys(THREADS.values(), start_ns)
        self.lines = 0
        self.buf: list[str] = []

    def emit(self, tid: int, body: str, in_order: bool = False) -> None:
        """Writes one line; ``in_order`` lines never step back (BQL hand-overs are ordered)."""
        self.now += self.rng.randint(1_000, 6_000)
        ts = self.now
        if self.rng.random() < 0.0005 and not in_order:
            # Timestamp taken, then the thread was descheduled before writing: a back-step
            # across threads, never within one. Rate and size follow the real sample traces
            # (0.01-0.09% of lines, median ~10 us late, a few ms at most).
            ts -= min(10_000_000, int(self.rng.expovariate(1 / 15_000)))
        ts = max(ts, self.last[tid])
        self.last[tid] = ts
        if self.era == "tid":
            sec, ns = divmod(ts, 1_000_000_000)
            self.buf.append(f"{tid}@{sec}.{ns // 1000:06d}:{body}\n")
        else:
            sec, ns = divmod(ts, 1_000_000_000)
            stamp = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            us = ns // 1000
            frac = f".{us:06d}" if us else ""
            self.buf.append(f"{stamp}{frac}Z {body}\n")
        self.lines += 1
        if len(self.buf) >= 50_000:
            self.flush()

    def flush(self) -> None:
        self.out.write("".join(self.buf))
        self.buf.clear()


def mutex_triple(w: Writer, tid: int, addr: int, lock_site: str, unlock_site: str) -> None:
    """lock, locked, unlock of one thread. BQL triples are written whole and in time order, so
    the BQL has one holder at a time, as in a real trace."""
    bql = addr == BQL
    w.emit(tid, f"qemu_mutex_lock waiting on mutex {addr:#x} ({lock_site})", bql)
    w.emit(tid, f"qemu_mutex_locked taken mutex {addr:#x} ({lock_site})", bql)
    w.emit(tid, f"qemu_mutex_unlock released mutex {addr:#x} ({unlock_site})", bql)


MIXES = ("bql", "distinct-args")
DISTINCT_RAM_BYTES = 64 << 30


def _distinct_args_mix(w: Writer, lines: int, rng: random.Random) -> None:
    """Mutex triples, and every eighth line a RAM page whose text no other line has."""
    page = 0
    while w.lines < lines:
        r = rng.random()
        if r < 0.35:
            tid = rng.choice([THREADS["main"], THREADS["vcpu"], THREADS["load"]])
            lock, unlock, addr = rng.choice(BQL_LOCK_SITES), BQL_UNLOCK_SITE, BQL
        elif r < 0.75:
            tid = rng.choice(list(THREADS.values()))
            lock = unlock = rng.choice(OTHER_SITES)
            addr = rng.choice(OTHER_MUTEXES)
        else:
            tid = rng.choice([THREADS["main"], THREADS["rcu"], THREADS["load"]])
            lock, unlock, addr = SEM_SITES[0], SEM_SITES[1], rng.choice(SEMAPHORES)
        bql = addr == BQL
        for body in (
            f"qemu_mutex_lock waiting on mutex {addr:#x} ({lock})",
            f"qemu_mutex_locked taken mutex {addr:#x} ({lock})",
            f"qemu_mutex_unlock released mutex {addr:#x} ({unlock})",
        ):
            if w.lines % 8 == 7:
                page += 1
                addr_p = (page * 4096) % DISTINCT_RAM_BYTES
                w.emit(
                    THREADS["load"],
                    f"ram_load_loop pc.ram: addr: {addr_p:#x} flags: 0x28 host: {0x7FD078000000 + addr_p:#x}",
                )
            w.emit(tid, body, bql)


def generate(path: str, lines: int, era: str = "tid", seed: int = 1, mix: str = "bql") -> int:
    """Writes about ``lines`` lines to ``path`` with the given mix (``MIXES``); returns the exact
    number written."""
    if mix not in MIXES:
        raise ValueError(f"unknown mix {mix!r}; choose from {', '.join(MIXES)}")
    rng = random.Random(seed)
    start = 1_795_693_810_000_000_000
    with open(path, "w", encoding="ascii") as out:
        w = Writer(out, era, start, rng)
        if mix == "distinct-args":
            _distinct_args_mix(w, lines, rng)
            w.flush()
            return w.lines
        page = 0
        section = 0
        while w.lines < lines:
            r = rng.random()
            if r < 0.30:
                tid = rng.choice([THREADS["main"], THREADS["vcpu"], THREADS["load"]])
                mutex_triple(w, tid, BQL, rng.choice(BQL_LOCK_SITES), BQL_UNLOCK_SITE)
            elif r < 0.65:
                tid = rng.choice(list(THREADS.values()))
                site = rng.choice(OTHER_SITES)
                mutex_triple(w, tid, rng.choice(OTHER_MUTEXES), site, site)
            elif r < 0.85:
                tid = rng.choice([THREADS["main"], THREADS["rcu"], THREADS["load"]])
                mutex_triple(w, tid, rng.choice(SEMAPHORES), SEM_SITES[0], SEM_SITES[1])
            elif r < 0.9997:
                # Real traces load thousands of pages per RAM section (7.2: ~6500 per PART
                # section), so section events are rare next to the page events.
                for _ in range(rng.randint(1, 6)):
                    page += 1
                    addr = (page * 4096) % (512 << 20)
                    w.emit(
                        THREADS["load"],
                        f"ram_load_loop pc.ram: addr: {addr:#x} flags: 0x28 host: {0x7FD078000000 + addr:#x}",
                    )
            else:
                section += 1
                load = THREADS["load"]
                w.emit(load, f"qemu_loadvm_state_section {rng.choice([2, 3, 4])}")
                w.emit(load, f"qemu_loadvm_state_section_partend {section % 50}")
                w.emit(load, "vmstate_load_state ram v4")
        w.flush()
    return w.lines


BROKEN_THREADS = [1000, 1010, 1011, 1014, 1020, 1021, 1030, 1031]
# Per thread, over and over: lock, unlock, unlock, locked, locked. Each event breaks the lock
# protocol: a lock followed by no locked, a release without a hold (twice), a hold taken again
# before it was released (twice).
BROKEN_CYCLE = ("lock", "unlock", "unlock", "locked", "locked")


def generate_broken(path: str, lines: int, era: str = "tid", seed: int = 1) -> int:
    """Writes ``lines`` BQL events of threads that never complete a lock sequence."""
    rng = random.Random(seed)
    text = {
        "lock": "qemu_mutex_lock waiting on mutex {addr:#x} ({site})",
        "locked": "qemu_mutex_locked taken mutex {addr:#x} ({site})",
        "unlock": "qemu_mutex_unlock released mutex {addr:#x} ({site})",
    }
    step = dict.fromkeys(BROKEN_THREADS, 0)
    with open(path, "w", encoding="ascii") as out:
        w = Writer(out, era, 1_795_693_810_000_000_000, rng)
        for tid in BROKEN_THREADS:
            w.last[tid] = w.now
        while w.lines < lines:
            tid = rng.choice(BROKEN_THREADS)
            kind = BROKEN_CYCLE[step[tid] % len(BROKEN_CYCLE)]
            step[tid] += 1
            site = BQL_UNLOCK_SITE if kind == "unlock" else rng.choice(BQL_LOCK_SITES)
            w.emit(tid, text[kind].format(addr=BQL, site=site), in_order=True)
        w.flush()
    return w.lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--lines", type=int, default=10_000_000)
    ap.add_argument("--era", choices=["tid", "iso"], default="tid")
    ap.add_argument("--mix", choices=[*MIXES, "broken"], default="bql")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.mix == "broken":
        n = generate_broken(a.out, a.lines, a.era, a.seed)
    else:
        n = generate(a.out, a.lines, a.era, a.seed, a.mix)
    print(f"{a.out}: {n} lines")


if __name__ == "__main__":
    main()
