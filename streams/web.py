"""The worker's HTTP API: health and metrics (later capabilities add their views)."""

from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import generate_latest

from streams.ingest import EventIngest

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"


def install_routes(app: faust.App, ingest: EventIngest) -> None:
    """Register the worker's views on `app`."""

    @app.page("/healthz")
    class Health(View):  # type: ignore[misc]
        async def get(self, request: Request) -> Response:
            body: dict[str, Any] = {"status": "ok", "events": ingest.progress()}
            return self.json(body)

    @app.page("/metrics")
    class Metrics(View):  # type: ignore[misc]
        async def get(self, request: Request) -> Response:
            return self.bytes(generate_latest(), content_type=METRICS_CONTENT_TYPE)
