"""Shared test helpers: where the real sample traces are, and plain ways to read them."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_traces"

# Text output fits COLUMNS when it is set; the widths the tests expect are their own (100 columns
# when piped), not those of the terminal (or test runner) that started them.
os.environ.pop("COLUMNS", None)


def sample(*parts: str) -> str:
    """Path of a shipped sample trace file."""
    p = SAMPLES.joinpath(*parts)
    assert p.exists(), f"missing sample {p}"
    return str(p)


def read_lines(path: str) -> Iterator[bytes]:
    """Lines of a (possibly compressed) file, without the newline, read the plain way."""
    opener = {".xz": lzma.open, ".gz": gzip.open, ".bz2": bz2.open}.get(Path(path).suffix, open)
    with opener(path, "rb") as f:  # type: ignore[operator]
        for line in f:
            yield line.rstrip(b"\n")


def title_line(lines: list[str], title: str) -> int:
    """Index of the first printed line starting with ``title`` (a table's title: its header is
    two lines below, its first row four)."""
    return next(i for i, x in enumerate(lines) if x.startswith(title))


def run_cli(
    *args: str, stdin: bytes | None = None, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs ``migtrace ARGS`` in this interpreter, with its own stdin, stdout, stderr and
    working directory, and the exit code the command line would give."""
    from click.testing import CliRunner

    from tracetool.cli.common import run
    from tracetool.cli.main import app

    code: int = 0
    here = os.getcwd()
    with CliRunner().isolation(input=stdin or b"", env={"MIGTRACE_DEBUG": None}) as (out, err, _):
        os.chdir(cwd or str(REPO))
        try:
            run(app, list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            os.chdir(here)
            sys.stdout.flush()
            sys.stderr.flush()
        stdout, stderr = out.getvalue(), err.getvalue()
    return subprocess.CompletedProcess(
        ["migtrace", *args], code, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace")
    )


def run_cli_process(
    *args: str, stdin: bytes | None = None, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs ``migtrace ARGS`` in a fresh interpreter, as a user would (for the few tests about
    start-up, signals and the process itself)."""
    env = dict(os.environ)
    env.pop("MIGTRACE_DEBUG", None)
    raw = subprocess.run(
        [sys.executable, "-m", "tracetool.cli", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        cwd=cwd or str(REPO),
        env=env,
        timeout=300,
    )
    return subprocess.CompletedProcess(
        raw.args, raw.returncode, raw.stdout.decode("utf-8", "replace"), raw.stderr.decode("utf-8", "replace")
    )


@pytest.fixture(params=["compiled", "python"])
def engine(request: pytest.FixtureRequest) -> str:
    """Both line scanners; the compiled one must be built in the test environment."""
    if request.param == "compiled":
        from parsers.log import scanner_engine

        assert scanner_engine() == "compiled", "the C scanner was not built (pip install -e .)"
    return str(request.param)


# The fixtures of the history tests (a PostgreSQL server, a fresh history per test); imported
# last, as that module uses the helpers above.
from tests.history_support import postgres_server, postgres_url, store_url  # noqa: E402, F401
