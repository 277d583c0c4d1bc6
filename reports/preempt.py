"""Rendering ``migtrace preempt``: preempt-channel waits, page requests, channels, source side."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from reports.console import fmt_us, table


def _yes(v: bool | None) -> str:
    return "-" if v is None else ("yes" if v else "no")


def render_preempt_text(doc: dict[str, Any], out: Console, absent: str | None = None) -> None:
    """Prints a ``PreemptReport.to_json()`` document; ``absent``, the note of a trace without
    postcopy, replaces the tables (they would hold only dashes and zeros)."""
    if absent is not None:
        out.print(Text(absent))
        return
    p = doc["preempt"]
    rows: list[list[Any]] = [
        ["postcopy", _yes(p["postcopy"])],
        ["preempt enabled", _yes(p["enabled"])],
        ["preempt thread wait", fmt_us(p["thread_wait_us"])],
        [
            "packaged-load wait",
            fmt_us(p["packaged_wait_us"])
            + (
                ""
                if p["packaged_wait_yields"] is None
                else f" ({p['packaged_wait_yields']} coroutine events)"
            ),
        ],
    ]
    out.print(table("Postcopy preempt", ["destination", "value"], rows))
    pr = p["page_requests"]
    out.print(
        table(
            "Page requests (add -> del)",
            ["count", "unmatched", "p50", "p99", "max", "mean"],
            [
                [
                    pr["count"],
                    pr["unmatched"],
                    fmt_us(pr["p50_us"]),
                    fmt_us(pr["p99_us"]),
                    fmt_us(pr["max_us"]),
                    fmt_us(pr["mean_us"]),
                ]
            ],
            right=["count", "unmatched", "p50", "p99", "max", "mean"],
        )
    )
    if p["pages_by_channel"]:
        names = {"0": "0 (main)", "1": "1 (preempt)"}
        out.print(
            table(
                "Pages per channel",
                ["channel", "pages"],
                [[names.get(k, k), v] for k, v in p["pages_by_channel"].items()],
                right=["pages"],
            )
        )
    src = p["source"]
    if src is not None:
        rows = [
            [k.replace("_", " "), v]
            for k, v in src.items()
            if k not in ("switch_to", "enabled", "channel_ns")
        ]
        rows.append(["enabled (postcopy_preempt_enabled)", _yes(src.get("enabled"))])
        for ch, n in (src.get("switch_to") or {}).items():
            rows.append([f"switches to channel {ch}", n])
        out.print(table("Source", ["postcopy_preempt_*", "count"], rows, right=["count"]))
    for n in p["notes"]:
        out.print(f"note: {n}")
