"""``migtrace batch``: many run folders measured in parallel on local processes or a real Dask
LocalCluster; a failed run is a row with its error; the table written atomically."""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

import tracetool
from tests.conftest import run_cli
from tests.history_support import A72, C72, E72
from tracetool._batch.tablefile import read_table


@cache
def expected(folder: Path) -> pd.DataFrame:
    """The run's table as run_metrics gives it in this process."""
    return tracetool.run_metrics(str(folder))


def values(table: pd.DataFrame, source: str) -> dict[str, float]:
    part = table[table["source"] == source]
    return dict(zip(part["id"], part["value"], strict=True))


def broken_run(tmp_path: Path) -> Path:
    """A run folder whose trace is not a trace."""
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "dst.trace").write_text("this is not a QEMU trace\n" * 3)
    return folder


def check_batch_table(table: pd.DataFrame, runs: list[Path], failed: list[str]) -> None:
    for folder in runs:
        want = expected(folder)
        assert values(table, str(folder)) == dict(zip(want["id"], want["value"], strict=True))
        assert set(table.loc[table["source"] == str(folder), "run"]) == {want["run"].iloc[0]}
    errors = table[table["error"].notna()]
    assert sorted(errors["source"]) == sorted(failed)
    assert errors["id"].isna().all() and errors["value"].isna().all()
    assert table.loc[table["error"].isna(), "id"].notna().all()


def test_processes_keep_every_run_and_the_failures_as_rows(tmp_path: Path) -> None:
    broken = broken_run(tmp_path)
    missing = tmp_path / "no-such-run"
    result = tracetool.measure_runs([str(A72), str(broken), str(missing), str(C72)], workers=2)
    check_batch_table(result.table, [A72, C72], [str(broken), str(missing)])
    assert result.measured == 2
    assert [r.source for r in result.results] == [str(A72), str(broken), str(missing), str(C72)]
    assert "no such file" in (result.failed[1].error or "")


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_cli_writes_the_table_and_exits_1_when_a_run_failed(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"runs{suffix}"
    broken = broken_run(tmp_path)
    r = run_cli(
        "batch", str(A72), str(broken), "--out", str(out), "--workers", "2", "--label", "machine=ci-9"
    )
    assert r.returncode == 1, r.stderr
    assert "2 runs on processes with 2 workers" in r.stdout
    assert f"failed: {broken}" in r.stdout
    table = read_table(str(out))
    check_batch_table(table, [A72], [str(broken)])
    labels = json.loads(table.loc[table["error"].isna(), "labels"].iloc[0])
    assert labels["machine"] == "ci-9"
    assert len(r.stdout.splitlines()[0]) <= 100
    assert r.stdout.splitlines()[1] == f"{len(table)} rows -> {out}"


def test_bad_options_are_one_line_and_leave_the_output_alone(tmp_path: Path) -> None:
    out = tmp_path / "runs.parquet"
    out.write_bytes(b"old")
    for args, message in (
        (["--scheduler", "threads"], "scheduler 'threads'"),
        (["--workers", "0"], "at least 1"),
        (["--label", "no-equals"], "key=value"),
        (["--scheduler", "local", "--memory-limit", "lots"], "--memory-limit 'lots'"),
    ):
        r = run_cli("batch", str(A72), "--out", str(out), *args)
        assert r.returncode == 2, (args, r.stderr)
        assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("batch", str(A72), "--out", str(tmp_path / "runs.txt"))
    assert r.returncode == 2 and ".parquet or .csv" in r.stderr
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.parquet"]


def test_dask_missing_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    r = run_cli("batch", str(A72), "--out", str(tmp_path / "x.csv"), "--scheduler", "local")
    assert r.returncode == 2
    assert (
        r.stderr.strip()
        == "migtrace: the Dask schedulers need the scale extra: pip install 'migtrace[scale]'"
    )


@pytest.mark.slow
def test_a_real_dask_local_cluster_gives_the_same_table(tmp_path: Path) -> None:
    broken = broken_run(tmp_path)
    runs = [str(A72), str(broken), str(E72)]
    result = tracetool.measure_runs(runs, scheduler="local", workers=2, memory_limit="3GiB")
    assert result.scheduler == "local" and result.workers == 2
    check_batch_table(result.table, [A72, E72], [str(broken)])


@pytest.mark.slow
def test_an_existing_dask_cluster_by_its_address() -> None:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, memory_limit="3GiB"
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        result = tracetool.measure_runs([str(A72), str(C72)], scheduler=address)
    check_batch_table(result.table, [A72, C72], [])


@pytest.mark.slow
def test_an_unreachable_scheduler_is_one_line(tmp_path: Path) -> None:
    r = run_cli("batch", str(A72), "--out", str(tmp_path / "x.csv"), "--scheduler", "tcp://127.0.0.1:9")
    assert r.returncode == 2
    assert r.stderr.startswith("migtrace: cannot reach the Dask scheduler at tcp://127.0.0.1:9")
    assert len(r.stderr.strip().splitlines()) == 1
