"""A run's metrics as one tidy table: the ids ``migtrace check`` takes, with the values it
observes; the run id from the files' bytes; counts and start time against a plain walk."""

from __future__ import annotations

import json
import lzma
import math
import shutil
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

import tracetool
from tests.conftest import run_cli
from tests.history_support import A72, C72, D72, E72, plain_log_walk, plain_run_id, trace_files
from tracetool._check.runid import content_id
from tracetool._check.runmetrics import COLUMNS, MAX_DEVICES, canonical_id


@cache
def metrics(folder: Path) -> pd.DataFrame:
    return tracetool.run_metrics(str(folder))


def test_columns_dtypes_and_one_row_per_id() -> None:
    df = metrics(A72)
    assert tuple(df.columns) == COLUMNS
    assert df["value"].dtype == "float64"
    assert str(df["start_ns"].dtype) == "Int64"
    assert df["id"].is_unique
    assert not df["value"].isna().any()
    assert set(df["unit"]) <= {"us", "count", "number", "flag"}
    assert (
        df["id"] == [m if not s else f"{m}{{{s}}}" for m, s in zip(df["metric"], df["selector"], strict=True)]
    ).all()


def test_every_id_is_what_migtrace_check_observes() -> None:
    """Each id goes through ``migtrace check`` as a rule; its observed value is the table's."""
    df = metrics(E72)
    tests = {"us": " >= -1us", "flag": " == true"}
    rules = [
        arg
        for i, u in zip(df["id"], df["unit"], strict=True)
        for arg in ("--rule", i + tests.get(u, " >= -1"))
    ]
    r = run_cli("check", str(E72), *rules, "--format", "json")
    assert r.returncode in (0, 1), r.stderr[-2000:]  # 1: a flag that is false
    found = json.loads(r.stdout)["rules"]
    assert len(found) == len(df)
    for rule, metric_id, value in zip(found, df["id"], df["value"], strict=True):
        assert canonical_id(rule["expr"].rsplit(" ", 2)[0]) == metric_id
        assert rule["observed"] is not None, rule
        assert float(rule["observed"]) == pytest.approx(value), metric_id


def test_event_counts_and_start_against_a_plain_walk_of_the_lines() -> None:
    df = metrics(A72)
    counts, first_ns = plain_log_walk(trace_files(A72))
    got = {
        m.split(".", 1)[1].rsplit(".", 1)[0]: v
        for m, v in zip(df["metric"], df["value"], strict=True)
        if m.startswith("events.") and m != "events.count"
    }
    assert got == {k: float(v) for k, v in counts.items()}
    total = df.loc[(df["metric"] == "events.count") & (df["selector"] == ""), "value"]
    assert total.tolist() == [float(sum(counts.values()))]
    assert int(df["start_ns"].iloc[0]) == first_ns
    assert set(df["clock"]) == {"wall"}


def test_run_id_is_the_hash_of_the_trace_files_bytes(tmp_path: Path) -> None:
    df = metrics(A72)
    assert set(df["run"]) == {plain_run_id(trace_files(A72))}
    copy = tmp_path / "elsewhere"
    shutil.copytree(A72, copy)
    assert tracetool.run_metrics(str(copy))["run"].iloc[0] == df["run"].iloc[0]
    # The same events stored another way (decompressed) are other bytes, so another run id.
    plain = tmp_path / "plain"
    plain.mkdir()
    for f in trace_files(A72):
        (plain / f.name.removesuffix(".xz")).write_bytes(lzma.decompress(f.read_bytes()))
    other = tracetool.run_metrics(str(plain))
    assert other["run"].iloc[0] == plain_run_id(trace_files(plain)) != df["run"].iloc[0]
    assert other.set_index("id")["value"].to_dict() == df.set_index("id")["value"].to_dict()


def test_selectors_are_the_values_the_trace_has_and_bounded() -> None:
    df = metrics(E72)
    trace = tracetool.load_run(str(E72)).trace
    sel = df["selector"]
    keys = {s.split("=", 1)[0] for s in sel if s}
    assert keys <= {"role", "load", "phase", "device", "process"}
    roles = {s.split("=", 1)[1] for s in sel if s.startswith("role=")}
    assert roles == set(trace.threads["role"].dropna().astype(str))
    devices = {s for s in df.loc[df["metric"] == "devices.duration", "selector"] if s.startswith("device=")}
    assert 0 < len(devices) <= MAX_DEVICES
    processes = {s.split("=", 1)[1] for s in sel if s.startswith("process=")}
    assert processes == {"dst", "src"}


def test_process_column() -> None:
    df = metrics(E72).set_index("id")
    assert df.loc["downtime.src", "process"] == "src"
    assert df.loc["total_time.dst", "process"] == "dst"
    assert pd.isna(df.loc["downtime.end_to_end", "process"])
    assert df.loc["bql.hold.max", "process"] == "dst"  # the BQL analysis describes the destination
    assert df.loc["events.count{process=src}", "process"] == "src"
    assert pd.isna(df.loc["events.count", "process"])


def test_a_trace_without_the_mutex_events_has_no_bql_rows() -> None:
    df = metrics(C72)
    assert not df["metric"].str.startswith("bql.").any()
    assert "phases.postcopy.duration" in set(df["id"])


def test_labels_from_the_folder_the_trace_and_the_caller() -> None:
    df = tracetool.run_metrics(str(A72), labels={"machine": "ci-2", "build": "mine"})
    labels = json.loads(df["labels"].iloc[0])
    version = (A72 / "qemu-version.txt").read_text().split("QEMU emulator version ")[1].split()[0]
    assert labels["qemu"] == f"QEMU {version}"
    assert labels["outcome"] == "completed"
    assert labels["machine"] == "ci-2"
    assert labels["build"] == "mine"  # the caller's labels win
    assert list(labels) == sorted(labels)
    assert df.attrs["run"]["labels"] == labels


def test_a_loaded_trace_gives_the_same_table() -> None:
    run = tracetool.load_run(str(A72))
    from_trace = tracetool.run_metrics(run.trace, query_migrate=run.query_migrate)
    from_folder = metrics(A72)
    assert from_trace["run"].iloc[0] == from_folder["run"].iloc[0]
    a = from_trace.set_index("id")["value"]
    b = from_folder.set_index("id")["value"]
    assert a.to_dict() == b.to_dict()


def test_flags_are_zero_or_one() -> None:
    df = metrics(A72)
    flags = df.loc[df["unit"] == "flag", "value"]
    assert flags.tolist() == [0.0]  # precopy: no postcopy preempt channel
    assert all(math.isfinite(v) for v in df["value"])
    preempt = metrics(D72).set_index("id")
    assert preempt.loc["preempt.enabled", "value"] == 1.0
    r = run_cli("check", str(D72), "--rule", "preempt.enabled == true")
    assert r.returncode == 0, r.stdout


def test_the_id_does_not_depend_on_the_order_or_names_of_the_files(tmp_path: Path) -> None:
    files = trace_files(A72)
    assert len(files) == 2
    want = plain_run_id(files)
    assert content_id([str(f) for f in files]) == want
    assert content_id([str(f) for f in reversed(files)]) == want
    renamed = [tmp_path / "one", tmp_path / "two"]
    for src, dst in zip(reversed(files), renamed, strict=True):
        shutil.copy(src, dst)
    assert content_id([str(f) for f in renamed]) == want
