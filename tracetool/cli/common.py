"""Shared pieces of the CLI: the app, the input options every command takes, loading, output and
error handling.

A command declares only its own options; :func:`command` adds the shared input options
(``PATHS``, ``--threads``, ``--events``, ``--input-format``, ``--borrow-from``, ``--force``, and
where asked ``--query-migrate``, ``--format``, ``--strict``) to its signature, the same way for
every command, and hands the function an :class:`Inputs` that loads the trace. A run folder
among the PATHS brings its sidecars and query-migrate.json along
(``tracetool._model.runfolder``); ``--threads`` / ``--query-migrate`` given explicitly win.
:func:`show` prints an analysis result (JSON or text) and applies ``--strict``.
"""

from __future__ import annotations

import gc
import inspect
import io
import os
import sys
import typing
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, NoReturn

import typer

from parsers.io import read_ahead
from tracetool.errors import ForeignInputWarning, InputError, TraceEventsError, UsageError

if typing.TYPE_CHECKING:
    from tracetool._model.runfolder import ResolvedInputs
    from tracetool._model.trace import Trace

app = typer.Typer(
    name="migtrace",
    help="Analyse QEMU live-migration trace-events: BQL holds, postcopy preempt waits, incoming "
    "phases, COLO checkpoints.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class OutputFormat(StrEnum):
    """Output formats every analysis command offers."""

    text = "text"
    json = "json"


Paths = Annotated[
    list[str],
    typer.Argument(
        help="Trace files, globs or directories ('-' for stdin). Per-thread files written with "
        "'-d tid -D trace.%d' are grouped into one process.",
        show_default=False,
    ),
]
ThreadsOpt = Annotated[
    list[str] | None,
    typer.Option("--threads", help="Thread-name sidecar JSON (tid -> name); repeat for several processes."),
]
EventsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--events",
        help="QEMU trace-events or trace-events-all file; overrides the built-in event catalog. Repeatable.",
    ),
]
InputFormatOpt = Annotated[
    str | None,
    typer.Option(
        "--input-format", help="Force the input format instead of detecting it (see 'migtrace formats')."
    ),
]
BorrowOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--borrow-from",
        help="Log-backend file(s) of the same run: borrow thread ids and the wall "
        "clock for a simple-backend trace by matching the event sequence.",
    ),
]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Use a sidecar or --borrow-from log even when its pids, thread ids or time do not "
        "match the trace (a warning says why).",
    ),
]
QueryMigrateOpt = Annotated[
    str | None,
    typer.Option(
        "--query-migrate",
        help='QEMU\'s query-migrate result as JSON ({"src": ..., "dst": ...}, '
        '{"source": ..., "destination": ...}, or one plain return object) to compare with.',
    ),
]
FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Exit with code 1 when the input was inconsistent (each inconsistency is "
        "listed with its file and line).",
    ),
]

_INPUT_PARAMS: tuple[tuple[str, Any, Any], ...] = (
    ("threads", ThreadsOpt, None),
    ("events", EventsOpt, None),
    ("input_format", InputFormatOpt, None),
    ("borrow_from", BorrowOpt, None),
    ("force", ForceOpt, False),
)


