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

TABLES = [SPEND_MINUTE, SEEN_EVENTS, GRANT_ACTIVITY]

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

GRANT_ACTIVITY_COLUMNS = [
    "row_id",
    "ts",
    "grant_id",
    "parent_id",
    "kind",
    "amount_usd",
    "balance_usd",
]
