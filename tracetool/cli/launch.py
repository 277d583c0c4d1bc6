"""Starting the command line: quiet on Ctrl-C from the very first moment.

Ctrl-C (SIGINT) makes ``migtrace`` exit with code 130 and one line, whenever it comes, and
nothing half-written is left behind (output files are written atomically, and a file whose
writing is finished after the interrupt is not put in place). The handler marks the interrupt
before it raises KeyboardInterrupt, because Python can lose that exception inside some imports
(pandas' start-up, for one) or in a callback whose exceptions Python only reports (a weakref's,
a finalizer's: those reports are silenced for KeyboardInterrupt); the command checks the mark
when it ends. A SIGINT that was
ignored when migtrace started (a job started in the background) stays ignored.
"""

from __future__ import annotations

import signal
import sys
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


def main() -> None:
    """The ``migtrace`` command."""
    sys.unraisablehook = _unraisable
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        from tracetool.cli.main import main as run
    else:
        signal.signal(signal.SIGINT, _interrupt)
        try:
            from tracetool.cli.main import main as run
        except KeyboardInterrupt:
            sys.stderr.write("migtrace: interrupted\n")
            raise SystemExit(EXIT_INTERRUPTED) from None
    run()