@dataclass
class Inputs:
    """What the shared input options say: the traces and the files that describe them.

    Run folders among ``paths`` bring their sidecars and query-migrate.json; ``threads`` and
    ``query_migrate`` given explicitly replace them."""

    paths: Sequence[str]
    threads: Sequence[str] | None = None
    events: Sequence[str] | None = None
    input_format: str | None = None
    borrow_from: Sequence[str] | None = None
    query_migrate: str | None = None
    force: bool = False
    _resolved: ResolvedInputs | None = field(default=None, init=False, repr=False)

    def resolved(self) -> ResolvedInputs:
        """The paths with run folders replaced by their traces' folder (computed once)."""
        if self._resolved is None:
            from tracetool._model.runfolder import resolve_paths

            self._resolved = resolve_paths(list(self.paths))
        return self._resolved

    def trace_files(self) -> list[str]:
        """The files the trace is read from: run folders and directories listed as the load
        lists them. The paths as given where they cannot be listed: the load says why."""
        from parsers.inputs import list_inputs

        try:
            files, _ = list_inputs(self.resolved().paths)
        except (InputError, UsageError, OSError):
            return list(self.paths)
        return [f.path for f in files]

    def load(self) -> Any:
        """The trace (a progress bar on a terminal for big inputs); problems are InputError /
        UsageError, which :func:`run` turns into one line and exit code 2. Side files used
        despite not matching the trace (``--force``) are reported on stderr."""
        from reports.progress import ReadProgress, wants_progress
        from tracetool._model.load import load

        resolved = self.resolved()

        def go(progress: ReadProgress | None) -> Any:
            return load(
                list(self.paths),
                threads=list(self.threads or ()),
                events=list(self.events or ()),
                input_format=self.input_format,
                progress=progress,
                borrow_from=list(self.borrow_from or ()),
                force=self.force,
            )

        with warnings_on_stderr():
            if wants_progress(resolved.paths):
                with ReadProgress() as bar:
                    return go(bar)
            return go(None)

    def query(self) -> Any:
        """QEMU's query-migrate result from ``--query-migrate`` or the run folder, or None."""
        path = self.query_migrate or self.resolved().query_migrate
        if not path:
            return None
        from tracetool._model.querymigrate import load_query_migrate

        return load_query_migrate(path)


