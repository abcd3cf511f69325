"""The worker's configuration, from `SPENDSTREAM_*` environment variables."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.periods import DEFAULT_CUTOFF_S


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
    web_host: str = Field(
        "127.0.0.1", description="host name other workers reach this one at"
    )
    web_bind: str | None = Field(
        None, description="address the HTTP server listens on (default: web_host)"
    )
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
    producer_batch_bytes: int = Field(
        1024 * 1024,
        ge=16 * 1024,
        description="the outputs' producer batch; aiokafka queues one per partition",
    )

    flush_events: int = Field(20_000, ge=1, description="flush after this many")
    flush_interval_s: float = Field(0.5, gt=0, description="or after this long")
    poll_max_records: int = Field(5_000, ge=1)
    dedup_horizon_s: float = Field(86_400, gt=0)
    dedup_max_ids: int = Field(2_000_000, ge=1)

    ledger_cutoff_s: float = Field(
        DEFAULT_CUTOFF_S,
        ge=0,
        description="grace after month end for late events, judged by event time",
    )
    positions_batch: int = Field(
        2_000, ge=1, description="ledger records per positions update, at most"
    )
    positions_batch_s: float = Field(
        0.5, gt=0, description="or what arrived within this long"
    )
    web_url: str | None = Field(
        None, description="how other workers reach this one; default from host, port"
    )
    alert_webhook: str | None = Field(None, description="JSON POST per breaker trip")
    alert_queue_max: int = Field(1_000, ge=1, description="alerts waiting to be sent")
    alert_attempts: int = Field(5, ge=1, description="tries per alert")
    alert_backoff_s: float = Field(0.5, gt=0, description="first retry delay, doubled")
    alert_timeout_s: float = Field(5.0, gt=0)
    admin_catch_up_timeout_s: float = Field(
        30.0, gt=0, description="wait at most this long for spend.admin at start"
    )
    breaker_sweep_max: int = Field(
        10_000, ge=1, description="idle sessions examined per flush for expiry"
    )

    @property
    def advertised_url(self) -> str:
        """The base URL other workers forward requests to."""
        return self.web_url or f"http://{self.web_host}:{self.web_port}"

    shadow_min_tasks: int = Field(
        30, ge=0, description="tasks learnt before estimates come from the model"
    )
    shadow_confidence_level: float = Field(0.9, gt=0, lt=1)
    shadow_agents: str = Field(
        "", description="comma-separated agents an estimate may name, beside learnt"
    )
    shadow_publish_tasks: int = Field(200, ge=1, description="publish after this many")
    shadow_publish_interval_s: float = Field(10.0, gt=0, description="or this long")
    shadow_settle_s: float = Field(
        2.0, ge=0, description="event time the events path must pass a task's finish"
    )
    shadow_progress_interval_s: float = Field(
        1.0, gt=0, description="how often the events path reports its progress"
    )
    shadow_task_ttl_s: float = Field(86_400, gt=0, description="open tasks expire")
    shadow_max_open_tasks: int = Field(200_000, ge=1)
    shadow_checkpoint_max_bytes: int = Field(
        32 * 1024 * 1024, description="largest learner checkpoint the topic takes"
    )
    estimate_max_body_bytes: int = Field(
        128 * 1024, ge=1024, description="a larger POST /v1/estimate body gets 413"
    )

    @property
    def shadow_agent_names(self) -> frozenset[str]:
        """The configured agents an estimate may name."""
        return frozenset(a.strip() for a in self.shadow_agents.split(",") if a.strip())

    grant_hold_s: float = Field(60.0, gt=0, description="default hold of authorize")
    grant_sweep_interval_s: float = Field(
        1.0, gt=0, description="how often held amounts and grants time out"
    )
    grant_batch_max: int = Field(1_000, ge=1, description="grant ops per batch")
    grant_batch_within_s: float = Field(0.02, gt=0, description="or this long")
