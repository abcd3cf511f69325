"""The Faust app of one worker, with its services and views."""

import faust

from streams.breaker_service import install_breaker
from streams.breaker_web import install_session_routes
from streams.chargeback_api import install_chargeback_api
from streams.grants import install_grants
from streams.ingest import EventIngest
from streams.ledger import LedgerProcessor
from streams.positions import install_positions
from streams.settings import Settings
from streams.shadow import install_shadow
from streams.store import Store
from streams.web import install_routes


def broker_urls(bootstrap: str) -> list[str]:
    """Faust's broker URLs for comma-separated bootstrap servers."""
    return [f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip()]


def create_app(settings: Settings, store: Store) -> tuple[faust.App, EventIngest]:
    """The worker's Faust app and the batch ingest it hosts."""
    app = faust.App(
        settings.app_id,
        broker=broker_urls(settings.kafka),
        store="memory://",
        datadir=str(settings.data_dir / settings.app_id),
        web_host=settings.web_host,
        web_bind=settings.web_bind or settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        topic_partitions=settings.output_partitions,
        topic_replication_factor=settings.replication_factor,
        producer_max_request_size=settings.max_message_bytes,
        consumer_auto_offset_reset="earliest",
        autodiscover=False,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
    )
    ingest = EventIngest(settings, store)
    ingest.processors.append(LedgerProcessor(settings, store, ingest))
    install_session_routes(app, install_breaker(settings, store, ingest))
    install_routes(app, ingest)
    install_chargeback_api(app, install_positions(app, settings))
    install_shadow(app, ingest, settings, store)
    install_grants(app, settings, store, ingest)

    @app.on_before_shutdown.connect
    async def flush_first(app: faust.App, **kwargs: object) -> None:
        # The worker stops the app before its other services; the events
        # path must flush while Kafka clients are still up.
        await ingest.stop()

    return app, ingest