@contextmanager
def warnings_on_stderr() -> Iterator[None]:
    """Prints the ForeignInputWarnings raised inside as ``migtrace: warning: ...`` lines."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ForeignInputWarning)
        try:
            yield
        finally:
            for w in caught:
                if issubclass(w.category, ForeignInputWarning):
                    sys.stderr.write(f"migtrace: warning: {one_line(w.message)}\n")
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def command(
    name: str | None = None,
    *,
    paths: bool = True,
    query_migrate: bool = False,
    output_format: bool = True,
    strict: bool = True,
    cls: type[typer.core.TyperCommand] | None = None,
) -> Callable[[Callable[..., Any]], Any]:
    """Registers ``fn`` as a command with the shared options added to its own.

    ``fn``'s parameter ``inputs`` receives an :class:`Inputs`; with ``output_format``/``strict`` it
    also receives ``format``/``strict`` keyword arguments. ``paths=False`` leaves out the
    positional PATHS (the command declares its own inputs) and passes no Inputs.
    """

    def register(fn: Callable[..., Any]) -> Any:
        own = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)
        own_params = [p for p in own.parameters.values() if p.name != "inputs"]
        shared: list[tuple[str, Any, Any]] = []
        if paths:
            shared.append(("paths", Paths, inspect.Parameter.empty))
            shared.extend(_INPUT_PARAMS)
            if query_migrate:
                shared.append(("query_migrate", QueryMigrateOpt, None))
        if output_format:
            shared.append(("format", FormatOpt, OutputFormat.text))
        if strict:
            shared.append(("strict", StrictOpt, False))
        names = {s[0] for s in shared}
        # The command may list shared parameters (format, strict) to receive them; they are
        # declared once, here.
        own_params = [p for p in own_params if p.name not in names]
        positional = [
            inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=a, default=d)
            for n, a, d in shared[:1]
            if paths
        ]
        options = [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=a, default=d)
            for n, a, d in (shared[1:] if paths else shared)
        ]
        mine = [
            p.replace(annotation=hints.get(p.name, p.annotation), kind=inspect.Parameter.KEYWORD_ONLY)
            for p in own_params
        ]
        # Arguments of the command itself come right after PATHS, options after the shared ones.
        args = [p for p in mine if _is_argument(p)]
        opts = [p for p in mine if not _is_argument(p)]
        params = [
            *[p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in args],
            *positional,
            *options,
            *opts,
        ]

        def wrapper(**kwargs: Any) -> Any:
            if not paths:
                return fn(**kwargs)
            given = {k: kwargs.pop(k) for k in list(kwargs) if k in names and k not in ("format", "strict")}
            inputs = Inputs(**given)
            # Small compressed traces decompress on another core while the command imports
            # pandas and the rest: 0.04 s of a 0.5 s `migtrace summary`.
            with read_ahead(inputs.trace_files()):
                _import_pandas()
                return fn(inputs=inputs, **kwargs)

        wrapper.__name__ = fn.__name__
        wrapper.__qualname__ = fn.__qualname__
        wrapper.__doc__ = fn.__doc__
        wrapper.__module__ = fn.__module__
        wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        kwargs: dict[str, Any] = {"cls": cls} if cls is not None else {}
        app.command(name, **kwargs)(wrapper)
        return fn

    return register


def _import_pandas() -> None:
    """Imports pandas (every command that reads traces needs it) with the garbage collector
    off, then freezes what the imports made: the hundreds of thousands of objects of pandas and
    numpy live as long as the process, and the collector's passes over them free nothing
    (0.025 s of a 0.46 s `migtrace summary`)."""
    if "pandas" in sys.modules:
        return
    gc.disable()
    try:
        import pandas  # noqa: F401
    finally:
        gc.freeze()
        gc.enable()


def _is_argument(p: inspect.Parameter) -> bool:
    meta = getattr(p.annotation, "__metadata__", ())
    return any(isinstance(m, typer.models.ArgumentInfo) for m in meta)


def show(
    result: Any,
    fmt: OutputFormat,
    strict: bool,
    render_text: Callable[[Any, Any], None],
    document: dict[str, Any] | None = None,
) -> None:
    """Prints ``result`` as JSON (``document`` or ``result.to_json()``) or as text
    (``render_text(result, console)``), then fails with exit code 1 under ``--strict`` when the
    input was inconsistent (``result.issue_count``)."""
    if fmt is OutputFormat.json:
        emit_json(result.to_json() if document is None else document)
    else:
        from reports.console import console

        render_text(result, console())
    fail_if_strict(strict, int(result.issue_count))


def fail_if_strict(strict: bool, issue_count: int) -> None:
    """With --strict, inconsistencies in the input turn into exit code 1 (after the output)."""
    if strict and issue_count:
        sys.stderr.write(f"migtrace: {issue_count} inconsistencies in the input (--strict)\n")
        raise SystemExit(EXIT_FAIL)


def emit_json(data: Any) -> None:
    """Writes JSON to stdout (stable key order as built, UTF-8, newline-terminated)."""
    from tracetool._json import dumps

    sys.stdout.write(dumps(data))


def one_line(text: object) -> str:
    """``text`` on one line: line breaks in it (a file name may hold one) shown as ``\\n``."""
    return str(text).replace("\r", "\\r").replace("\n", "\\n")


def human_size(size: int) -> str:
    """A file size for people: 812 B, 14 KiB, 3.2 MiB."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def wrote(path: str | os.PathLike[str], size: int | None = None) -> None:
    """The one line every command prints on stderr for each file it wrote:
    ``migtrace: wrote PATH (SIZE)``; ``size`` defaults to the file's size on disk."""
    if size is None:
        size = os.path.getsize(path)
    sys.stderr.write(f"migtrace: wrote {one_line(os.fspath(path))} ({human_size(size)})\n")


def check_output(output: str | None, *, directory: bool = False) -> None:
    """Fails early, before any trace is read, when ``output`` cannot be created: its folder
    must exist (a directory output ending in '/' may be created, inside a folder that exists),
    and a file output must not be a directory. Nothing is created here."""
    if output is None or output == "-":
        return
    target = os.path.abspath(output)
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        raise UsageError(f"{output}: cannot write: no such directory {parent}")
    if not directory and os.path.isdir(output):
        raise UsageError(f"{output}: cannot write: it is a directory")


def offset_files(trace: Trace) -> set[str]:
    """The input files whose events are placed by a byte offset, not a line (binary traces)."""
    return {i.path for i in trace.input_info if i.line_unit == "offset"}


