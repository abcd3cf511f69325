"""The worker's configuration, from `SPENDSTREAM_*` environment variables."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a worker, the demo and the CLI read from the environment."""

    model_config = SettingsConfigDict(env_prefix="SPENDSTREAM_", extra="ignore")

    kafka: str = Field("127.0.0.1:9092", description="bootstrap servers")
    clickhouse: str = Field(
        default_factory=lambda: f"chdb://{Path('var/store').resolve()}",
        description="chdb:///dir (embedded) or http(s)://user:pass@host:8123/db",
    )
    topic_prefix: str = "spend."
    app_id: str = Field("spendstream", description="Kafka consumer group and Faust id")
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    admin_token: str | None = None
    policy: Path | None = None
    data_dir: Path = Path("var/worker")

    replication_factor: int = Field(1, ge=1)
    events_partitions: int = Field(4, ge=1)
    output_partitions: int = Field(4, ge=1)
    max_message_bytes: int = Field(
        4 * 1024 * 1024, description="topic max.message.bytes for events and the DLQ"
    )
    max_event_bytes: int = Field(
        64 * 1024, description="a larger cost event goes to the DLQ"
    )

    flush_events: int = Field(20_000, ge=1, description="flush after this many")
    flush_interval_s: float = Field(0.5, gt=0, description="or after this long")
    poll_max_records: int = Field(5_000, ge=1)
    dedup_horizon_s: float = Field(86_400, gt=0)
    dedup_max_ids: int = Field(2_000_000, ge=1)

    grant_hold_s: float = Field(60.0, gt=0, description="default hold of authorize")
    grant_sweep_interval_s: float = Field(
        1.0, gt=0, description="how often held amounts and grants time out"
    )
    grant_batch_max: int = Field(1_000, ge=1, description="grant ops per batch")
    grant_batch_within_s: float = Field(0.02, gt=0, description="or this long")
