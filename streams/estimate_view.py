"""`POST /v1/estimate` and `GET /v1/shadow`, answered from the loaded model.

A request is read up to `estimate_max_body_bytes` (413 past it, before the
rest is read), decoded, validated and estimated (`models.estimate`). Bad
input is answered 400 (not JSON), 413 (too large) or 422 (invalid features),
never a crash, and the model is only read, never taught.
"""

import time
from typing import Any

import faust
from faust.web import Request, Response, View

from models.codec import loads
from models.errors import InvalidRecord, InvalidTask
from models.estimate import TaskLimits, estimate_task
from streams import metrics
from streams.shadow_learner import ShadowLearnerService
from streams.shadow_reader import ShadowReader

CHUNK_BYTES = 64 * 1024


def install_shadow_views(
    app: faust.App,
    reader: ShadowReader,
    learner: ShadowLearnerService,
    limits: TaskLimits,
    max_body_bytes: int,
    agents: frozenset[str],
) -> None:
    """Register the estimate and the shadow status views on `app`."""

    @app.page("/v1/estimate")
    class Estimate(View):  # type: ignore[misc]
        async def post(self, request: Request) -> Response:
            started_s = time.perf_counter()
            raw = await read_body(request, max_body_bytes)
            if raw is None:
                status, body = 413, _too_large(max_body_bytes)
            else:
                status, body = answer(raw, reader, limits, agents)
            outcome = body["decision"] if status == 200 else "rejected"
            metrics.ESTIMATES.labels(outcome).inc()
            metrics.ESTIMATE_SECONDS.observe(time.perf_counter() - started_s)
            return self.json(body, status=status)

    @app.page("/v1/shadow")
    class Shadow(View):  # type: ignore[misc]
        async def get(self, request: Request) -> Response:
            return self.json(
                {"estimator": reader.status(), "learner": learner.status()}
            )


async def read_body(request: Any, max_bytes: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed `max_bytes`."""
    if request.content_length is not None and request.content_length > max_bytes:
        return None
    body = bytearray()
    async for chunk in request.content.iter_chunked(CHUNK_BYTES):
        body += chunk
        if len(body) > max_bytes:
            return None
    return bytes(body)


def answer(
    raw: bytes, reader: ShadowReader, limits: TaskLimits, agents: frozenset[str]
) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body for one request body."""
    model = reader.model  # one model for the whole answer, whatever is loaded next
    known = (agents | model.agents) or None
    try:
        found = estimate_task(model, loads(raw), limits, known_agents=known)
    except InvalidRecord as exc:
        return _status_of(exc), {"error": exc.reason}
    return 200, found.to_json_dict()


def _status_of(exc: InvalidRecord) -> int:
    if exc.kind == "too_large":
        return 413
    return 422 if isinstance(exc, InvalidTask) else 400


def _too_large(max_bytes: int) -> dict[str, Any]:
    reason = (
        f"request body is over the {max_bytes}-byte limit; "
        f"send a shorter prompt or a summary of it"
    )
    return {"error": reason}
