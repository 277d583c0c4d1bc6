"""The HTML report in a real browser: headless Chromium with networking off renders the page and
its embedded figures. Skipped where Chromium is not installed (the HTML itself is checked
without a browser in test_report_formats.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from reports.html import report_html
from tests.test_report_data import mutex_threadify

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH, HEIGHT = 1400, 6000
# The page's own colour is a few link and border pixels (about 4,000 here); the figures' bars,
# lanes and curves add about 100,000. Fewer than this means the images did not render.
MIN_FIGURE_PIXELS = 40_000


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_chromium_renders_the_report_offline_with_its_figures(tmp_path: Path) -> None:
    pytest.importorskip("reports.plots.common")
    from PIL import Image

    page = tmp_path / "report.html"
    html = report_html(mutex_threadify())
    page.write_text(html, encoding="utf-8")
    shot = tmp_path / "report.png"
    assert CHROMIUM is not None
    r = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            f"--window-size={WIDTH},{HEIGHT}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB")).astype(np.int16)
    assert img.shape == (HEIGHT, WIDTH, 3)
    assert html.count("<img ") == 3
    saturated = int(((img.max(axis=2) - img.min(axis=2)) > 60).sum())
    assert saturated > MIN_FIGURE_PIXELS, f"only {saturated} coloured pixels: figures not drawn"
    # and the text is there: the top of the page is not blank
    assert (img[:300].min(axis=2) < 100).sum() > 1000
