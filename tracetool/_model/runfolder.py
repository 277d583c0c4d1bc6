"""Run folders: one migration's traces together with the files that describe them.

``migtrace capture`` lays each run out as ``DIR/<label>/run-K/`` (the recorded traces in
``sample_traces/`` look the same)::

    run-K/dst.trace  src.trace          or  run-K/per-thread/dst.<TID>.trace ...
    run-K/dst-threads.json  src-threads.json  query-migrate.json  qemu-version.txt  run.json ...

Some recordings keep the sidecars next to the per-thread files (``run-K/per-thread/``). A run
folder given as a path is read as its traces (the folder itself, or its ``per-thread/`` when
the folder holds no trace) with the sidecars it holds (looked up next to the traces first),
QEMU's ``query-migrate.json`` and a label for the build: its label in the capture
(``capture.json`` two levels up, or ``run.json``), else its QEMU version. A folder that holds
runs (``run-1``, ``run-2``, ...: a build's folder of a capture) stands for all of them.

``tracetool.load`` reads a run folder this way; ``tracetool.load_run`` also returns its
query-migrate answer and label:

    >>> run = load_run("runs/qemu-7.2.22/run-1")
    >>> run.trace, run.query_migrate, run.label
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parsers.inputs import strip_compression
from tracetool._model.jsonfile import json_text, read_json_file
from tracetool._model.querymigrate import QueryMigrate
from tracetool.errors import UsageError

if TYPE_CHECKING:  # the model imports pandas; resolving paths needs none of it
    from tracetool._model.trace import Trace

SIDECARS = ("dst-threads.json", "src-threads.json")
QUERY_MIGRATE = "query-migrate.json"
PER_THREAD = "per-thread"
VERSION_FILE = "qemu-version.txt"
RUN_INFO = "run.json"
CAPTURE_INFO = "capture.json"
_RUN_NAME = re.compile(r"run-(\d+)")
_METADATA = (".json", ".jsonl", ".md", ".py", ".toml", ".png", ".svg", ".html", ".xml", ".pdf")
# The side files of a capture that are not traces (the readers would skip them too).
_SIDE_FILES = re.compile(
    r"(cmdline|events|qemu-version|threads-perf)\.txt|.*\.stderr|.*-stderr\.txt|capture\.log|guest\.(bin|elf)"
)
_VERSION = re.compile(r"QEMU emulator version (\S+)")


def _holds_traces(folder: str) -> bool:
    """Whether ``folder`` has files that may be traces (not JSON, Markdown or capture side files)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    for e in entries:
        base = strip_compression(e.name)
        if (
            e.is_file()
            and not e.name.startswith(".")
            and not base.endswith(_METADATA)
            and not _SIDE_FILES.fullmatch(base)
        ):
            return True
    return False


def _read_json(path: str) -> Any:
    """The file's JSON, or None when it is absent or unusable (it only lends a label)."""
    try:
        return read_json_file(path, "JSON file")
    except UsageError:
        return None


@dataclass(frozen=True)
class RunFolder:
    """A run folder: where its traces are and the side files it holds (None when absent)."""

    path: str
    trace_dir: str
    threads: tuple[str, ...] = ()
    query_migrate: str | None = None
    version_file: str | None = None
    run_info: str | None = None

    @property
    def name(self) -> str:
        """A short name: the folder's last two path components (``qemu-7.2/run-1``)."""
        parts = Path(os.path.abspath(self.path)).parts
        return "/".join(parts[-2:])

    @cached_property
    def version(self) -> str | None:
        """``QEMU 7.2.22`` from ``qemu-version.txt`` (its first line when it says no version)."""
        if self.version_file is None:
            return None
        try:
            first = Path(self.version_file).read_text("utf-8", errors="replace").strip().splitlines()
        except OSError:
            return None
        if not first:
            return None
        m = _VERSION.search(first[0])
        return f"QEMU {m.group(1)}" if m else first[0].strip()[:60]

    @cached_property
    def label(self) -> str | None:
        """The build's label in the capture (``capture.json``, else ``run.json``), else the
        QEMU version, else None."""
        here = Path(os.path.abspath(self.path))
        for root in (here.parent.parent, here.parent.parent.parent):
            found = _capture_label(root, here)
            if found:
                return found
        if self.run_info is not None:
            info = _read_json(self.run_info)
            label = _label(info.get("label")) if isinstance(info, dict) else None
            if label:
                return label
        return self.version


