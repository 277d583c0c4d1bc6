"""Run folders as inputs: a folder brings its sidecars and query-migrate.json along, and a side
file that belongs to another trace (another run, the other side) is refused unless --force."""

from __future__ import annotations

import json
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import tracetool
from tests.conftest import run_cli, sample
from tracetool.errors import ForeignInput, ForeignInputWarning

E72 = Path(sample("qemu-7.2", "e-precopy-mutex"))
A72 = Path(sample("qemu-7.2", "a-precopy-plain"))
C72 = Path(sample("qemu-7.2", "c-postcopy"))  # a destination trace only, both sidecars
TFY = Path(sample("qemu-threadify", "e-precopy-mutex"))
TFY_PER_THREAD = TFY / "per-thread"  # another run than the files next to it
REPEATS = Path("/work/shared/traces/repeats")


def plain_json(path: Path) -> Any:
    return json.loads(path.read_text())


@cache
def summary_json(*args: str) -> dict[str, Any]:
    r = run_cli("summary", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr
    return dict(json.loads(r.stdout))


def names_by_tid(doc: dict[str, Any], process: str) -> dict[int, str]:
    return {t["tid"]: t["name"] for t in doc["threads"] if t["process"] == process and t["tid"] is not None}


def sidecar_names(path: Path) -> dict[int, str]:
    data = plain_json(path)
    table = data.get("tid_to_name_merged") or data["tid_to_name"]
    return {int(k): v for k, v in table.items()}


def capture_layout(root: Path) -> Path:
    """A run laid out as ``migtrace capture --per-thread`` writes it, from a real per-thread
    recording: traces in run-1/per-thread/, every side file in run-1/."""
    run = root / "threadify" / "run-1"
    (run / "per-thread").mkdir(parents=True)
    for f in TFY_PER_THREAD.iterdir():
        target = run / "per-thread" if ".trace" in f.name else run
        shutil.copy(f, target / f.name)
    return run


# ---------------------------------------------------------------------------------- picking up
@pytest.mark.parametrize("process", ["dst", "src"])
def test_a_run_folder_names_threads_from_its_own_sidecars(process: str) -> None:
    folder = summary_json(str(E72))
    explicit = summary_json(
        str(E72), "--threads", str(E72 / "dst-threads.json"), "--threads", str(E72 / "src-threads.json")
    )
    assert folder["threads"] == explicit["threads"]
    named = sidecar_names(E72 / f"{process}-threads.json")
    got = names_by_tid(folder, process)
    assert got, process
    for tid, name in got.items():
        assert name == named[tid], tid  # every thread the trace has is in its own sidecar
    pid = plain_json(E72 / f"{process}-threads.json")["pid"]
    assert {p["label"]: p["pid"] for p in folder["processes"]}[process] == pid


def test_explicit_threads_win_over_the_folder(tmp_path: Path) -> None:
    only_dst = summary_json(str(E72), "--threads", str(E72 / "dst-threads.json"))
    src = [t for t in only_dst["threads"] if t["process"] == "src"]
    assert src and all(t["name_source"] != "sidecar" for t in src)
    dst = [t for t in only_dst["threads"] if t["process"] == "dst"]
    assert any(t["name_source"] == "sidecar" for t in dst)


def test_capture_layout_finds_traces_in_per_thread(tmp_path: Path) -> None:
    run = capture_layout(tmp_path)
    doc = summary_json(str(run))
    traces = sorted(f.name for f in (run / "per-thread").iterdir())
    assert sorted(Path(i["path"]).name for i in doc["inputs"]) == traces
    named = sidecar_names(run / "dst-threads.json")
    got = names_by_tid(doc, "dst")
    assert got == {tid: named[tid] for tid in got}
    assert "mig/dst/main" in got.values()


def test_shared_threadify_run_keeps_everything_in_per_thread() -> None:
    run = REPEATS / "threadify" / "run-1"
    if not run.is_dir():
        pytest.skip(f"{run} is not on this machine (the shared repeated runs)")
    doc = summary_json(str(run))
    named = sidecar_names(run / "per-thread" / "dst-threads.json")
    got = names_by_tid(doc, "dst")
    assert got and got == {tid: named[tid] for tid in got}


def test_phases_uses_the_folders_query_migrate_and_an_explicit_one_wins() -> None:
    def qemu_figures(*args: str) -> tuple[Any, Any]:
        r = run_cli("phases", *args, "--format", "json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        return doc["downtime"]["qemu_reported_ms"], doc["total_time"]["qemu_reported_ms"]

    own = plain_json(E72 / "query-migrate.json")["source"]
    other = plain_json(A72 / "query-migrate.json")["source"]
    assert (own["downtime"], own["total-time"]) != (other["downtime"], other["total-time"])
    assert qemu_figures(str(E72)) == (own["downtime"], own["total-time"])
    given = qemu_figures(str(E72), "--query-migrate", str(A72 / "query-migrate.json"))
    assert given == (other["downtime"], other["total-time"])


def test_the_sidecar_of_an_untraced_side_is_left_out_quietly() -> None:
    doc = summary_json(str(C72))  # summary_json asserts an empty stderr
    assert [p["label"] for p in doc["processes"]] == ["dst"]
    named = sidecar_names(C72 / "dst-threads.json")
    assert names_by_tid(doc, "dst") == {t: named[t] for t in names_by_tid(doc, "dst")}


def test_a_folder_of_runs_is_not_one_trace(tmp_path: Path) -> None:
    build = tmp_path / "qemu-7.2"
    for k in (1, 2):
        (build / f"run-{k}").mkdir(parents=True)
        shutil.copy(E72 / "dst.trace.xz", build / f"run-{k}" / "dst.trace.xz")
    r = run_cli("summary", str(build))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1
    assert "holds 2 runs (run-1, run-2)" in r.stderr


def test_load_run_brings_the_query_migrate_and_a_label(tmp_path: Path) -> None:
    run = tracetool.load_run(str(E72))
    assert run.query_migrate is not None
    assert run.query_migrate.total_time_ms == plain_json(E72 / "query-migrate.json")["source"]["total-time"]
    first = (E72 / "qemu-version.txt").read_text().splitlines()[0]
    assert run.label is not None and run.label.split()[-1] in first  # "QEMU 7.2.22"
    captured = capture_layout(tmp_path)
    (tmp_path / "capture.json").write_text(
        json.dumps({"results": [{"label": "threadify", "run": 1, "folder": "threadify/run-1"}]})
    )
    assert tracetool.load_run(str(captured)).label == "threadify"


# ---------------------------------------------------------------------------------- refusing
REFUSED = {
    "sidecar of another run": (str(E72 / "dst.trace.xz"), "--threads", str(A72 / "dst-threads.json")),
    "sidecar of the other side": (str(E72 / "dst.trace.xz"), "--threads", str(E72 / "src-threads.json")),
    "sidecar of another run, pid known": (
        str(TFY / "dst.simple.xz"),
        "--threads",
        sample("qemu-threadify", "d-postcopy-preempt", "dst-threads.json"),
    ),
    "log of another run as --borrow-from": (
        str(TFY / "dst.simple.xz"),
        "--borrow-from",
        str(TFY_PER_THREAD / "dst.*.trace.xz"),
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_side_file_of_another_trace_is_refused(case: str) -> None:
    args = REFUSED[case]
    r = run_cli("summary", *args)
    assert r.returncode == 2, r.stdout
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("migtrace: ")
    assert args[-1] in r.stderr and "does not belong to this trace" in r.stderr
    assert "--force" in r.stderr

    forced = run_cli("summary", *args, "--force", "--format", "json")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["inputs"]
    (warning,) = forced.stderr.splitlines()
    assert warning.startswith("migtrace: warning: ") and args[-1] in warning


def test_a_folder_whose_sidecar_belongs_elsewhere_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run-1"
    run.mkdir()
    shutil.copy(E72 / "dst.trace.xz", run / "dst.trace.xz")
    shutil.copy(A72 / "dst-threads.json", run / "dst-threads.json")  # copied from the wrong run
    r = run_cli("summary", str(run))
    assert r.returncode == 2
    assert "dst-threads.json does not belong to this trace" in r.stderr


def test_the_right_files_are_accepted_without_a_word() -> None:
    """The twin of the same run and the sidecars of the same run pass the checks."""
    for args in (
        (str(TFY / "dst.simple.xz"), "--borrow-from", str(TFY / "dst.trace.xz")),
        (str(TFY / "dst.simple.xz"), "--threads", str(TFY / "dst-threads.json")),
        (str(TFY / "dst.trace.xz"), "--threads", str(TFY / "dst-threads.json")),
    ):
        r = run_cli("summary", *args)
        assert r.returncode == 0 and r.stderr == "", (args, r.stderr)


def test_python_api_refuses_and_warns_with_force() -> None:
    with pytest.raises(ForeignInput, match="does not belong"):
        tracetool.load(str(E72 / "dst.trace.xz"), threads=[str(E72 / "src-threads.json")])
    with pytest.warns(ForeignInputWarning, match="used anyway"):
        trace = tracetool.load(str(E72 / "dst.trace.xz"), threads=[str(E72 / "src-threads.json")], force=True)
    assert len(trace.events) > 0


def test_tracetool_load_reads_a_run_folder_like_the_commands(tmp_path: Path) -> None:
    run = capture_layout(tmp_path)
    trace = tracetool.load(str(run))  # the traces are in run/per-thread/, the sidecars in run/
    named = sidecar_names(run / "dst-threads.json")
    th = trace.threads[trace.threads["process"] == "dst"]
    got = {int(t): str(n) for t, n in zip(th["tid"], th["name"], strict=True)}
    assert got == {t: named[t] for t in got}
    assert "mig/dst/main" in got.values()
