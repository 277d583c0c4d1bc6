"""The ``migtrace`` entry point: every command registered on one typer app."""

from __future__ import annotations

import importlib
import pkgutil

from tracetool import cli
from tracetool.cli.common import app, run

NOT_COMMANDS = {"common", "main", "__main__"}

# Every other module of the package defines one command; importing it registers it.
for _mod in sorted(m.name for m in pkgutil.iter_modules(cli.__path__)):
    if _mod not in NOT_COMMANDS:
        importlib.import_module(f"tracetool.cli.{_mod}")


def main() -> None:
    """Console-script entry point."""
    run(app)


__all__ = ["app", "main"]
