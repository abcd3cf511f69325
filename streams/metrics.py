"""Prometheus metrics of a worker, served at `GET /metrics`."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "spendstream_events",
    "Cost events read from the events topic, by outcome",
    ["outcome"],
)
"""outcome: counted, duplicate, rejected, replayed (already in ClickHouse)."""
COUNTED = EVENTS.labels("counted")
DUPLICATES = EVENTS.labels("duplicate")
REJECTED = EVENTS.labels("rejected")
REPLAYED = EVENTS.labels("replayed")

DLQ_RECORDS = Counter(
    "spendstream_dlq_records", "Records sent to the DLQ, by reason", ["reason"]
)

SPEND_USD = Counter(
    "spendstream_spend_usd", "Spend metered, in USD (a float: for graphs only)"
)

FLUSH_SECONDS = Histogram(
    "spendstream_flush_seconds",
    "Time to write one flush to ClickHouse and commit its offsets",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

FLUSH_FAILURES = Counter(
    "spendstream_flush_failures", "Flushes that failed and were retried"
)

GRANT_OPS = Counter(
    "spendstream_grant_ops",
    "Grant ops applied, by op and outcome",
    ["op", "outcome"],
)
"""op: command (applied, refused, skipped), transfer (applied), debit (charged,
duplicate, or a flag: unknown, closed, exhausted, over_limit)."""

GRANT_FLAGGED = Counter(
    "spendstream_grant_flagged_events",
    "Cost events charged to a grant that could not cover them, by flag",
    ["flag"],
)

GRANT_TRANSFERS_SENT = Counter(
    "spendstream_grant_transfers_sent", "Transfers of the fund protocol produced"
)

GRANT_AUTHORIZATIONS = Counter(
    "spendstream_grant_authorizations",
    "Authorize calls answered on this worker, by answer",
    ["answer"],
)
"""answer: approved (200), refused (402)."""

GRANT_ACTIVITY_ROWS = Counter(
    "spendstream_grant_activity_rows",
    "grant_activity rows written to ClickHouse (again after a replay)",
)

GRANT_CYCLE_SECONDS = Histogram(
    "spendstream_grant_cycle_seconds",
    "Time to apply, publish and store one cycle of grant changes",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)

CONSUMER_LAG = Gauge(
    "spendstream_consumer_lag",
    "Records behind the end of the events topic, per partition",
    ["partition"],
)
