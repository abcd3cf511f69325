"""HTTP views of the breaker: a session's state (any worker), unfreeze (admin).

`GET /v1/sessions/{id}` is answered by the worker that owns the session's
events partition; another worker forwards the request there once
(`streams.routing`). `POST /v1/sessions/{id}/unfreeze` needs the admin bearer
token; it produces an `unfreeze` command to `spend.admin`, which the owner
applies and answers with an `unfrozen` record on the trip topic.
"""

import hmac
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import faust
from faust.web import Request, Response, View

from models.breaker import SessionState, describe_trip
from models.codec import dumps, loads
from models.errors import InvalidRecord
from models.records import AdminCommand
from streams.admin import send_command, unfreeze_command
from streams.routing import FORWARDED_HEADER

if TYPE_CHECKING:
    from streams.breaker_service import BreakerService

JSON = "application/json"
NO_TOKEN = (
    "admin calls are disabled: no admin token is configured on this worker; "
    "set SPENDSTREAM_ADMIN_TOKEN on every worker to enable them"
)
BAD_TOKEN = "missing or wrong admin token; send Authorization: Bearer <admin token>"


def session_body(service: "BreakerService", session_id: str) -> dict[str, Any]:
    """What the owner says of a session: state, windows, trip and its reason."""
    _, state = service.processor.lookup(session_id)
    shown = state or SessionState.new(session_id, service.breaker.policy.window_spec)
    body = shown.view()
    trip = shown.trip
    body["reason"] = describe_trip(trip) if trip is not None else None
    body["known"] = state is not None
    body["partition"] = service.partition_of(session_id)
    body["worker"] = service.settings.advertised_url
    return body


async def session_answer(
    service: "BreakerService", session_id: str, forwarded: bool
) -> tuple[int, bytes]:
    """Answer here if this worker owns the session, else forward it once."""
    where, _ = service.processor.lookup(session_id)
    if where == "owned":
        return 200, dumps(session_body(service, session_id))
    partition = service.partition_of(session_id)
    owner = service.routing.owner_of(partition)
    here = service.settings.advertised_url
    if where == "elsewhere" and owner not in (None, here) and not forwarded:
        assert owner is not None
        path = f"/v1/sessions/{quote(session_id, safe='')}"
        return await service.routing.forward_get(owner, path)
    why = "is being restored here" if where == "restoring" else "has no owner now"
    error = f"partition {partition} of session {session_id} {why}; retry shortly"
    return 503, dumps({"error": error})


def token_status(header: str | None, token: str | None) -> int | None:
    """403 without a configured token, 401 for a missing or wrong one, else None."""
    if not token:
        return 403
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        return 401
    return None


async def unfreeze_answer(
    service: "BreakerService", request: Request, session_id: str
) -> tuple[int, dict[str, Any]]:
    """Check the token, then produce the unfreeze command (202) or say why not."""
    refused = token_status(
        request.headers.get("Authorization"), service.settings.admin_token
    )
    if refused is not None:
        return refused, {"error": NO_TOKEN if refused == 403 else BAD_TOKEN}
    try:
        command = await _command_from(request, session_id)
    except InvalidRecord as exc:
        return 400, {"error": exc.reason}
    await send_command(service.producer(), service.settings, command)
    note = "the session's owner publishes the unfrozen record on the trip topic"
    return 202, {"status": "accepted", "command": command.to_json_dict(), "note": note}


async def _command_from(request: Request, session_id: str) -> AdminCommand:
    """The unfreeze command; an optional JSON body may say who asks (`by`)."""
    raw = await request.read()
    by = loads(raw).get("by") if raw.strip() else None
    return unfreeze_command(session_id, by or "http")


def install_session_routes(app: faust.App, service: "BreakerService") -> None:
    """Register the session views on `app`."""

    @app.page("/v1/sessions/{session_id}")
    class SessionView(View):  # type: ignore[misc]
        async def get(self, request: Request, session_id: str) -> Response:
            forwarded = FORWARDED_HEADER in request.headers
            status, body = await session_answer(service, session_id, forwarded)
            headers = {"Retry-After": "1"} if status == 503 else None
            return self.bytes(body, status=status, content_type=JSON, headers=headers)

    @app.page("/v1/sessions/{session_id}/unfreeze")
    class UnfreezeView(View):  # type: ignore[misc]
        async def post(self, request: Request, session_id: str) -> Response:
            status, body = await unfreeze_answer(service, request, session_id)
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return self.json(body, status=status, headers=headers)
