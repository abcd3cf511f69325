"""The ClickHouse tables, created when absent. `{db}` is the database name.

`spend_minute` rows are written once per flush and per source partition, and
stamped with the source partition and the last offset the flush covered: a
query sums the measures (`sum(cost_usd)`), and the stamp tells a restarted
worker where ClickHouse ends (see `streams.store.Store.high_water`).

`seen_events` keeps event times as epoch milliseconds: converting Python
datetimes for a DateTime64 column costs several times more per row, and this
table takes a row per event.

`breaker_trips` holds one row per freeze (not unfreezes: those are on the
trip topic). A replay after a crash writes a trip again with the same
`trip_id`; the ReplacingMergeTree keeps one, so read it with FINAL.

No table has a PARTITION BY: one INSERT then lands as one part, which is what
makes a flush all-or-nothing on a single server.

`ledger_entries` is a ReplacingMergeTree keyed by `entry_id` (derived from the
event id): a replayed entry replaces its twin, and readers use FINAL.
`ledger_checkpoints` keeps, per events partition, the bookkeeper's state at
the last flush and the one before (`models.checkpoint`); the highest
`version` wins.
"""

SPEND_MINUTE = """
CREATE TABLE IF NOT EXISTS {db}.spend_minute (
    minute DateTime('UTC'),
    session_id String,
    agent LowCardinality(String),
    principal LowCardinality(String),
    owner LowCardinality(String),
    model LowCardinality(String),
    kind LowCardinality(String),
    events UInt64,
    input_tokens UInt64,
    output_tokens UInt64,
    cost_usd Decimal(38, 9),
    src_topic LowCardinality(String),
    src_partition UInt32,
    src_offset UInt64
) ENGINE = MergeTree
ORDER BY (minute, principal, agent, session_id)
"""

SEEN_EVENTS = """
CREATE TABLE IF NOT EXISTS {db}.seen_events (
    event_id String,
    ts_ms Int64,
    src_topic LowCardinality(String),
    src_partition UInt32,
    src_offset UInt64,
    written_at DateTime DEFAULT now()
) ENGINE = MergeTree
ORDER BY (src_topic, src_partition, src_offset)
TTL written_at + INTERVAL 3 DAY
"""

LEDGER_ENTRIES = """
CREATE TABLE IF NOT EXISTS {db}.ledger_entries (
    entry_id String,
    ts DateTime64(6, 'UTC'),
    period LowCardinality(String),
    debit LowCardinality(String),
    credit LowCardinality(String),
    amount_usd Decimal(38, 9),
    event_id String,
    agent LowCardinality(String),
    model LowCardinality(Nullable(String)),
    internal Bool,
    adjusts LowCardinality(Nullable(String)),
    source LowCardinality(String),
    source_seq UInt64
) ENGINE = ReplacingMergeTree
ORDER BY entry_id
"""

LEDGER_CHECKPOINTS = """
CREATE TABLE IF NOT EXISTS {db}.ledger_checkpoints (
    src_topic LowCardinality(String),
    src_partition UInt32,
    version UInt64,
    src_offset Int64,
    state String,
    prev_offset Int64,
    prev_state String
) ENGINE = ReplacingMergeTree(version)
ORDER BY (src_topic, src_partition)
"""

BREAKER_TRIPS = """
CREATE TABLE IF NOT EXISTS {db}.breaker_trips (
    trip_id String,
    ts DateTime64(3, 'UTC'),
    session_id String,
    agent LowCardinality(String),
    principal LowCardinality(String),
    rule LowCardinality(String),
    window_s UInt32,
    spend_usd Decimal(38, 9),
    threshold_usd Decimal(38, 9),
    rate_usd_per_s Decimal(38, 9),
    events UInt64,
    threshold_events UInt64,
    event_id String,
    detected_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
ORDER BY trip_id
"""

