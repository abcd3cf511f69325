"""The ClickHouse tables, created when absent. `{db}` is the database name.

`spend_minute` rows are written once per flush and per source partition, and
stamped with the source partition and the last offset the flush covered: a
query sums the measures (`sum(cost_usd)`), and the stamp tells a restarted
worker where ClickHouse ends (see `streams.store.Store.high_water`).

`seen_events` keeps event times as epoch milliseconds: converting Python
datetimes for a DateTime64 column costs several times more per row, and this
table takes a row per event.

No table has a PARTITION BY: one INSERT then lands as one part, which is what
makes a flush all-or-nothing on a single server.
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

TABLES = [SPEND_MINUTE, SEEN_EVENTS, SHADOW_PREDICTIONS]

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
