"""Prometheus metrics shared by every service (module-level, as prometheus_client expects)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "giftcloud_http_requests_total",
    "HTTP requests handled",
    ["service", "method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "giftcloud_http_request_seconds", "HTTP request latency", ["service", "method", "route"]
)
EVENTS_CONSUMED = Counter(
    "giftcloud_events_consumed_total", "Bus messages handled, by outcome", ["queue", "outcome"]
)
INSTANCES = Counter(
    "giftcloud_instances_total", "Instances by pipeline stage and outcome", ["stage", "outcome"]
)
FORWARD_BACKLOG = Gauge(
    "giftcloud_forward_backlog",
    "Archived instances waiting to be forwarded to the hub (state: pending, failed)",
    ["project", "state"],
)
FORWARDED = Counter(
    "giftcloud_forwarded_total", "Instances forwarded to the hub, by outcome", ["outcome"]
)
