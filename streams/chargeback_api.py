"""`GET /v1/chargeback/{department}?period=YYYY-MM`, answered by any worker.

The period is checked where the request arrives (a bad one is a 400 naming
it); the answer comes from the worker that holds the department's partition
of the positions table, which Faust's router forwards the request to.
"""

from typing import Any

import faust
from faust.web import Request, Response, View

from models.errors import InvalidPeriod
from models.periods import parse_period
from streams.positions import load_positions
from streams.table_routing import retry_later


def period_problem(period: str | None) -> str | None:
    """Why `period` cannot be answered, or None when it names a month."""
    if not period:
        return "the period is missing; ask for one month: ?period=YYYY-MM"
    try:
        parse_period(period)
    except InvalidPeriod as exc:
        return str(exc)
    return None


def install_chargeback_api(app: faust.App, table: Any) -> None:
    """Register the chargeback view on `app`, routed by `table`'s keys."""

    @app.page("/v1/chargeback/{department}")
    class Chargeback(View):  # type: ignore[misc]
        async def get(self, request: Request, department: str) -> Response:
            problem = period_problem(request.query.get("period"))
            if problem is not None:
                return self.json({"error": problem}, status=400)
            try:
                answer: Response = await self.owner_answers(
                    request, department=department
                )
            except (KeyError, TypeError):
                # Faust's router, before the table's partitions and metadata
                # are known (a worker starting, a rebalance), fails this way.
                return retry_later(self)
            return answer

        @app.table_route(table=table, match_info="department")
        async def owner_answers(self, request: Request, department: str) -> Response:
            book = load_positions(table, department.encode())
            return self.json(book.answer(request.query["period"]))
