"""The ``migtrace`` command line: a thin layer over ``tracetool``.

Each command lives in its own module and registers itself on ``app``; every command parses its
options, calls ``tracetool.load`` and one analysis, and hands the result to a renderer in
``reports``. Errors become one line on stderr and exit code 2 (see ``run``).
"""

from __future__ import annotations

import importlib

from tracetool.cli.common import app, run

COMMAND_MODULES = ("summary",)

for _name in COMMAND_MODULES:
    importlib.import_module(f"tracetool.cli.{_name}")


def main() -> None:
    """Console-script entry point."""
    run(app)


__all__ = ["app", "main"]