SHADOW_PREDICTIONS = """
CREATE TABLE IF NOT EXISTS {db}.shadow_predictions (
    task_id String,
    ts DateTime64(3, 'UTC'),
    agent LowCardinality(String),
    model_version UInt64,
    n_learnt UInt64,
    basis LowCardinality(String),
    predicted_steps Float64,
    predicted_steps_lower Float64,
    predicted_steps_upper Float64,
    predicted_tokens Float64,
    predicted_tokens_lower Float64,
    predicted_tokens_upper Float64,
    predicted_cost_usd Decimal(38, 9),
    predicted_cost_usd_lower Decimal(38, 9),
    predicted_cost_usd_upper Decimal(38, 9),
    actual_steps UInt64,
    actual_tokens UInt64,
    actual_cost_usd Decimal(38, 9),
    baseline_steps Float64,
    baseline_tokens Float64,
    baseline_cost_usd Decimal(38, 9)
) ENGINE = ReplacingMergeTree
ORDER BY task_id
"""
"""One row per finished task, its estimate made before learning it (progressive
validation). A learner that resumes from an older checkpoint writes a task
again: the engine keeps one row per `task_id`, so read it with FINAL."""


GRANT_ACTIVITY = """
CREATE TABLE IF NOT EXISTS {db}.grant_activity (
    row_id String,
    ts DateTime64(3, 'UTC'),
    grant_id String,
    parent_id String,
    kind LowCardinality(String),
    amount_usd Decimal(38, 9),
    balance_usd Decimal(38, 9)
) ENGINE = ReplacingMergeTree
ORDER BY (grant_id, row_id)
"""
"""One row per money movement or status of a grant (`models.records.GrantActivity`).

`row_id` is derived from the row's cause (`models.grant_cycle.ActivityRow`): a
replay writes the same ids again, so read with FINAL. `parent_id` is '' for a
root grant.
"""

TABLES = [
    SPEND_MINUTE,
    SEEN_EVENTS,
    LEDGER_ENTRIES,
    LEDGER_CHECKPOINTS,
    BREAKER_TRIPS,
    SHADOW_PREDICTIONS,
    GRANT_ACTIVITY,
]


SPEND_MINUTE_COLUMNS = [
    "minute",
    "session_id",
    "agent",
    "principal",
    "owner",
    "model",
    "kind",
    "events",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "src_topic",
    "src_partition",
    "src_offset",
]

SEEN_EVENTS_COLUMNS = ["event_id", "ts_ms", "src_topic", "src_partition", "src_offset"]

LEDGER_ENTRY_FIELDS = [
    "entry_id",
    "ts",
    "period",
    "debit",
    "credit",
    "amount_usd",
    "event_id",
    "agent",
    "model",
    "internal",
    "adjusts",
]
"""The columns a reader of the ledger needs: the contract's fields and `model`."""

LEDGER_ENTRY_COLUMNS = [*LEDGER_ENTRY_FIELDS, "source", "source_seq"]

LEDGER_CHECKPOINT_COLUMNS = [
    "src_topic",
    "src_partition",
    "version",
    "src_offset",
    "state",
    "prev_offset",
    "prev_state",
]

BREAKER_TRIPS_COLUMNS = [
    "trip_id",
    "ts",
    "session_id",
    "agent",
    "principal",
    "rule",
    "window_s",
    "spend_usd",
    "threshold_usd",
    "rate_usd_per_s",
    "events",
    "threshold_events",
    "event_id",
    "detected_at",
]

SHADOW_PREDICTIONS_COLUMNS = [
    "task_id",
    "ts",
    "agent",
    "model_version",
    "n_learnt",
    "basis",
    *(
        f"predicted_{target}{end}"
        for target in ("steps", "tokens", "cost_usd")
        for end in ("", "_lower", "_upper")
    ),
    "actual_steps",
    "actual_tokens",
    "actual_cost_usd",
    "baseline_steps",
    "baseline_tokens",
    "baseline_cost_usd",
]

GRANT_ACTIVITY_COLUMNS = [
    "row_id",
    "ts",
    "grant_id",
    "parent_id",
    "kind",
    "amount_usd",
    "balance_usd",
]
