"""Exit codes and the exceptions of a capture."""

from __future__ import annotations

EXIT_OK = 0
#: a migration did not reach the state its scenario expects (the capture still ran to its end)
EXIT_RUN_FAILED = 1
#: usage or environment problem: QEMU missing, not executable, unable to start, no KVM
EXIT_ENVIRONMENT = 2
#: stopped by SIGINT (Ctrl-C); SIGTERM gives 128 + 15 (both QEMUs of the run are stopped first)
EXIT_INTERRUPTED = 130


class CaptureError(Exception):
    """A failure of one run (``code`` 1) or of the environment (``code`` 2)."""

    def __init__(self, message: str, code: int = EXIT_RUN_FAILED) -> None:
        super().__init__(message)
        self.code = code


class QMPError(Exception):
    """QMP transport failure or an ``error`` answer."""


class Interrupted(BaseException):
    """SIGTERM turned into an exception, so that cleanup code runs as for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + self.signum
