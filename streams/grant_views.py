"""The grants HTTP API: a grant's numbers, and the gateway's authorize call.

- `GET /v1/grants/{grant_id}`: limit, spent, reserved, balance, parent,
  children, status; 404 for a grant no one opened;
- `POST /v1/grants/{grant_id}/authorize` with `{"amount_usd": "0.10"}` (and
  optionally `reservation_id`, `hold_s`): 200 with the reservation, 402 with
  the balance and the reason, 400 for a bad body.

Any worker answers: the call goes to the owner of the grant's partition
(`streams.table_routing`). While partitions move the answer is 503: retry.
"""

from datetime import UTC, datetime

import faust
from faust.web import Request, Response, View

from models.errors import InvalidRecord
from models.grant_api import authorize_answer, authorize_request
from streams.grant_book import GrantBook
from streams.table_routing import forward, retry_later

RETRY = "the grant's partition is moving between workers; retry"


def install_grant_views(app: faust.App, table: faust.Table, book: GrantBook) -> None:
    """Register the grants views on `app`."""

    def settling() -> bool:
        moving = app.rebalancing or getattr(app, "in_recovery", False)
        return bool(moving) or not book.routable()

    @app.page("/v1/grants/{grant_id}")
    class GrantView(View):  # type: ignore[misc]
        async def get(self, request: Request, grant_id: str) -> Response:
            if settling():
                return retry_later(self, RETRY)
            response: Response = await self.routed(request, grant_id=grant_id)
            return response

        @app.table_route(table=table, match_info="grant_id")  # type: ignore[misc]
        async def routed(self, request: Request, grant_id: str) -> Response:
            if not book.owns(grant_id):
                return retry_later(self, RETRY)
            view = book.view(grant_id)
            if view is None:
                return self.json({"error": f"unknown grant {grant_id}"}, status=404)
            return self.json(view)

    @app.page("/v1/grants/{grant_id}/authorize")
    class Authorize(View):  # type: ignore[misc]
        async def post(self, request: Request, grant_id: str) -> Response:
            body = await request.read()
            if settling():
                return retry_later(self, RETRY)
            routed = await forward(self, table, grant_id.encode(), request, body)
            if routed is not None:
                return routed
            try:
                asked = authorize_request(body)
            except InvalidRecord as exc:
                return self.json({"error": exc.reason}, status=400)
            if not book.owns(grant_id):
                return retry_later(self, RETRY)
            result = await book.authorize(grant_id, asked, datetime.now(UTC))
            return self.json(authorize_answer(result), status=result.http_status)
