"""Running one worker: topics, the store, the Faust app, until SIGTERM."""

import asyncio
import gc
import logging

import faust

from streams.app import create_app
from streams.settings import Settings
from streams.store import Store
from streams.topics import ensure_topics, topic_specs

log = logging.getLogger(__name__)


def collect_garbage_rarely() -> None:
    """Let a poll's objects die young, and never scan what start-up built again.

    A poll keeps thousands of events alive across CPython's young collections
    (every 700 allocations by default), so they were promoted and set off full
    collections of the whole heap every few polls: 0.3-0.5 s each under load,
    the largest part of the breaker's p99 trip latency.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run a worker in this process until it is stopped; flush on the way out."""
    asyncio.run(ensure_topics(settings, topic_specs(settings)))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(settings.clickhouse)
    try:
        app, ingest = create_app(settings, store)
        collect_garbage_rarely()
        asyncio.set_event_loop(asyncio.new_event_loop())
        worker = faust.Worker(app, ingest, loglevel=loglevel, quiet=True)
        # Faust's terminal spinner sets the root logger to DEBUG at loglevel
        # warn and above, for good: every library's debug call then builds a
        # record (measured: ~0.4 ms per authorization). No spinner, no DEBUG.
        worker.spinner = None
        worker.execute_from_commandline()
    finally:
        store.close()
