"""The trend figure and the history page: a point per run where its value is, the baseline band
at the baseline's quartiles, and a page that loads nothing and escapes the labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import PathCollection, PolyCollection

from tests.conftest import run_cli
from tests.history_support import generated_runs
from tracetool._history.store import History
from tracetool._history.trend import trend

VALUES = [100_000.0, 104_000.0, 98_000.0, 101_000.0, 99_000.0, 103_000.0, 130_000.0, 128_000.0, 131_000.0]
EVIL = '<script>alert("x")</script>'


@pytest.fixture
def db(tmp_path: Path) -> str:
    where = str(tmp_path / "h.sqlite")
    with History(where) as h:
        h.add(generated_runs(VALUES, labels={"machine": EVIL}))
    return where


def test_points_and_the_baseline_band(db: str) -> None:
    from reports.plots.trend import trend_plot

    with History(db) as h:
        t = trend(h, "downtime.end_to_end", recent=3, baseline=6)
    fig = trend_plot(t)
    ax = fig.axes[0]
    dots = {
        c.get_gid(): c.get_offsets()[0][1]
        for c in ax.collections
        if isinstance(c, PathCollection) and c.get_gid()
    }
    assert len(dots) == len(VALUES)
    assert sorted(dots.values()) == pytest.approx(sorted(v / 1000 for v in VALUES))  # shown in ms
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection) and c.get_gid() == "band:0"]
    ys = band.get_paths()[0].vertices[:, 1]
    q1, q3 = np.percentile(VALUES[:6], [25, 75])
    assert (ys.min(), ys.max()) == pytest.approx((q1 / 1000, q3 / 1000))
    (median,) = [line for line in ax.lines if line.get_gid() == "median:0"]
    assert median.get_ydata()[0] == pytest.approx(np.median(VALUES[:6]) / 1000)
    assert "ms" in ax.get_ylabel()


def test_png_through_the_cli(db: str, tmp_path: Path) -> None:
    out = tmp_path / "trend.png"
    r = run_cli("history", "show", "--db", db, "-m", "downtime.end_to_end", "-f", "png", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_page_loads_nothing_and_escapes_the_labels(db: str, tmp_path: Path) -> None:
    out = tmp_path / "history.html"
    r = run_cli(
        "history",
        "show",
        "--db",
        db,
        "-m",
        "downtime.end_to_end",
        "--by",
        "machine",
        "-f",
        "html",
        "-o",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert 'src="data:image/' in page
    for forbidden in ("http://", "https://"):
        assert forbidden not in page.replace("http://www.w3.org", "")
    assert page.count("<tr>") == len(VALUES) + 1  # the header row and one row per run
