"""The ClickHouse store, through clickhouse-connect, on chdb or on a server.

`chdb:///dir` runs the ClickHouse engine in this process; `http(s)://` reaches a
server. The SQL is the same. Differences of the young chdb backend, hidden here:

- chdb locks its folder for one process ("Cannot lock file .../status"): other
  processes reach the data through that process, or open it after it stopped.
- chdb returns `DateTime('UTC')` values without their zone; `_utc` puts it back.
- chdb has no async client: every call runs in one worker thread, in order.
- chdb gives an empty result no column names; `query_table` asks `DESCRIBE`.
"""

import asyncio
import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from models.checkpoint import Checkpoint
from models.records import LedgerEntry
from streams import metrics, schema

log = logging.getLogger(__name__)

DEFAULT_DATABASE = "spendstream"


def _database_of(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https") and parsed.path.strip("/"):
        return parsed.path.strip("/").split("/")[0]
    return DEFAULT_DATABASE


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class Store:
    """Tables of one spendstream database, and the writes the worker makes."""

    def __init__(self, client: Client, database: str) -> None:
        self.client = client
        self.db = database
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="clickhouse")

    @classmethod
    def open(cls, url: str) -> "Store":
        """Connect, and create the database and tables when absent."""
        database = _database_of(url)
        if url.startswith("chdb:"):
            client = clickhouse_connect.get_client(dsn=url)
        else:
            parsed = urlparse(url)
            client = clickhouse_connect.get_client(
                dsn=parsed._replace(path="/default").geturl()
            )
        client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
        for ddl in schema.TABLES:
            client.command(ddl.format(db=database))
        log.info("opened store url=%s database=%s", _redact(url), database)
        return cls(client, database)

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        self.client.close()

    async def run(self, fn: Any, *args: Any) -> Any:
        """Run a blocking store call on the store's own thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, fn, *args)

    async def write_until_done(self, fn: Any, *args: Any) -> None:
        """Run an idempotent write on the store's thread, retrying until it lands."""
        delay_s = 0.2
        while True:
            try:
                await self.run(fn, *args)
                return
            except Exception:
                metrics.FLUSH_FAILURES.inc()
                name = getattr(fn, "__name__", "write")
                log.exception("%s failed; retrying in %.1fs", name, delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 10.0)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[Any]:
        """Rows of a query; `{db}` in the SQL names this store's database."""
        sql = sql.replace("{db}", self.db)
        result = self.client.query(sql, parameters=parameters)
        return [
            tuple(_utc(v) if isinstance(v, datetime) else v for v in row)
            for row in result.result_rows
        ]

    def query_table(self, sql: str) -> tuple[list[str], list[Any]]:
        """Column names and rows of a query, as a Grafana panel receives them."""
        result = self.client.query(sql)
        rows = [
            tuple(_utc(v) if isinstance(v, datetime) else v for v in row)
            for row in result.result_rows
        ]
        names = list(result.column_names)
        if not names:
            described = self.client.query(f"DESCRIBE ({sql})").result_rows
            names = [row[0] for row in described]
        return names, rows

    def write_flush(
        self, seen: Sequence[Sequence[Any]], minutes: Sequence[Sequence[Any]]
    ) -> None:
        """Write one flush: event ids first, then the rollup rows that stamp it.

        In this order a crash between the two inserts leaves ids whose rollup
        is missing; `recent_ids` ignores them because no `spend_minute` row
        reaches their offset, and the replay writes both again.
        """
        if seen:
            self.client.insert(
                f"{self.db}.seen_events", seen, column_names=schema.SEEN_EVENTS_COLUMNS
            )
        if minutes:
            self.client.insert(
                f"{self.db}.spend_minute",
                minutes,
                column_names=schema.SPEND_MINUTE_COLUMNS,
            )

    def write_trips(self, rows: Sequence[Sequence[Any]]) -> None:
        """Insert breaker trips; a trip written again keeps one row (read FINAL)."""
        if rows:
            self.client.insert(
                f"{self.db}.breaker_trips",
                rows,
                column_names=schema.BREAKER_TRIPS_COLUMNS,
            )

    def write_shadow_predictions(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert progressive-validation rows (`ShadowPrediction.to_row`)."""
        columns = schema.SHADOW_PREDICTIONS_COLUMNS
        self.client.insert(
            f"{self.db}.shadow_predictions",
            [[row[c] for c in columns] for row in rows],
            column_names=columns,
        )

    def write_grant_activity(self, rows: Sequence[Sequence[Any]]) -> None:
        """Insert `grant_activity` rows; a row written again replaces itself."""
        if rows:
            self.client.insert(
                f"{self.db}.grant_activity",
                rows,
                column_names=schema.GRANT_ACTIVITY_COLUMNS,
            )

    def high_water(self, topic: str) -> dict[int, int]:
        """The last source offset per partition that `spend_minute` holds."""
        rows = self.query(
            "SELECT src_partition, max(src_offset) FROM {db}.spend_minute"
            " WHERE src_topic = {topic:String} GROUP BY src_partition",
            {"topic": topic},
        )
        return {int(p): int(o) for p, o in rows}

    def recent_ids(
        self, topic: str, partition: int, upto_offset: int, horizon_s: float, limit: int
    ) -> list[tuple[str, datetime]]:
        """Event ids of flushes that completed, within `horizon_s` of the newest."""
        rows = self.query(
            """
            SELECT event_id, fromUnixTimestamp64Milli(ts_ms, 'UTC')
            FROM {db}.seen_events
            WHERE src_topic = {topic:String} AND src_partition = {p:UInt32}
              AND src_offset <= {upto:UInt64}
            ORDER BY src_offset DESC, ts_ms DESC
            LIMIT {limit:UInt64}
            """,
            {"topic": topic, "p": partition, "upto": upto_offset, "limit": limit},
        )
        if not rows:
            return []
        newest_s = max(ts.timestamp() for _, ts in rows)
        kept = [(i, ts) for i, ts in rows if ts.timestamp() >= newest_s - horizon_s]
        kept.reverse()
        return kept

    def write_ledger(
        self, entries_json: Sequence[bytes], checkpoints: Sequence[Sequence[Any]]
    ) -> None:
        """Write ledger entries (JSON, as on `spend.ledger`), then checkpoints.

        Entries replace their twins (same `entry_id`), so writing one twice is
        harmless; a crash between the two inserts books the entries again.
        """
        if entries_json:
            self.client.raw_insert(
                f"{self.db}.ledger_entries",
                schema.LEDGER_ENTRY_COLUMNS,
                insert_block=b"\n".join(entries_json),
                settings={"date_time_input_format": "best_effort"},
                fmt="JSONEachRow",
            )
        if checkpoints:
            self.client.insert(
                f"{self.db}.ledger_checkpoints",
                checkpoints,
                column_names=schema.LEDGER_CHECKPOINT_COLUMNS,
            )

    def ledger_checkpoint(self, topic: str, partition: int) -> Checkpoint | None:
        """The bookkeeper state saved last for an events partition, if any."""
        rows = self.query(
            "SELECT version, src_offset, state, prev_offset, prev_state"
            " FROM {db}.ledger_checkpoints FINAL"
            " WHERE src_topic = {topic:String} AND src_partition = {p:UInt32}",
            {"topic": topic, "p": partition},
        )
        if not rows:
            return None
        version, offset, state, prev_offset, prev_state = rows[0]
        return Checkpoint(
            int(version),
            int(offset),
            json.loads(state),
            int(prev_offset),
            json.loads(prev_state),
        )

    def ledger_entries(self, period: str) -> list[LedgerEntry]:
        """The entries booked in `period`, each once (the contract's fields)."""
        names = schema.LEDGER_ENTRY_FIELDS
        rows = self.query(
            f"SELECT {', '.join(names)} FROM {{db}}.ledger_entries FINAL"
            " WHERE period = {period:String} ORDER BY ts, entry_id",
            {"period": period},
        )
        return [
            LedgerEntry.model_validate(dict(zip(names, row, strict=True)))
            for row in rows
        ]


def _redact(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return parsed._replace(
            netloc=parsed.netloc.replace(parsed.password, "***")
        ).geturl()
    return url
