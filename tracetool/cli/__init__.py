"""The ``migtrace`` command line: a thin layer over ``tracetool``.

Each command lives in its own module and registers itself on ``app``; every command parses its
options, calls ``tracetool.load`` and one analysis, and hands the result to a renderer in
``reports``. Errors become one line on stderr and exit code 2 (see ``run``).
"""

from __future__ import annotations

import importlib
import pkgutil

from tracetool.cli.common import app, run

_NOT_COMMANDS = {"common", "__main__"}

# Every other module of this package defines one command; importing it registers it.
for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _mod not in _NOT_COMMANDS:
        importlib.import_module(f"tracetool.cli.{_mod}")


def main() -> None:
    """Console-script entry point."""
    run(app)


__all__ = ["app", "main"]