def _label(value: Any) -> str | None:
    """A label from a JSON file: text on one line, or None for anything else."""
    if not isinstance(value, str) or not value.strip():
        return None
    return " ".join(str(json_text(value, "label")).split())[:80]


def _capture_label(root: Path, run: Path) -> str | None:
    """The label capture.json in ``root`` gives the build whose run ``run`` is."""
    data = _read_json(str(root / CAPTURE_INFO))
    if not isinstance(data, dict):
        return None
    results = data.get("results")
    for r in results if isinstance(results, list) else []:
        if (
            isinstance(r, dict)
            and isinstance(r.get("folder"), str)
            and "\0" not in r["folder"]
            and (root / r["folder"]) in (run, run.parent)
        ):
            return _label(r.get("label")) or _label(r["folder"].split("/")[0])
    return None


def run_folder(path: str) -> RunFolder | None:
    """The run folder at ``path``, or None when ``path`` is not a directory."""
    if not os.path.isdir(path):
        return None
    trace_dir = path
    nested = os.path.join(path, PER_THREAD)
    if not _holds_traces(path) and os.path.isdir(nested) and _holds_traces(nested):
        trace_dir = nested
    places = [trace_dir] if trace_dir == path else [trace_dir, path]

    def side_file(name: str) -> str | None:
        return next((os.path.join(d, name) for d in places if os.path.isfile(os.path.join(d, name))), None)

    threads = tuple(p for p in (side_file(n) for n in SIDECARS) if p is not None)
    return RunFolder(
        path, trace_dir, threads, side_file(QUERY_MIGRATE), side_file(VERSION_FILE), side_file(RUN_INFO)
    )


def runs_in(path: str) -> list[RunFolder]:
    """The runs a directory stands for: itself, or its ``run-K`` folders when it holds no
    trace of its own (a build's folder of a capture), in run order. Empty for a file."""
    here = run_folder(path)
    if here is None:
        return []
    if _holds_traces(here.trace_dir):
        return [here]
    numbered = []
    for e in os.scandir(path):
        m = _RUN_NAME.fullmatch(e.name)
        if m and e.is_dir():
            numbered.append((int(m.group(1)), e.path))
    runs = [run_folder(p) for _, p in sorted(numbered)]
    found = [r for r in runs if r is not None and _holds_traces(r.trace_dir)]
    return found or [here]


@dataclass(frozen=True)
class ResolvedInputs:
    """Paths as the readers take them, with what run folders among them brought along."""

    paths: list[str]
    folders: list[RunFolder] = field(default_factory=list)

    @property
    def threads(self) -> list[str]:
        """The sidecars the run folders hold."""
        return [t for f in self.folders for t in f.threads]

    @property
    def query_migrate(self) -> str | None:
        """The query-migrate file of the run folder, when exactly one folder has one."""
        found = [f.query_migrate for f in self.folders if f.query_migrate]
        return found[0] if len(found) == 1 else None


def resolve_paths(paths: Sequence[str]) -> ResolvedInputs:
    """Replaces each run folder by the folder of its traces and keeps what it holds.

    A folder of several runs is a UsageError here: one trace is one run (``migtrace compare``
    and :func:`tracetool.compare_runs` take several).
    """
    out: list[str] = []
    folders: list[RunFolder] = []
    for p in paths:
        runs = runs_in(p) if p != "-" else []
        if len(runs) > 1:
            names = ", ".join(os.path.basename(r.path) for r in runs[:4]) + (", ..." if len(runs) > 4 else "")
            raise UsageError(
                f"{p} holds {len(runs)} runs ({names}): give one run folder, or compare the runs "
                "with migtrace compare BEFORE... -- AFTER..."
            )
        if runs:
            folders.append(runs[0])
            out.append(runs[0].trace_dir)
        else:
            out.append(p)
    return ResolvedInputs(out, folders)


@dataclass
class Run:
    """One migration loaded: its trace, QEMU's query-migrate answer and where it came from."""

    trace: Trace
    query_migrate: QueryMigrate | None
    paths: tuple[str, ...]
    folder: RunFolder | None = None

    @property
    def label(self) -> str | None:
        """The build's label (see :attr:`RunFolder.label`), None without a run folder."""
        return self.folder.label if self.folder is not None else None

    @property
    def name(self) -> str:
        """The run folder's short name, or the paths."""
        return self.folder.name if self.folder is not None else ", ".join(self.paths)
