"""Any worker answers for any key: a request goes to the owner of its partition.

Faust's `app.table_route` decorator does this for GET. It forwards a request
without its body, so a POST goes through `forward` instead, which finds the
owner the same way (`app.router.key_store`) and sends the body along. A
forwarded request carries `FORWARDED_HEADER` and is answered where it lands:
while partitions move, two workers may disagree, and bouncing could loop.
"""

import logging

import aiohttp
import faust
from faust.web import Request, Response, View

from streams.routing import FORWARDED_HEADER

log = logging.getLogger(__name__)

FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=10.0)


def retry_later(
    view: View, error: str = "partitions are being assigned; retry"
) -> Response:
    """503 with Retry-After: the key's partition has no settled owner yet."""
    return view.json({"error": error}, status=503, headers={"Retry-After": "1"})


async def forward(
    view: View, table: faust.Table, key: bytes, request: Request, body: bytes
) -> Response | None:
    """The owner's answer to this request, or None when this worker owns `key`."""
    if request.headers.get(FORWARDED_HEADER):
        return None
    app = view.app
    try:
        owner = app.router.key_store(table.name, key)
    except (KeyError, TypeError):  # no assignment, or no metadata, yet
        return retry_later(view)
    here = app.conf.canonical_url
    if (owner.host, owner.port) == (here.host, here.port):
        return None
    url = request.url.with_host(owner.host).with_port(owner.port)
    headers = {
        "Content-Type": request.headers.get("Content-Type", "application/json"),
        FORWARDED_HEADER: str(here),
    }
    log.debug("forwarding key=%r to=%s", key, url)
    async with app.http_client.request(
        method=request.method,
        url=url,
        data=body,
        headers=headers,
        timeout=FORWARD_TIMEOUT,
    ) as answer:
        text = await answer.text()
        return view.text(text, content_type=answer.content_type, status=answer.status)
