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

LEDGER_ENTRIES = Counter(
    "spendstream_ledger_entries", "Ledger entries booked from cost events"
)

LEDGER_ADJUSTMENTS = Counter(
    "spendstream_ledger_adjustments",
    "Ledger entries of late events, booked in a later period as adjustments",
)

POSITIONS_RECORDS = Counter(
    "spendstream_positions_records",
    "Records read from the ledger topic by the positions agent, by outcome",
    ["outcome"],
)
"""outcome: applied, duplicate (applied before, or produced twice), invalid."""
BREAKER_EVENTS = Counter(
    "spendstream_breaker_events",
    "Events the breaker saw, by arrival: on_time, late, too_late, after_trip",
    ["outcome"],
)
BREAKER_TRIPS = Counter(
    "spendstream_breaker_trips", "Sessions frozen by the breaker, by rule", ["rule"]
)
BREAKER_UNFREEZES = Counter(
    "spendstream_breaker_unfreezes", "Unfrozen records published by this worker"
)
BREAKER_SESSIONS = Gauge(
    "spendstream_breaker_sessions", "Breaker sessions held in memory (all partitions)"
)
BREAKER_EXPIRED = Counter(
    "spendstream_breaker_expired", "Idle breaker sessions forgotten (tombstoned)"
)
BREAKER_STATE_RECORDS = Counter(
    "spendstream_breaker_state_records",
    "Breaker changelog records, by direction: written, restored, dropped (corrupt)",
    ["direction"],
)
BREAKER_RESTORE_SECONDS = Histogram(
    "spendstream_breaker_restore_seconds",
    "Time to restore an events partition's breaker sessions from the changelog",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ALERTS = Counter(
    "spendstream_alerts",
    "Webhook alerts, by outcome: sent, retried, failed (gave up), dropped (queue full)",
    ["outcome"],
)
ADMIN_COMMANDS = Counter(
    "spendstream_admin_commands",
    "Admin commands read, by command and outcome: applied, ignored, invalid",
    ["command", "outcome"],
)
FORWARDED = Counter(
    "spendstream_forwarded_requests",
    "HTTP requests forwarded to the worker that owns the key, by outcome",
    ["outcome"],
)

TASK_RECORDS = Counter(
    "spendstream_task_records",
    "Records read from the tasks topic, by outcome",
    ["outcome"],
)
"""outcome: forwarded (to the learner's log), rejected (to the DLQ)."""

TASK_USAGE_BATCHES = Counter(
    "spendstream_task_usage_batches",
    "Usage batches the events path sent to the learner's log",
)

SHADOW_TASKS = Counter(
    "spendstream_shadow_tasks",
    "Finished tasks the learner took, by outcome",
    ["outcome"],
)
"""outcome: learnt, or skipped (no actuals, invalid features)."""

SHADOW_MAE = Gauge(
    "spendstream_shadow_mae",
    "Mean absolute error over the last tasks the model estimated",
    ["target", "estimator"],
)
"""estimator: model, or agent_mean (the fallback, on the same tasks)."""

SHADOW_COVERAGE = Gauge(
    "spendstream_shadow_coverage",
    "Share of the last tasks whose actual fell in the model's interval",
    ["target"],
)

SHADOW_VERSION = Gauge(
    "spendstream_shadow_model_version",
    "Shadow model version: published by the learner, loaded by the estimator",
    ["role"],
)

SHADOW_SNAPSHOT_BYTES = Gauge(
    "spendstream_shadow_snapshot_bytes", "Size of the last model snapshot", ["kind"]
)
"""kind: model (what every worker loads), checkpoint (the learner's own)."""

SHADOW_CHECKPOINT_FAILURES = Counter(
    "spendstream_shadow_checkpoint_failures",
    "Learner checkpoints that could not be written (the learner goes on)",
)

ESTIMATES = Counter(
    "spendstream_estimates", "POST /v1/estimate answers, by outcome", ["outcome"]
)
"""outcome: allow, needs_approval, rejected (4xx)."""

ESTIMATE_SECONDS = Histogram(
    "spendstream_estimate_seconds",
    "Time to answer POST /v1/estimate, body read to answer",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1),
)
