"""Prometheus metrics of one frontend (its own registry, so tests can build many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_LABEL_BUCKETS = (0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120, 300)


class Metrics:
    """Counters and histograms the frontend exports at ``/metrics``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.tasks_served = Counter(
            "annotate_tasks_served", "Task pages rendered.", ["pool"], registry=r
        )
        self.votes_produced = Counter(
            "annotate_votes_produced",
            "Answers produced to the broker (VoteCast or AdjudicationRecorded).",
            ["pool", "draft_shown"],
            registry=r,
        )
        self.rejected = Counter(
            "annotate_submissions_rejected",
            "Submissions refused, by reason.",
            ["reason"],
            registry=r,
        )
        self.auth_failures = Counter(
            "annotate_auth_failures", "Requests or sign-ins with a bad credential.", registry=r
        )
        self.label_seconds = Histogram(
            "annotate_label_seconds",
            "Time an annotator spent per label.",
            ["pool", "draft_shown"],
            buckets=_LABEL_BUCKETS,
            registry=r,
        )
        self.request_seconds = Histogram(
            "annotate_request_seconds",
            "Server time per request: render = page to rendered task, submit = to produced.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            "annotate_http_requests", "HTTP requests served, by route.", ["route"], registry=r
        )
        self.pending = Gauge("annotate_tasks_pending", "Unanswered tasks held.", registry=r)
        self.feed_records = Counter(
            "annotate_feed_records",
            "Log records read by the task feed, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.ready = Gauge("annotate_ready", "1 once the task log has been read.", registry=r)
