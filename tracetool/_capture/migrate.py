"""Driving one migration over QMP: start it, do the scenario's actions, wait for the end."""

from __future__ import annotations

import time
from typing import Any

from tracetool._capture.errors import EXIT_ENVIRONMENT, CaptureError
from tracetool._capture.qemu import free_tcp_port
from tracetool._capture.scenarios import DESTINATION_FINAL, SOURCE_FINAL, Action
from tracetool._capture.session import POLL_INTERVAL_S, Session

#: How long the destination may take to notice a failed or cancelled migration.
DESTINATION_GRACE_S = 10.0
#: After x-colo-lost-heartbeat on the secondary, how long to wait for it to leave COLO before
#: the primary gets its own.
FAILOVER_SETTLE_S = 5.0
#: How long to ask a completed source again for its total time and downtime (see
#: :func:`_settled_totals`).
TOTALS_WAIT_S = 2.0
#: Parameters the destination must share with the source: it opens as many multifd channels as
#: its own multifd-channels says, and QEMU 7.2 crashes (SIGSEGV) on a channel beyond them.
SHARED_PARAMETERS = frozenset(
    {"multifd-channels", "multifd-compression", "multifd-zlib-level", "multifd-zstd-level"}
)


def start_migration(s: Session) -> None:
    """Capabilities on both sides, the shared parameters and migrate-incoming on dst, the
    parameters and migrate on src."""
    sc = s.opts.scenario
    caps = [{"capability": c, "state": True} for c in sc.capabilities]
    try:
        s.qmp("dst", "migrate-set-capabilities", {"capabilities": caps})
    except CaptureError as e:
        hint = ""
        if "postcopy-ram" in sc.capabilities:
            hint = (
                "; postcopy needs userfaultfd(2): run as root, or set "
                "vm.unprivileged_userfaultfd=1, and allow the syscall in the container"
            )
        raise CaptureError(
            f"this QEMU/host cannot use {', '.join(sc.capabilities)}: {e}{hint}",
            EXIT_ENVIRONMENT,
        ) from e
    shared = {k: v for k, v in sc.parameters.items() if k in SHARED_PARAMETERS}
    if shared:
        s.qmp("dst", "migrate-set-parameters", shared)
    uri = ""
    for attempt in range(5):
        uri = f"tcp:127.0.0.1:{free_tcp_port()}"
        try:
            s.qmp("dst", "migrate-incoming", {"uri": uri})
            break
        except CaptureError as e:
            if attempt == 4 or not s.sides["dst"].alive():
                raise
            s.log(f"migrate-incoming {uri} failed ({e}); trying another port")
    s.run_info["uri"] = uri
    s.qmp("src", "migrate-set-capabilities", {"capabilities": caps})
    s.qmp("src", "migrate-set-parameters", dict(sc.parameters))
    s.run_info["t_migrate"] = time.time()
    s.qmp("src", "migrate", {"uri": uri})
    s.log(f"migrate {uri} ({sc.name})")


def _status(info: dict[str, Any]) -> str:
    return str(info.get("status", ""))


class _ActionClock:
    """Decides when the next action is due; remembers since when a state has held."""

    def __init__(self) -> None:
        self.state_since: float | None = None

    def due(self, s: Session, action: Action, src_status: str, syncs: int) -> bool:
        if action.at_sync is not None:
            return src_status == "active" and syncs >= action.at_sync
        both = src_status == action.in_state and _status(s.query_migrate("dst")) == action.in_state
        if not both:
            self.state_since = None
            return False
        if self.state_since is None:
            self.state_since = time.monotonic()
            s.log(f"both sides {action.in_state}")
        return time.monotonic() - self.state_since >= action.after_s


def do_action(s: Session, action: Action) -> None:
    """Carry out one action now."""
    s.log(action.describe())
    s.run_info.setdefault("actions", []).append({"t": time.time(), "action": action.describe()})
    if action.do == "set-parameters":
        s.qmp("src", "migrate-set-parameters", dict(action.parameters))
    elif action.do == "start-postcopy":
        s.qmp("src", "migrate-start-postcopy")
    elif action.do == "cancel":
        s.qmp("src", "migrate_cancel")
    elif action.do == "kill-destination":
        s.sides["dst"].proc.kill()
    elif action.do == "failover":
        failover(s)
    else:  # scenarios.py rejects anything else
        raise AssertionError(action.do)


