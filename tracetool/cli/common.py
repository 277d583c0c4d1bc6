"""Shared pieces of the CLI: the app, common options, loading, output and error handling."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Annotated, Any, NoReturn

import typer

from tracetool.errors import InputError, UsageError

app = typer.Typer(
    name="migtrace",
    help="Analyse QEMU live-migration trace-events: BQL holds, postcopy preempt waits, "
    "incoming phases.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class OutputFormat(StrEnum):
    """Output formats every analysis command offers."""

    text = "text"
    json = "json"


Paths = Annotated[list[str], typer.Argument(
    help="Trace files, globs or directories ('-' for stdin). Per-thread files written with "
    "'-d tid -D trace.%d' are grouped into one process.", show_default=False)]
ThreadsOpt = Annotated[list[str] | None, typer.Option(
    "--threads", help="Thread-name sidecar JSON (tid -> name); repeat for several processes.")]
EventsOpt = Annotated[list[str] | None, typer.Option(
    "--events", help="QEMU trace-events or trace-events-all file; overrides the built-in "
    "event catalog. Repeatable.")]
InputFormatOpt = Annotated[str | None, typer.Option(
    "--input-format", help="Force the input format instead of detecting it (see 'migtrace formats').")]
FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]
StrictOpt = Annotated[bool, typer.Option(
    "--strict", help="Exit with code 1 when the input was inconsistent (each inconsistency is "
    "listed with its file and line).")]
BorrowOpt = Annotated[list[str] | None, typer.Option(
    "--borrow-from", help="Log-backend file(s) of the same run: borrow thread ids and the wall "
    "clock for a simple-backend trace by matching the event sequence.")]


def load_trace(paths: Sequence[str], threads: Sequence[str] | None, events: Sequence[str] | None,
               input_format: str | None, borrow_from: Sequence[str] | None = None) -> Any:
    """Loads the inputs, mapping problems to clean CLI errors."""
    from reports.progress import ReadProgress, wants_progress
    from tracetool._model.load import load

    def go(progress: ReadProgress | None) -> Any:
        return load(list(paths), threads=list(threads or ()), events=list(events or ()),
                    input_format=input_format, progress=progress,
                    borrow_from=list(borrow_from or ()))

    if wants_progress(paths):
        with ReadProgress() as bar:
            return go(bar)
    return go(None)


def fail_if_strict(strict: bool, issue_count: int) -> None:
    """With --strict, inconsistencies in the input turn into exit code 1 (after the output)."""
    if strict and issue_count:
        sys.stderr.write(f"migtrace: {issue_count} inconsistencies in the input (--strict)\n")
        raise SystemExit(EXIT_FAIL)


def emit_json(data: Any) -> None:
    """Writes JSON to stdout (stable key order as built, UTF-8, newline-terminated)."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Prints one line to stderr and exits."""
    sys.stderr.write(f"migtrace: {message}\n")
    raise SystemExit(code)


def run(entry: Callable[..., Any]) -> None:
    """Runs the typer app, turning known errors into one line and an exit code."""
    from tracetool._events.eventdefs import TraceEventsError

    try:
        code = entry(standalone_mode=False)
        # Without standalone mode a command's typer.Exit(code) comes back as the return value.
        if isinstance(code, int) and code:
            raise SystemExit(code)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except (InputError, UsageError, TraceEventsError) as exc:
        fail(str(exc))
    except typer.Abort:
        fail("aborted")
    except typer.TyperException as exc:  # usage errors: bad option, missing argument
        show = getattr(exc, "show", None)
        if callable(show):
            show()
            raise SystemExit(getattr(exc, "exit_code", EXIT_USAGE)) from None
        fail(str(exc))
    except KeyboardInterrupt:
        sys.stderr.write("migtrace: interrupted\n")
        raise SystemExit(130) from None
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(EXIT_OK) from None
    except MemoryError:
        fail("out of memory while reading the trace", EXIT_INTERNAL)
    except Exception as exc:  # a bug must still not print a traceback by default
        if os.environ.get("MIGTRACE_DEBUG"):
            raise
        fail(f"internal error: {type(exc).__name__}: {exc} (set MIGTRACE_DEBUG=1 for details)",
             EXIT_INTERNAL)


@app.callback()
def _root() -> None:
    """migtrace: trace-replay analysis of QEMU live migration."""