def require_match(
    option: str, value: str, known: Sequence[str], what: str, place: str = "this trace"
) -> None:
    """The rule for every filter option: a value that matches nothing in the trace (or the
    history: ``place``) is a usage error (exit 2) naming the close matches, not an empty table.
    ``known``: what there is for that option; ``what``: those things in words ("kinds")."""
    if value in known:
        return
    import difflib

    close = difflib.get_close_matches(value, list(known), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    shown = sorted(known, key=str)
    listed = ", ".join(shown[:20]) + (f", ... ({len(shown)} in all)" if len(shown) > 20 else "")
    here = f"{what} here: {listed or 'none'}"
    raise UsageError(f"{option} {value!r}: nothing of that in {place}{hint} ({here})")


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Prints one line to stderr and exits."""
    sys.stderr.write(f"migtrace: {one_line(message)}\n")
    raise SystemExit(code)


def _interrupted() -> bool:
    from reports.atomic import INTERRUPTED

    return INTERRUPTED.is_set()


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Warnings that reach the command line (a library's, say) print as one ``migtrace:
    warning:`` line each, not as Python's two lines with a source excerpt."""

    def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        sys.stderr.write(f"migtrace: warning: {one_line(message)}\n")

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _tolerant_output() -> None:
    """File names that are not UTF-8 reach Python as lone surrogates; written to stdout or
    stderr they show as ``\\udcff`` instead of failing the command."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def run(entry: Callable[..., Any], args: Sequence[str] | None = None) -> None:
    """Runs the typer app on ``args`` (default: the command line), turning known errors into
    one line and an exit code."""
    _tolerant_output()
    try:
        extra: dict[str, Any] = {} if args is None else {"args": list(args)}
        with _warnings_as_lines():
            code = entry(standalone_mode=False, **extra)
        # Without standalone mode a command's typer.Exit(code) comes back as the return value;
        # typer turns a Ctrl-C inside a command into Exit(130). An interrupt Python lost on the
        # way (see tracetool.cli.launch) is still marked.
        if code == EXIT_INTERRUPTED or _interrupted():
            raise KeyboardInterrupt
        if isinstance(code, int) and code:
            raise SystemExit(code)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except (InputError, UsageError, TraceEventsError) as exc:
        fail(str(exc))
    except typer.Abort:
        fail("aborted")
    except typer.TyperException as exc:  # usage errors: bad option, missing argument
        show_usage = getattr(exc, "show", None)
        if callable(show_usage):
            show_usage()
            raise SystemExit(getattr(exc, "exit_code", EXIT_USAGE)) from None
        fail(str(exc))
    except KeyboardInterrupt:
        sys.stderr.write("migtrace: interrupted\n")
        raise SystemExit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(EXIT_OK) from None
    except MemoryError:
        fail("out of memory while reading the trace", EXIT_INTERNAL)
    except Exception as exc:  # a bug must still not print a traceback by default
        if _interrupted():
            # What fails after a Ctrl-C fails because of it: an import it cut short (pandas
            # half imported answers the next import with an ImportError), a reader it stopped.
            sys.stderr.write("migtrace: interrupted\n")
            raise SystemExit(EXIT_INTERRUPTED) from None
        if os.environ.get("MIGTRACE_DEBUG"):
            raise
        fail(f"internal error: {type(exc).__name__}: {exc} (set MIGTRACE_DEBUG=1 for details)", EXIT_INTERNAL)


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("migtrace")
        except PackageNotFoundError:  # run from a checkout that was never installed
            number = "unknown (not installed)"
        sys.stdout.write(f"migtrace {number}\n")
        raise typer.Exit()


VersionOpt = Annotated[
    bool,
    typer.Option(
        "--version", help="Print migtrace's version and exit.", callback=_show_version, is_eager=True
    ),
]


WideOpt = Annotated[
    bool,
    typer.Option(
        "--wide",
        help="Print every column of every table in full, whatever the width "
        "(tables otherwise fit the terminal, or 100 columns when piped).",
    ),
]


@app.callback()
def _root(version: VersionOpt = False, wide: WideOpt = False) -> None:
    """migtrace: trace-replay analysis of QEMU live migration."""
    from reports.console import set_wide

    set_wide(wide)
