"""What the ``migtrace`` process imports and how it ends: only the command it runs, none of the
libraries other commands need, and every byte of its output written at exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, run_cli, sample

LAUNCHER = REPO / "scripts" / "migtrace"
SAMPLE = sample("qemu-7.2", "a-precopy-plain", "dst.trace.xz")

# Runs the launcher as `migtrace ARGS` would, then writes the names of the modules it imported
# and whether numpy asked for huge pages to the file named by the first argument.
_PROBE = """
import json, runpy, sys
out = sys.argv[1]
sys.argv = ["migtrace", *sys.argv[2:]]
try:
    runpy.run_path({launcher!r}, run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
hugepages = None
if "numpy" in sys.modules:
    hugepages = sys.modules["numpy"]._core.multiarray._get_madvise_hugepage()
with open(out, "w") as f:
    json.dump({{"code": code, "modules": sorted(sys.modules), "hugepages": hugepages}}, f)
"""


def _env(**extra: str) -> dict[str, str]:
    inherited = ("MIGTRACE_DEBUG", "PYTHONPATH", "NUMPY_MADVISE_HUGEPAGE")
    env = {k: v for k, v in os.environ.items() if k not in inherited}
    env.update(extra)
    return env


def _probe(tmp_path: Path, *args: str, **env: str) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    out = tmp_path / "probe.json"
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE.format(launcher=str(LAUNCHER)), str(out), *args],
        capture_output=True,
        text=True,
        env=_env(**env),
        cwd=str(REPO),
        timeout=120,
    )
    return json.loads(out.read_text()), proc


def _command_files() -> set[str]:
    """The command modules as files on disk (read independently of tracetool.cli.commands)."""
    here = REPO / "tracetool" / "cli"
    return {p.stem for p in here.glob("*.py")} - {
        "__init__",
        "__main__",
        "commands",
        "common",
        "launch",
        "main",
    }


@pytest.mark.slow
def test_summary_imports_neither_other_commands_nor_their_libraries(tmp_path: Path) -> None:
    got, proc = _probe(tmp_path, "summary", SAMPLE)
    assert got["code"] == 0, proc.stderr
    assert "Threads" in proc.stdout and "Events (" in proc.stdout
    modules = set(got["modules"])
    assert "pandas" in modules and "tracetool.cli.summary" in modules  # the probe saw the run
    heavy_ones = (
        "matplotlib",
        "scipy",
        "sqlalchemy",
        "pydantic",
        "dask",
        "rich.progress",
        "tracetool._timeline.builder",
    )
    for heavy in heavy_ones:
        assert not any(m == heavy or m.startswith(heavy + ".") for m in modules), heavy
    others = {f"tracetool.cli.{name}" for name in _command_files() - {"summary"}}
    assert not others & modules


@pytest.mark.slow
@pytest.mark.parametrize(("given", "expected"), [(None, False), ("1", True)])
def test_numpy_uses_small_pages_unless_told_otherwise(
    tmp_path: Path, given: str | None, expected: bool
) -> None:
    got, proc = _probe(
        tmp_path, "summary", SAMPLE, **({} if given is None else {"NUMPY_MADVISE_HUGEPAGE": given})
    )
    assert got["code"] == 0, proc.stderr
    assert got["hugepages"] is expected


def test_help_lists_every_command(tmp_path: Path) -> None:
    got, proc = _probe(tmp_path, "--help")
    assert got["code"] == 0, proc.stderr
    listed = {line.split()[0] for line in proc.stdout.splitlines() if line.startswith("  ") and line.split()}
    assert _command_files() <= listed


def test_a_mistyped_command_is_named_with_the_right_one(tmp_path: Path) -> None:
    got, proc = _probe(tmp_path, "sumary", SAMPLE)
    assert got["code"] == 2
    assert "No such command 'sumary'" in proc.stderr and "'summary'" in proc.stderr


def test_each_command_is_defined_by_the_module_named_after_it() -> None:
    from tracetool.cli.commands import command_modules
    from tracetool.cli.main import app

    assert set(command_modules()) == _command_files()
    defined = {(c.name or c.callback.__name__): {c.callback.__module__} for c in app.registered_commands}  # type: ignore[union-attr]
    for group in app.registered_groups:
        defined[group.name] = {c.callback.__module__ for c in group.typer_instance.registered_commands}  # type: ignore[union-attr]
    assert defined == {name: {f"tracetool.cli.{name}"} for name in _command_files()}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["summary", "x.trace"], "summary"),
        (["--wide", "report", "x.trace", "-o", "r.html"], "report"),
        (["history", "show", "--metric", "m"], "history"),
        (["--help"], None),
        ([], None),
        (["sumary", "x.trace"], None),
        (["common"], None),
    ],
)
def test_the_command_on_the_command_line(args: list[str], expected: str | None) -> None:
    from tracetool.cli.commands import command_modules, named_command

    assert named_command(args, command_modules()) == expected


@pytest.mark.slow
def test_the_process_writes_all_its_output_before_it_ends(tmp_path: Path) -> None:
    """The process leaves the garbage collector's last pass out of its exit: what it printed
    and the files it wrote are complete all the same (compared with the run in this process)."""
    out = tmp_path / "trace.json"
    proc = subprocess.run(
        [sys.executable, str(LAUNCHER), "summary", SAMPLE, "--format", "json"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads(run_cli("summary", SAMPLE, "--format", "json").stdout)
    written = subprocess.run(
        [sys.executable, str(LAUNCHER), "export", SAMPLE, "--to", "perfetto", "-o", str(out)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert written.returncode == 0, written.stderr
    here = tmp_path / "here.json"
    assert run_cli("export", SAMPLE, "--to", "perfetto", "-o", str(here)).returncode == 0
    assert json.loads(out.read_text()) == json.loads(here.read_text())
