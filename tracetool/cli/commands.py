"""Which module defines which command, so that ``migtrace NAME`` imports only what NAME needs.

Every other module of this package defines the command (or command group) it is named after
and registers it on ``common.app`` when imported (a module may register more: ``compare``
brings ``report`` along). The ``migtrace`` process imports the module of the command on its
command line and no other; without a command name (``migtrace``, ``migtrace --help``) or with
one that no module has (a typo, for which typer suggests the right one) it imports them all.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Sequence

NOT_COMMANDS = frozenset({"commands", "common", "launch", "main", "__main__"})


def command_modules() -> list[str]:
    """The modules of this package that define commands, by name."""
    here = os.path.dirname(__file__)
    return sorted(m.name for m in pkgutil.iter_modules([here]) if m.name not in NOT_COMMANDS)


def named_command(args: Sequence[str], modules: Sequence[str]) -> str | None:
    """The command ``args`` (the command line after ``migtrace``) runs, when a module of that
    name defines it: the first word that is not an option (the options before a command take
    no value)."""
    for arg in args:
        if not arg.startswith("-"):
            return arg if arg in modules else None
    return None


def load_commands(args: Sequence[str] | None = None) -> None:
    """Registers the command ``args`` name on ``common.app``, or every command (``args`` None,
    or naming none)."""
    modules = command_modules()
    name = named_command(args, modules) if args is not None else None
    for module in [name] if name else modules:
        importlib.import_module(f"tracetool.cli.{module}")