def failover(s: Session) -> None:
    """COLO failover: x-colo-lost-heartbeat on the secondary, then on the primary."""
    s.qmp("dst", "x-colo-lost-heartbeat")
    settle = time.monotonic() + FAILOVER_SETTLE_S
    while time.monotonic() < settle and _status(s.query_migrate("dst")) == "colo":
        time.sleep(POLL_INTERVAL_S)
    s.qmp("src", "x-colo-lost-heartbeat")


def drive_source(s: Session) -> str:
    """Poll the source until it reaches a final status, doing the actions on the way."""
    pending = list(s.opts.scenario.actions)
    clock = _ActionClock()
    status = ""
    info: dict[str, Any] = {}
    while True:
        s.check_deadline(f"migrating (source status {status or 'unknown'})")
        src = s.sides["src"]
        if not src.alive():
            raise CaptureError(
                f"source QEMU exited during the migration (code {src.proc.returncode})\n" + src.stderr_tail()
            )
        info = s.query_migrate("src")
        status = _status(info)
        if status in SOURCE_FINAL:
            break
        syncs = int(info.get("ram", {}).get("dirty-sync-count", 0))
        if pending and clock.due(s, pending[0], status, syncs):
            do_action(s, pending.pop(0))
            clock = _ActionClock()
            continue
        time.sleep(POLL_INTERVAL_S)
    s.run_info["t_src_final"] = time.time()
    s.run_info["src_final_status"] = status
    if status == "completed" and "x-colo" not in s.opts.scenario.capabilities:
        info = _settled_totals(s, info)
    s.final["source"] = info
    s.log(f"source: {status}")
    missed = [a for a in pending if a.do != "set-parameters"]  # tuning that was not needed
    if missed:
        s.log(f"warning: the migration ended ({status}) before: {missed[0].describe()}")
    return status


def _settled_totals(s: Session, info: dict[str, Any]) -> dict[str, Any]:
    """The completed source's answer once it has its total time and downtime.

    QEMU sets the ``completed`` status before the migration thread works out those two figures,
    so an answer read in between says 0 for both; ask again (for up to :data:`TOTALS_WAIT_S`)
    until ``total-time`` is set. A COLO run never sets them: it is not asked again.
    """
    give_up = time.monotonic() + TOTALS_WAIT_S
    while info.get("total-time") == 0 and time.monotonic() < give_up:
        time.sleep(POLL_INTERVAL_S)
        info = s.query_migrate("src")
    if info.get("total-time") == 0:
        s.log(f"warning: the source still says total-time 0 after {TOTALS_WAIT_S:g} s")
    return info


def _last_event_status(s: Session, role: str) -> str | None:
    """The status of the last MIGRATION event ``role`` sent, if any."""
    for ev in reversed(s.journal.events):
        if ev.get("_side") == role and ev.get("event") == "MIGRATION":
            return str(ev.get("data", {}).get("status"))
    return None


def wait_destination(s: Session, src_status: str) -> str:
    """Wait for the destination's final status (or its exit).

    After a completed source the destination must complete too (within the run's timeout);
    after any other end it gets a few seconds to notice.
    """
    dst = s.sides["dst"]
    status = "unknown"
    info: dict[str, Any] = {}
    grace_end = None if src_status == "completed" else time.monotonic() + DESTINATION_GRACE_S
    while True:
        if not dst.alive():
            s.log(f"destination QEMU exited with code {dst.proc.returncode}")
            dst.qmp.drain_events()
            status = _last_event_status(s, "dst") or "exited"
            info = {
                "status": status,
                "exit-code": dst.proc.returncode,
                "note": "no query-migrate answer: the destination QEMU had exited; status "
                "from its last MIGRATION event",
            }
            break
        if grace_end is not None and time.monotonic() > min(grace_end, s.deadline):
            break  # keep the last status seen
        s.check_deadline(f"waiting for the destination (status {status})")
        try:
            info = s.query_migrate("dst", timeout=DESTINATION_GRACE_S)
        except CaptureError:
            if grace_end is None and dst.alive():
                raise
            time.sleep(POLL_INTERVAL_S)
            continue  # it is probably exiting; the branch above reports it
        status = _status(info)
        if status in DESTINATION_FINAL:
            break
        time.sleep(POLL_INTERVAL_S)
    s.final["destination"] = info
    s.run_info["t_dst_final"] = time.time()
    s.run_info["dst_final_status"] = status
    s.log(f"destination: {status}")
    return status
