"""``migtrace compare`` with several runs per side.

On the shared repeated runs (three real migrations with QEMU 7.2 and three with the threaded
load) the per-run values are read plainly from QEMU's query-migrate.json and the trace lines,
and the statistics recomputed here with scipy. On the shipped samples, laid out as capture run
folders, the load thread's BQL total of each run is checked against a plain walk of its mutex
lines, and the outputs (text, Markdown, HTML, JSON) and usage errors against what they promise.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import re
import shutil
import statistics
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from scipy import stats as sp

import tracetool
from tests.conftest import run_cli, sample
from tests.test_load_selector import plain_holds, plain_load_tid

pytestmark = pytest.mark.slow  # each comparison loads several real runs

REPEATS = Path("/work/shared/traces/repeats")
BUILDS = ("qemu-7.2", "threadify")
LINE_EVENT = re.compile(r"^(?:\d+@\d+\.\d+:|\S+Z )(\w+)")
TOO_FEW = "too few runs for a significant difference at 5 %: need at least 4 per side"
NO_NOISE = "one run per side: no noise estimate"


def need_repeats() -> None:
    if not (REPEATS / "qemu-7.2" / "run-1").is_dir():
        pytest.skip(f"the shared repeated runs are not on this machine ({REPEATS})")


def read_text(path: Path) -> str:
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return f.read()
    return path.read_text(encoding="utf-8")


def plain_event_count(run: Path, event: str) -> int:
    """Lines of ``event`` in every trace file of a run folder (both processes)."""
    files = [p for p in run.rglob("*.trace*") if p.is_file()]
    assert files, run
    return sum(
        1
        for f in files
        for line in read_text(f).splitlines()
        if (m := LINE_EVENT.match(line)) and m[1] == event
    )


def plain_ram_pages(run: Path) -> int:
    """QEMU's own count of the pages it sent: normal plus zero pages (``duplicate``)."""
    (qm,) = list(run.rglob("query-migrate.json"))
    ram = json.loads(qm.read_text())["source"]["ram"]
    return int(ram["normal"]) + int(ram["duplicate"])


def scipy_change(before: list[float], after: list[float]) -> dict[str, Any]:
    """Shift and p-value as the README describes them, computed here."""
    exact = sp.PermutationMethod(n_resamples=10_000)  # every relabelling for these sizes
    p = float(sp.mannwhitneyu(after, before, alternative="two-sided", method=exact).pvalue)
    return {"shift": statistics.median(a - b for a in after for b in before), "p_value": p}


@cache
def repeats_doc() -> dict[str, Any]:
    need_repeats()
    r = run_cli(
        "compare",
        str(REPEATS / "qemu-7.2"),
        "--",
        str(REPEATS / "threadify"),
        "--metric",
        "ram.pages",
        "--metric",
        "events.ram_load_loop.count",
        "--metric",
        "downtime.end_to_end",
        "--format",
        "json",
    )
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout))


def test_repeated_runs_statistics_against_plain_readings() -> None:
    doc = repeats_doc()
    for side, build in zip(("before", "after"), BUILDS, strict=True):
        version = (REPEATS / build / "run-1").rglob("qemu-version.txt").__next__().read_text()
        assert doc[side]["label"].split()[-1] in version.splitlines()[0]
        assert [r["name"] for r in doc[side]["runs"]] == [f"{build}/run-{k}" for k in (1, 2, 3)]
    plain = {
        "ram.pages": plain_ram_pages,
        "events.ram_load_loop.count": lambda run: plain_event_count(run, "ram_load_loop"),
    }
    metrics = {m["metric"]: m for m in doc["metrics"]}
    for metric, read in plain.items():
        m = metrics[metric]
        values = {}
        for side, build in zip(("before", "after"), BUILDS, strict=True):
            values[side] = [float(read(REPEATS / build / f"run-{k}")) for k in (1, 2, 3)]
            got = m[side]
            assert got["values"] == values[side], metric
            assert got["n"] == 3
            assert got["median"] == statistics.median(values[side])
            q1, _, q3 = statistics.quantiles(values[side], n=4, method="inclusive")
            assert (got["q1"], got["q3"]) == (pytest.approx(q1), pytest.approx(q3))
        want = scipy_change(values["before"], values["after"])
        ch = m["change"]
        assert ch["shift"] == pytest.approx(want["shift"])
        assert ch["p_value"] == pytest.approx(want["p_value"])
        assert ch["relative"] == pytest.approx(want["shift"] / statistics.median(values["before"]))
        # 3 against 3: the exact test cannot reach 5 %, the interval is unbounded, and it says so
        assert ch["p_value"] >= 2 / math.comb(6, 3) - 1e-12
        assert (ch["ci_low"], ch["ci_high"], ch["significant"]) == (None, None, False)
        assert ch["note"].startswith(TOO_FEW)


