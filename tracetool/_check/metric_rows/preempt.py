"""Metric rows read from ``migtrace preempt``: the postcopy preempt channel's waits and pages."""

from __future__ import annotations

from tracetool._check.metric_types import Kind, Metric

ROWS: tuple[Metric, ...] = (
    Metric(
        "preempt.enabled",
        "preempt",
        Kind.FLAG,
        "preempt.enabled",
        help="whether the postcopy preempt channel was in use",
    ),
    Metric(
        "preempt.thread_wait",
        "preempt",
        Kind.DURATION,
        "preempt.thread_wait_us",
        help="preempt thread start until its channel was ready",
    ),
    Metric(
        "preempt.packaged_wait",
        "preempt",
        Kind.DURATION,
        "preempt.packaged_wait_us",
        help="packaged command received until its load started",
    ),
    Metric(
        "preempt.page_requests.count",
        "preempt",
        Kind.COUNT,
        "preempt.page_requests.count",
        help="postcopy page requests (faults sent to the source)",
    ),
    Metric(
        "preempt.page_requests.p50",
        "preempt",
        Kind.DURATION,
        "preempt.page_requests.p50_us",
        help="median page-request latency",
    ),
    Metric(
        "preempt.page_requests.p99",
        "preempt",
        Kind.DURATION,
        "preempt.page_requests.p99_us",
        help="99th percentile page-request latency",
    ),
    Metric(
        "preempt.page_requests.max",
        "preempt",
        Kind.DURATION,
        "preempt.page_requests.max_us",
        help="slowest page request",
    ),
    Metric(
        "preempt.pages.main",
        "preempt",
        Kind.COUNT,
        "preempt.pages_by_channel.0",
        default=0,
        help="postcopy pages that arrived on the main channel",
    ),
    Metric(
        "preempt.pages.preempt",
        "preempt",
        Kind.COUNT,
        "preempt.pages_by_channel.1",
        default=0,
        help="postcopy pages that arrived on the preempt channel",
    ),
)
