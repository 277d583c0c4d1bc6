"""``migtrace history add|show|regressions`` end to end: real run folders in, the documented JSON
out, regressions judged like scipy judges them, exit code 1 only for a regression."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import tracetool
from tests.conftest import run_cli
from tests.history_support import A72, C72, E72, generated_runs
from tracetool._history.store import History


@cache
def table(folder: Path) -> pd.DataFrame:
    return tracetool.run_metrics(str(folder))


def test_add_then_show_json_is_the_documented_document(tmp_path: Path) -> None:
    db = str(tmp_path / "h.sqlite")
    r = run_cli("history", "add", str(A72), str(C72), "--db", db, "--label", "machine=ci-1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == f"2 runs -> {db} (2 new, 0 already there)"
    again = run_cli("history", "add", str(A72), "--db", db, "--label", "branch=main", "--format", "json")
    doc = json.loads(again.stdout)
    assert [x["new"] for x in doc["runs"]] == [False] and doc["failed"] == []
    assert doc["runs"][0]["labels"]["branch"] == "main" and doc["runs"][0]["labels"]["machine"] == "ci-1"
    r = run_cli("history", "show", "--db", db, "--metric", "total_time.dst", "--format", "json")
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert list(shown) == ["metric", "unit", "points"]
    assert shown["metric"] == "total_time.dst" and shown["unit"] == "us"
    want = sorted(
        (
            int(t["start_ns"].iloc[0]),
            t["run"].iloc[0],
            float(t.set_index("id").loc["total_time.dst", "value"]),
        )
        for t in (table(A72), table(C72))
    )
    assert [(p["time_ns"], p["run"], p["value"]) for p in shown["points"]] == want
    for p in shown["points"]:
        assert list(p) == ["run", "time_ns", "labels", "value"]
        assert p["labels"]["machine"] == "ci-1"


def test_show_text_fits_100_columns_and_names_its_time_zero(tmp_path: Path) -> None:
    db = str(tmp_path / "h.sqlite")
    assert run_cli("history", "add", str(A72), str(E72), "--db", db).returncode == 0
    r = run_cli("history", "show", "--db", db, "-m", "phases.switchover.duration", "--by", "qemu")
    assert r.returncode == 0, r.stderr
    assert "UTC" in r.stdout
    assert all(len(line.rstrip()) <= 100 for line in r.stdout.splitlines()), r.stdout
    for t in (table(A72), table(E72)):
        assert t["run"].iloc[0] in r.stdout


def test_default_store_is_in_the_current_directory_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MIGTRACE_HISTORY", raising=False)
    r = run_cli("history", "add", str(A72), cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "migtrace-history.sqlite").exists()
    monkeypatch.setenv("MIGTRACE_HISTORY", str(tmp_path / "env.sqlite"))
    assert run_cli("history", "add", str(A72), cwd=str(tmp_path)).returncode == 0
    with History(str(tmp_path / "env.sqlite")) as h:
        assert len(h.runs()) == 1


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    db = str(tmp_path / "h.sqlite")
    assert run_cli("history", "add", str(A72), "--db", db).returncode == 0
    cases = [
        (["show", "-m", "bql.hold.nope"], "unknown metric bql.hold.nope"),
        (["show", "-m", "bql.hold.max"], "no run in"),  # A72 has no mutex events
        (["show", "-m", "total_time.dst", "-f", "png"], "--output FILE.png"),
        (["show", "-m", "total_time.dst", "--recent", "0"], "at least 1 run"),
        (["add", str(A72), "--label", "bad key=x"], "label key"),
        (["regressions", "--min-change", "-1"], "not negative"),
    ]
    for args, message in cases:
        r = run_cli("history", *args, "--db", db)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


def test_a_run_that_fails_is_reported_and_the_others_added(tmp_path: Path) -> None:
    db = str(tmp_path / "h.sqlite")
    r = run_cli("history", "add", str(A72), str(tmp_path / "missing-run"), "--db", db)
    assert r.returncode == 1
    assert "missing-run: not added: FileNotFoundError" in r.stderr
    with History(db) as h:
        assert len(h.runs()) == 1


# ---------------------------------------------------------------------------------- regressions
RNG_SEED = 20261204


def _series(shift: float, seed: int = 0) -> list[float]:
    """Ten baseline runs around 100 ms and three recent ones ``shift`` µs away, drawn from a
    seeded normal distribution (sd 5 ms)."""
    rng = np.random.default_rng(RNG_SEED + seed)
    return [float(v) for v in rng.normal(100_000, 5_000, 10)] + [
        float(v) for v in rng.normal(100_000 + shift, 5_000, 3)
    ]


def _regressions(db: str, *args: str) -> tuple[int, dict[str, object]]:
    r = run_cli("history", "regressions", "--db", db, "-m", "downtime.end_to_end", *args, "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


@pytest.mark.parametrize(
    ("shift", "verdict", "code"), [(40_000, "regression", 1), (-40_000, "improvement", 0)]
)
def test_a_change_beyond_the_noise_is_judged_as_scipy_judges_it(
    tmp_path: Path, shift: float, verdict: str, code: int
) -> None:
    values = _series(shift)
    db = str(tmp_path / "h.sqlite")
    with History(db) as h:
        h.add(generated_runs(values))
    got, doc = _regressions(db)
    assert got == code
    (check,) = doc["checks"]  # type: ignore[misc]
    base, recent = values[:10], values[10:]
    p = stats.mannwhitneyu(recent, base, alternative="two-sided").pvalue
    hl = float(np.median(np.subtract.outer(recent, base)))
    assert p < 0.05
    assert check["verdict"] == verdict
    assert check["change"]["shift"] == pytest.approx(hl)
    assert check["change"]["p_value"] == pytest.approx(p, rel=0.05)
    assert check["baseline"]["values"] == pytest.approx(base) and check["recent"]["values"] == pytest.approx(
        recent
    )
    assert doc["regressions"] == (1 if verdict == "regression" else 0)


def test_noise_alone_is_not_a_regression_and_too_few_runs_say_so(tmp_path: Path) -> None:
    db = str(tmp_path / "h.sqlite")
    with History(db) as h:
        h.add(generated_runs(_series(0.0, seed=1), seed=1))
    code, doc = _regressions(db)
    assert code == 0 and doc["checks"][0]["verdict"] == "unchanged"  # type: ignore[index]
    code, doc = _regressions(db, "--baseline", "3")
    assert code == 0 and doc["checks"][0]["verdict"] == "too few runs"  # type: ignore[index]
    text = run_cli("history", "regressions", "--db", db, "-m", "downtime.end_to_end", "--baseline", "3")
    assert "3 recent runs need >= 5 before them" in text.stdout
    assert all(len(line.rstrip()) <= 100 for line in text.stdout.splitlines())


def test_groups_are_judged_apart(tmp_path: Path) -> None:
    db = str(tmp_path / "h.sqlite")
    with History(db) as h:
        h.add(generated_runs(_series(40_000, seed=2), labels={"machine": "ci-1"}, seed=2))
        h.add(generated_runs(_series(0.0, seed=3), labels={"machine": "ci-2"}, seed=3))
    code, doc = _regressions(db, "--by", "machine")
    verdicts = {c["group"]: c["verdict"] for c in doc["checks"]}  # type: ignore[attr-defined]
    assert verdicts == {"ci-1": "regression", "ci-2": "unchanged"}
    assert code == 1
    code, doc = _regressions(db, "--where", "machine=ci-2")
    assert code == 0 and len(doc["checks"]) == 1  # type: ignore[arg-type]


def test_labels_the_history_lacks_are_said_not_shown_empty(tmp_path: Path) -> None:
    """--by and --where name labels the runs were added with; a typo is exit 2 with close
    matches, for show and regressions alike."""
    db = str(tmp_path / "h.sqlite")
    with History(db) as h:
        h.add(generated_runs(_series(0.0, seed=4), labels={"machine": "ci-1"}, seed=4))
    cases = [
        (("--by", "machin"), "--by 'machin': nothing of that in this history; did you mean 'machine'?"),
        (("--where", "machin=ci-1"), "--where 'machin': nothing of that in this history"),
        (("--where", "machine=ci-9"), "--where 'machine=ci-9': nothing of that in this history"),
    ]
    for command in (("show", "-m", "downtime.end_to_end"), ("regressions",)):
        for options, message in cases:
            r = run_cli("history", *command, "--db", db, *options)
            assert r.returncode == 2, (command, options, r.stdout)
            assert r.stderr.startswith(f"migtrace: {message}"), r.stderr
            assert len(r.stderr.splitlines()) == 1


def test_real_runs_default_metrics(tmp_path: Path) -> None:
    """The metrics of compare that the runs have, each judged; two runs are too few."""
    db = str(tmp_path / "h.sqlite")
    assert run_cli("history", "add", str(A72), str(E72), "--db", db).returncode == 0
    code, doc = _regressions_all(db)
    assert code == 0
    checks = doc["checks"]
    assert {c["metric"] for c in checks} >= {"downtime.end_to_end", "total_time.dst"}
    assert {c["verdict"] for c in checks} == {"too few runs"}


def _regressions_all(db: str) -> tuple[int, dict[str, object]]:
    r = run_cli("history", "regressions", "--db", db, "--format", "json", "--recent", "1", "--baseline", "1")
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


def test_the_cli_on_a_postgresql_history(postgres_url: str) -> None:
    r = run_cli("history", "add", str(A72), "--db", postgres_url, "--label", "machine=pg")
    assert r.returncode == 0, r.stderr
    assert "***" in r.stdout and "migtrace:migtrace@" not in r.stdout  # the password is not shown
    shown = json.loads(
        run_cli("history", "show", "--db", postgres_url, "-m", "downtime.end_to_end", "-f", "json").stdout
    )
    want = table(A72).set_index("id").loc["downtime.end_to_end", "value"]
    assert [(p["value"], p["labels"]["machine"]) for p in shown["points"]] == [(want, "pg")]
