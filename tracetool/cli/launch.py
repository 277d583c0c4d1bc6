"""Starting the command line: only what the command needs, quiet on Ctrl-C from the very first
moment, and a quick exit.

The process imports the module of the command it runs and no other (``tracetool.cli.commands``)
and leaves the garbage collector's last pass out of its exit.

Ctrl-C (SIGINT) makes ``migtrace`` exit with code 130 and one line, whenever it comes, and
nothing half-written is left behind (output files are written atomically, and a file whose
writing is finished after the interrupt is not put in place). The handler marks the interrupt
before it raises KeyboardInterrupt, because Python can lose that exception inside some imports
(pandas' start-up, for one) or in a callback whose exceptions Python only reports (a weakref's,
a finalizer's: those reports are silenced for KeyboardInterrupt); the command checks the mark
when it ends. A SIGINT that was ignored when migtrace started (a job started in the background)
stays ignored.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

from reports.atomic import INTERRUPTED

EXIT_INTERRUPTED = 130


def _interrupt(signum: int, frame: FrameType | None) -> None:
    INTERRUPTED.set()
    raise KeyboardInterrupt


def _unraisable(report: sys.UnraisableHookArgs) -> None:
    """Python's report of an exception it cannot raise, except the interrupt it already marked."""
    if report.exc_type is not None and issubclass(report.exc_type, KeyboardInterrupt):
        return
    _default_unraisable(report)


_default_unraisable = sys.unraisablehook


def _command_line() -> Callable[[], None]:
    """Imports what the command on the command line needs (``tracetool.cli.commands``)."""
    from tracetool.cli.commands import load_commands
    from tracetool.cli.common import app, run

    load_commands(sys.argv[1:])
    return lambda: run(app)


def main() -> None:
    """The ``migtrace`` command."""
    sys.unraisablehook = _unraisable
    # numpy asks the kernel for transparent huge pages for every large array. Where the host
    # backs a VM's memory as it is first touched (CI runners, cloud and microVMs) that made a
    # fresh process's loads twice as slow in most runs (README, Performance); small pages cost
    # the same every time. Set before numpy is imported; NUMPY_MADVISE_HUGEPAGE=1 restores it.
    os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        run = _command_line()
    else:
        signal.signal(signal.SIGINT, _interrupt)
        try:
            run = _command_line()
        except KeyboardInterrupt:
            sys.stderr.write("migtrace: interrupted\n")
            raise SystemExit(EXIT_INTERRUPTED) from None
    try:
        run()
    finally:
        # Python's exit still runs (atexit, threads joined, stdout and stderr flushed, modules
        # torn down), but its garbage collector no longer walks every object pandas and pyarrow
        # created: that walk took 0.07 s of a 0.5 s `migtrace summary`, only to free memory the
        # process returns. What only a reference cycle still holds is left to the OS: migtrace
        # closes the files it writes itself (reports.atomic).
        gc.freeze()
