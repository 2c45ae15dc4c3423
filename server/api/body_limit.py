"""A request body bigger than the server takes is refused with a 413 problem before it is read or parsed.

Pure ASGI, outside the routes: a declared ``Content-Length`` above the limit is answered at once, without reading
a byte of the body; a body without one (chunked) is counted as it streams, and the read that crosses the limit
raises ``BodyTooLarge``, so the route never parses it. Either way the answer is ``application/problem+json``.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from evostim.server.api.problems import problem_response

__all__ = ["BodyLimit", "BodyTooLarge"]


class BodyTooLarge(HTTPException):
    """Raised by the body's reader when the streamed bytes pass the limit (the problem handlers answer it)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _detail(limit))


def _detail(limit: int) -> str:
    return (
        f"the request body is larger than this server takes ({limit} bytes, EVOSTIM_MAX_BODY_BYTES); "
        "send fewer codes or repetitions per request"
    )


def _declared_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    return int(value) if value is not None and value.isdigit() else None


class BodyLimit:
    """Refuse request bodies above ``max_bytes`` with 413 (problem+json), before the app reads them."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self._app = app
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self._max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max_bytes:
                    raise BodyTooLarge(self._max_bytes)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, counted, tracked)
        except BodyTooLarge:
            if started:  # the app read its body while answering: too late for a 413
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The connection is closed after the answer: the unread rest of the body is never taken in.
        answer = problem_response(
            413, "content-too-large", _detail(self._max_bytes), scope.get("path", ""), headers={"Connection": "close"}
        )
        await answer(scope, receive, send)
