"""Refuse request bodies over a size limit with 413, before anything parses them.

A declared ``Content-Length`` over the limit is answered at once, without reading the
body. A body without one (``Transfer-Encoding: chunked``) is counted as it arrives; once
it passes the limit, reading it raises an :class:`~server.errors.APIError` (413), which
the app's error handler turns into the response. Either way at most ``max_bytes`` (plus
one network chunk) of a body is ever held in memory.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import APIError, respond


def too_large(max_bytes: int) -> APIError:
    return APIError(413, f"the request body is larger than this server's limit of "
                         f"{max_bytes} bytes (--max-request-bytes)", code="request_too_large")


class BodySizeLimit:
    """ASGI middleware: HTTP bodies longer than ``max_bytes`` get a 413."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            response = respond(too_large(self.max_bytes))
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
