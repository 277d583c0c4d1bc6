"""The ``migtrace`` entry point: every command registered on one typer app."""

from __future__ import annotations

from tracetool.cli.commands import load_commands
from tracetool.cli.common import app, run

# Importing this module registers every command (for those who use ``app``); the ``migtrace``
# process registers only the one it runs (``tracetool.cli.launch``).
load_commands()


def main() -> None:
    """Console-script entry point."""
    run(app)


__all__ = ["app", "main"]
