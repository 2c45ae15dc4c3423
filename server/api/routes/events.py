"""Server-sent events for live views: GET /v1/sessions/{id}/events.

The stream polls the store (through the service) for the session's generation, status and best score, so it sees
changes made by any server process on the same database. Each change is one ``data: <session JSON>`` event (the
first is sent at once); a comment line every ``HEARTBEAT_S`` keeps proxies from closing an idle stream. The stream
ends when the client goes away or the server is shutting down, so uvicorn's graceful shutdown is never held up.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from evostim.protocol import SessionPublic
from evostim.server.api.problems import PROBLEM_JSON
from evostim.server.api.routes.deps import Owner, Service
from evostim.server.sessions.errors import NotFound

__all__ = ["HEARTBEAT_S", "POLL_S", "router", "shutting_down"]

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])

POLL_S = 0.5
HEARTBEAT_S = 15.0
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"description": "problem details (RFC 9457)", "content": {PROBLEM_JSON: {}}} for code in (401, 404)
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


def _state(session: SessionPublic) -> tuple[int, str, float | None]:
    return session.generation, session.status, session.best_score


def _event(session: SessionPublic) -> str:
    return f"data: {session.model_dump_json()}\n\n"


async def _stream(request: Request, read: Callable[[], SessionPublic], first: SessionPublic) -> AsyncIterator[str]:
    last = _state(first)
    yield _event(first)
    quiet_since = time.monotonic()
    while not shutting_down() and not await request.is_disconnected():
        await asyncio.sleep(POLL_S)
        try:
            session = await run_in_threadpool(read)
        except NotFound:
            return  # the session went away: nothing more to watch
        if _state(session) != last:
            last = _state(session)
            quiet_since = time.monotonic()
            yield _event(session)
        elif time.monotonic() - quiet_since >= HEARTBEAT_S:
            quiet_since = time.monotonic()
            yield ": heartbeat\n\n"


@router.get("/{session_id}/events", response_class=StreamingResponse, responses={**_PROBLEMS, **_STREAM})
async def session_events(session_id: str, request: Request, owner: Owner, service: Service) -> StreamingResponse:
    """The session (as in GET /v1/sessions/{id}) now and after each change of generation, status or best score.

    Read it with ``fetch`` (or curl -N) to send the bearer token; reconnect when it drops.
    """
    _Shutdown.install()

    def read() -> SessionPublic:
        return service.get_session(owner, session_id)

    first = await run_in_threadpool(read)  # an unknown (or another owner's) session is a 404 before any stream
    return StreamingResponse(
        _stream(request, read, first),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