def test_repeated_runs_text_says_too_few_runs() -> None:
    need_repeats()
    r = run_cli(
        "compare", str(REPEATS / "qemu-7.2"), "--", str(REPEATS / "threadify"), "--metric", "ram.pages"
    )
    assert r.returncode == 0, r.stderr
    assert TOO_FEW in r.stdout
    assert "no significant change" not in r.stdout  # 3 vs 3 cannot tell: not "no change"
    assert (
        f"{statistics.median(plain_ram_pages(REPEATS / 'qemu-7.2' / f'run-{k}') for k in (1, 2, 3)):,.0f}"
        in r.stdout
    )


# ---------------------------------------------------------------------------------- samples
def copy_run(src: Path, dst: Path) -> Path:
    """A sample as a run folder of its own (traces and sidecars of one run only)."""
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file():
            shutil.copy(f, dst / f.name)
    return dst


@pytest.fixture(scope="module")
def sample_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two builds with two runs each, as migtrace capture lays them out: the mutex runs (the
    BQL is traced) and a run without mutex events on each side."""
    root = tmp_path_factory.mktemp("runs")
    copy_run(Path(sample("qemu-7.2", "e-precopy-mutex")), root / "qemu-7.2" / "run-1")
    copy_run(Path(sample("qemu-7.2", "a-precopy-plain")), root / "qemu-7.2" / "run-2")
    copy_run(Path(sample("qemu-threadify", "e-precopy-mutex", "per-thread")), root / "threadify" / "run-1")
    copy_run(Path(sample("qemu-threadify", "d-postcopy-preempt", "per-thread")), root / "threadify" / "run-2")
    (root / "capture.json").write_text(
        json.dumps(
            {"results": [{"label": b, "run": k, "folder": f"{b}/run-{k}"} for b in BUILDS for k in (1, 2)]}
        )
    )
    return root


@cache
def sample_doc(root: str) -> dict[str, Any]:
    r = run_cli("compare", f"{root}/qemu-7.2", "--", f"{root}/threadify", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # not a terminal: no progress line
    return dict(json.loads(r.stdout))


def test_each_run_keeps_its_own_load_thread_figure(sample_runs: Path) -> None:
    doc = sample_doc(str(sample_runs))
    assert (doc["before"]["label"], doc["after"]["label"]) == BUILDS  # from capture.json
    m = next(m for m in doc["metrics"] if m["metric"] == "bql.hold.total{load=true}")
    load72 = float(sum(plain_holds("7.2")[plain_load_tid("7.2")]))
    load_tfy = float(sum(plain_holds("threadify")[plain_load_tid("threadify")]))
    assert m["before"]["values"] == [load72, None]  # run-2 traced no mutex events
    assert m["after"]["values"] == [load_tfy, None]
    assert m["before"]["n"] == m["after"]["n"] == 1
    assert m["change"]["shift"] == pytest.approx(load_tfy - load72)
    assert "qemu_mutex" in m["not_measurable"]["before"]
    assert m["headline"] is True and m["unit"] == "us"


def test_json_keys_and_the_runs_of_each_side(sample_runs: Path) -> None:
    doc = sample_doc(str(sample_runs))
    assert set(doc) >= {"before", "after", "metrics"}
    for side in ("before", "after"):
        assert set(doc[side]) == {"label", "runs"}
        assert [r["name"] for r in doc[side]["runs"]] == [f"{doc[side]['label']}/run-{k}" for k in (1, 2)]
    for m in doc["metrics"]:
        assert {"metric", "unit", "before", "after", "change"} <= set(m)
        for side in ("before", "after"):
            assert set(m[side]) == {"n", "values", "median", "q1", "q3"}
            assert len(m[side]["values"]) == 2
            assert m[side]["n"] == sum(v is not None for v in m[side]["values"])
        assert {"shift", "ci_low", "ci_high", "relative", "p_value", "significant"} <= set(m["change"])
        p = m["change"]["p_value"]
        assert p is None or 0 <= p <= 1


@cache
def sample_comparison(root: str) -> tracetool.RunsComparison:
    return tracetool.compare_runs([f"{root}/qemu-7.2"], [f"{root}/threadify"])


def test_python_api_gives_the_same_document(sample_runs: Path) -> None:
    assert sample_comparison(str(sample_runs)).to_json() == sample_doc(str(sample_runs))


def test_text_markdown_and_html(sample_runs: Path) -> None:
    from tracetool.cli.compare import render_runs
    from tracetool.cli.report import ReportFormat

    before = (f"{sample_runs}/qemu-7.2/run-1", f"{sample_runs}/qemu-7.2/run-2")
    after = (f"{sample_runs}/threadify/run-1", f"{sample_runs}/threadify/run-2")
    text = run_cli("compare", *before, "--", *after, "--metric", "ram.pages")
    assert text.returncode == 0, text.stderr
    assert TOO_FEW in text.stdout and "ram.pages" in text.stdout
    cmp = sample_comparison(str(sample_runs))
    # The runs table of the headline metrics names every run in full at 100 columns (the outcome
    # column gives way first).
    full = render_runs(cmp, ReportFormat.text)
    runs_table = full[full.index("Every run's value") :]
    assert all(name in runs_table for name in ("qemu-7.2/run-1", "threadify/run-2")), runs_table
    page = render_runs(cmp, ReportFormat.html)
    assert "<script" not in page and TOO_FEW in page and "bql.hold.total{load=true}" in page
    md = render_runs(cmp, ReportFormat.md)
    assert "| metric |" in md and TOO_FEW in md


def test_one_run_per_side_keeps_the_single_comparison_and_says_so(sample_runs: Path) -> None:
    r = run_cli(
        "compare", f"{sample_runs}/qemu-7.2/run-1", "--", f"{sample_runs}/threadify/run-1", "-f", "json"
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert "bql" in doc and "metrics" not in doc
    assert any(n.startswith(NO_NOISE) for n in doc["notes"])
    text = run_cli("compare", f"{sample_runs}/qemu-7.2/run-1", "--", f"{sample_runs}/threadify/run-1")
    assert NO_NOISE in text.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--before-threads", "x.json"), "--before-threads describes one run"),
        (("--metric", "outcome"), "compare takes durations, counts and numbers"),
        (("--metric", "bql.hold.totl"), "unknown metric bql.hold.totl"),
    ],
)
def test_usage_errors_are_one_line(sample_runs: Path, extra: tuple[str, ...], message: str) -> None:
    r = run_cli("compare", f"{sample_runs}/qemu-7.2", "--", f"{sample_runs}/threadify", *extra)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and message in r.stderr


def test_side_runs_reads_folders_and_files(sample_runs: Path) -> None:
    from tracetool._check.repeats import side_runs

    build = str(sample_runs / "qemu-7.2")
    assert side_runs([build]) == [(f"{build}/run-1",), (f"{build}/run-2",)]
    files = [str(p) for p in sorted((sample_runs / "threadify" / "run-1").glob("dst.*.trace.xz"))]
    assert side_runs(files) == [tuple(files)]
    assert len(list(itertools.chain(side_runs([build]), side_runs(files)))) == 3


# ---------------------------------------------------------------------------------- figure
def test_strip_box_figure_shows_every_run_and_the_quartiles() -> None:
    from matplotlib.collections import PathCollection
    from matplotlib.patches import Rectangle

    from reports.plots.runs import runs_plot

    need_repeats()
    cmp = tracetool.compare_runs(
        [str(REPEATS / "qemu-7.2")], [str(REPEATS / "threadify")], metrics=["ram.pages"]
    )
    fig = runs_plot(cmp, "ram.pages")
    (ax,) = fig.axes
    for side, build in zip(("before", "after"), BUILDS, strict=True):
        plain = [plain_ram_pages(REPEATS / build / f"run-{k}") for k in (1, 2, 3)]
        dots = {
            int(c.get_gid().rsplit(":", 1)[1]): float(c.get_offsets()[0][1])
            for c in ax.collections
            if isinstance(c, PathCollection) and (c.get_gid() or "").startswith(f"run:{side}:")
        }
        assert dots == {k: float(v) for k, v in enumerate(plain)}
        (box,) = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_gid() == f"box:{side}"]
        q1, _, q3 = statistics.quantiles(plain, n=4, method="inclusive")
        assert (box.get_y(), box.get_y() + box.get_height()) == (pytest.approx(q1), pytest.approx(q3))
    assert "too few runs" in ax.get_title()


def test_html_draws_each_headline_metric(sample_runs: Path) -> None:
    from reports.compare_runs import runs_figures
    from reports.plots.runs import runs_plot
    from tracetool.errors import NotInTrace

    cmp = sample_comparison(str(sample_runs))
    items = runs_figures(cmp)["summary"]
    drawn = [m.metric for m in cmp.headline]
    assert "bql.hold.total{load=true}" in drawn
    assert [getattr(i, "title", "").split(":")[0] for i in items] == drawn
    empty = next((m for m in cmp.metrics if not m.measured), None)
    if empty is not None:
        with pytest.raises(NotInTrace):
            runs_plot(cmp, empty.metric)
