"""The example notebook runs from top to bottom on the shipped traces and shows its results."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = REPO / "examples" / "analysis.ipynb"


def test_analysis_notebook_runs_and_shows_tables_and_figures(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        "commit the notebook without outputs"
    )
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, when a cell fails
    code = [c for c in nb.cells if c.cell_type == "code"]
    kinds = [{k for o in c.outputs for k in o.get("data", {})} for c in code]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors
    # figures are PNGs, analysis results HTML tables, DataFrames HTML
    by_source = {c.source.splitlines()[-1]: k for c, k in zip(code, kinds, strict=True)}
    for line in (
        "bql_plots.bql_distribution(bql)",
        "phase_plots.phase_waterfall(phases, top=10)",
        "gantt.gantt(trace, timeline, bql)",
        "page_latency.page_latency(preempt, tracetool.trace_start_ns(post))",
    ):
        assert "image/png" in by_source[line], line
    for line in ("bql", "phases", "preempt", "trace", "trace.threads"):
        assert "text/html" in by_source[line], line
    html = "".join(
        o["data"]["text/html"] for c in code for o in c.outputs if "text/html" in o.get("data", {})
    )
    assert "BQL analysis" in html and "mig/dst/main" in html and "Incoming phases" in html
    assert "Postcopy preempt" in html
