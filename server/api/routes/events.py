"""Server-sent events for live views: GET /v1/sessions/{id}/events.

The session's generation, status and best score are polled from the store (through the service), so a stream sees
changes made by any server process on the same database; one poll per session serves all its streams, and how many
streams may be open is bounded (``event_hub.py``). Each change is one ``data: <session JSON>`` event (the first is
sent at once); a comment line after ``HEARTBEAT_S`` of quiet keeps proxies from closing an idle stream. The stream
ends when the client goes away or the server is shutting down, so uvicorn's graceful shutdown is never held up.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import AsyncIterator, Callable
from functools import partial
from types import FrameType
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from evostim.protocol import SessionPublic
from evostim.server.api.event_hub import EventHub, StreamLimits, Subscription
from evostim.server.api.problems import PROBLEM_JSON
from evostim.server.api.routes.deps import Owner, Service
from evostim.server.config import Settings
from evostim.server.ops.auth import ANY_OWNER
from evostim.server.sessions.service import SessionService

__all__ = ["HEARTBEAT_S", "POLL_S", "router", "shutting_down"]

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])

POLL_S = 0.5
HEARTBEAT_S = 15.0
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"description": "problem details (RFC 9457)", "content": {PROBLEM_JSON: {}}} for code in (401, 404, 429, 503)
}
_STREAM: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "server-sent events: one session per event"}
}


class _Shutdown:
    """Set when the process gets SIGINT/SIGTERM; the previous handler (uvicorn's) still runs."""

    flag = False
    installed = False

    @classmethod
    def install(cls) -> None:
        if cls.installed or threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread (uvicorn runs the loop there)
        cls.installed = True
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, cls._chain(signal.getsignal(sig)))

    @classmethod
    def _chain(cls, previous: Any) -> Callable[[int, FrameType | None], None]:
        def handler(signum: int, frame: FrameType | None) -> None:
            cls.flag = True
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:  # nobody else handles it: do what the signal would have done
                signal.signal(signum, signal.SIG_DFL)
                signal.raise_signal(signum)

        return handler


def shutting_down() -> bool:
    """Whether this process has been asked to stop (event streams then end)."""
    return _Shutdown.flag


def _event(session: SessionPublic) -> str:
    return f"data: {session.model_dump_json()}\n\n"


async def _stream(subscription: Subscription, first: SessionPublic) -> AsyncIterator[str]:
    yield _event(first)
    async for session in subscription.updates(first, heartbeat_s=HEARTBEAT_S):
        yield ": heartbeat\n\n" if session is None else _event(session)


class _EventStream(StreamingResponse):
    """The stream's answer; when it ends, however it ends (the client left, the watch closed), its slot is freed."""

    def __init__(self, subscription: Subscription, first: SessionPublic) -> None:
        super().__init__(
            _stream(subscription, first),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._subscription = subscription

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._subscription.close()


def _hub(request: Request) -> EventHub:
    """The app's event hub, made on the first stream (the store, and the service, exist once the app started)."""
    hub: EventHub | None = getattr(request.app.state, "event_hub", None)
    if hub is None:
        settings: Settings = request.app.state.settings
        service: SessionService = request.app.state.service
        limits = StreamLimits(per_token=settings.max_event_streams_per_token, per_server=settings.max_event_streams)
        hub = EventHub(partial(service.get_session, ANY_OWNER), limits, poll_s=POLL_S, stopping=shutting_down)
        request.app.state.event_hub = hub
    return hub


@router.get("/{session_id}/events", response_class=StreamingResponse, responses={**_PROBLEMS, **_STREAM})
async def session_events(session_id: str, request: Request, owner: Owner, service: Service) -> StreamingResponse:
    """The session (as in GET /v1/sessions/{id}) now and after each change of generation, status or best score.

    Read it with ``fetch`` (or curl -N) to send the bearer token; reconnect when it drops. A token may hold
    EVOSTIM_MAX_EVENT_STREAMS_PER_TOKEN streams at once (a 429 beyond), the server EVOSTIM_MAX_EVENT_STREAMS (a 503).
    """
    _Shutdown.install()
    hub = _hub(request)
    subscription = hub.reserve(owner)  # refused before any database read
    try:
        # an unknown (or another owner's) session is a 404 before any stream
        first = await run_in_threadpool(service.get_session, owner, session_id)
        hub.join(subscription, session_id, first)
    except BaseException:
        subscription.close()
        raise
    return _EventStream(subscription, first)
