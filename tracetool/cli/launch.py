"""Starting the command line: quiet on Ctrl-C from the very first moment.

Importing the command line (typer, then pandas for a command) takes a moment; a Ctrl-C during
it would print Python's traceback. ``main`` makes SIGINT exit with code 130 and nothing else
while the modules load, then hands over to :func:`tracetool.cli.main.main`, whose error
handling turns a later Ctrl-C into the same quiet exit (output files are written atomically,
so nothing is left half-written).
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

EXIT_INTERRUPTED = 130


def _quiet_exit(signum: int, frame: FrameType | None) -> None:
    sys.stderr.write("migtrace: interrupted\n")
    raise SystemExit(EXIT_INTERRUPTED)


def main() -> None:
    """The ``migtrace`` command."""
    previous = signal.signal(signal.SIGINT, _quiet_exit)
    from tracetool.cli.main import main as run

    signal.signal(signal.SIGINT, previous)
    run()
