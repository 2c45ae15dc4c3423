"""Connections the server can afford: slow and idle clients timed out, a cap on open connections, the fd budget.

uvicorn's HTTP protocols time out only the idle wait *between* requests (``timeout_keep_alive``), and every byte
received restarts that wait: a client sending a byte a second holds its connection, and its file descriptor, for
ever (1,500 such clients were all still open after 40 s; with the common 1,024-descriptor limit, 1,100 of them
locked every other client out). ``GuardedH11Protocol`` is uvicorn's h11 protocol with three additions:

- a request's line and headers must all arrive within ``header_timeout_s`` of its first byte (of the connection's
  opening, for its first request: a connection that sends nothing is closed too), and its body within
  ``body_timeout_s`` of its headers; a connection past either deadline is closed. A response, however long (an
  event stream), is never timed: the deadlines cover receiving a request, not answering it;
- beyond ``max_connections`` open connections, a new one is answered 503 (problem+json, Retry-After) and closed at
  once, so it holds no descriptor (uvicorn's ``limit_concurrency`` answers only once the headers are in, so an
  over-limit slow client would hold its descriptor until then);
- ``max_connections`` is capped by the descriptor budget: the soft ``RLIMIT_NOFILE``, raised to the hard limit at
  start (``raise_open_files_limit``), less ``FD_RESERVE`` for the database, files and threads.

A reverse proxy in front (nginx, Caddy: README, "Running in a lab") does the same for many more clients; these are
the server's own bounds for when it faces the network itself. Closed and refused connections are counted in
``evostim_connections_closed_total{reason}`` and logged by ``evostim.connections`` at a bounded rate.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

from prometheus_client import Counter
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from evostim.server.config import Settings, get_settings

__all__ = [
    "CONNECTIONS_CLOSED",
    "FD_RESERVE",
    "PROTOCOL",
    "ConnectionLimits",
    "GuardedH11Protocol",
    "configure_connections",
    "raise_open_files_limit",
]

# Descriptors kept for everything but client connections: the database pool (SQLite's file, WAL and shared memory
# per connection), the thread pool's files, logs, generator weights, the listening sockets.
FD_RESERVE: Final = 256
PROTOCOL: Final = "evostim.server.ops.connections:GuardedH11Protocol"  # uvicorn's ``http`` option, by name
RETRY_AFTER_S: Final = 5

CONNECTIONS_CLOSED: Final = Counter(
    "evostim_connections_closed",
    "Connections the server closed itself: a request's headers or body too slow, or over the connection cap",
    ["reason"],
)

log = logging.getLogger("evostim.connections")

Phase = Literal["headers", "body"]


def raise_open_files_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY:
        return soft if soft != resource.RLIM_INFINITY else 2**20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # a platform that refuses: keep what there is
            pass
    return soft


@dataclass(frozen=True, kw_only=True)
class ConnectionLimits:
    """How long a request may take to arrive, and how many connections may be open (in this process)."""

    header_timeout_s: float
    body_timeout_s: float
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings, *, open_files: int) -> ConnectionLimits:
        """The settings' limits, the connection cap lowered to fit ``open_files`` descriptors (less the reserve)."""
        budget = max(open_files - FD_RESERVE, 16)
        return cls(
            header_timeout_s=settings.request_header_timeout_s,
            body_timeout_s=settings.request_body_timeout_s,
            max_connections=min(settings.max_connections, budget),
        )


def configure_connections(settings: Settings) -> ConnectionLimits:
    """Raise the descriptor limit and set the limits every connection of this process gets; returns them."""
    limits = ConnectionLimits.from_settings(settings, open_files=raise_open_files_limit())
    GuardedH11Protocol.limits = limits
    return limits


_REFUSAL: Final = (
    b'{"type":"/problems/too-many-connections","title":"Service Unavailable","status":503,'
    b'"detail":"the server has as many connections open as it serves (EVOSTIM_MAX_CONNECTIONS); retry later",'
    b'"retryable":true}'
)
_REFUSAL_RESPONSE: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n"
    + f"retry-after: {RETRY_AFTER_S}\r\ncontent-length: {len(_REFUSAL)}\r\n".encode()
    + b"connection: close\r\n\r\n"
    + _REFUSAL
)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with deadlines on receiving each request and a cap on open connections."""

    limits: ClassVar[ConnectionLimits | None] = None  # set by configure_connections; else from this process's settings

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._limits = self._process_limits()
        self._deadline: asyncio.TimerHandle | None = None
        self._phase: Phase | None = None

    @classmethod
    def _process_limits(cls) -> ConnectionLimits:
        if (
            cls.limits is None
        ):  # a worker process of `evostim serve --workers N`: its settings come from the environment
            return configure_connections(get_settings())
        return cls.limits

    # -- the protocol's events ---------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._limits.max_connections:
            self._refuse()
            return
        self._arm("headers")

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
            self._arm("headers")  # the first byte of the next request on a kept-alive connection
        before = self.cycle
        super().data_received(data)
        self._follow(before)

    def on_response_complete(self) -> None:
        before = self.cycle
        super().on_response_complete()  # may start a pipelined request already received
        self._follow(before)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self, event: Any) -> None:
        self._disarm()  # the connection is the WebSocket protocol's from here on
        super().handle_websocket_upgrade(event)

    # -- deadlines ---------------------------------------------------------------------------------------------------
    def _follow(self, before: object) -> None:
        """After parsing: a new request's headers are in (the body's deadline, if a body is to come), or its body is."""
        cycle = self.cycle
        if cycle is None or (cycle is before and self._phase != "body"):
            return
        if not cycle.more_body:
            self._disarm()
        elif cycle is not before:
            self._arm("body")

    def _arm(self, phase: Phase) -> None:
        self._disarm()
        seconds = self._limits.header_timeout_s if phase == "headers" else self._limits.body_timeout_s
        self._phase = phase
        self._deadline = self.loop.call_later(seconds, self._expire, phase)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None
        self._phase = None

    def _expire(self, phase: Phase) -> None:
        self._deadline = None
        self._phase = None
        if self.transport.is_closing():
            return
        CONNECTIONS_CLOSED.labels(f"slow-{phase}").inc()
        seconds = self._limits.header_timeout_s if phase == "headers" else self._limits.body_timeout_s
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown"
        log.warning(
            "closed a connection whose request %s took longer than %g s",
            phase,
            seconds,
            extra={"client": client, "phase": phase, "timeout_s": seconds},
        )
        self.transport.close()

    def _refuse(self) -> None:
        CONNECTIONS_CLOSED.labels("over-cap").inc()
        log.warning(
            "refused a connection: %d open, the most this process serves",
            self._limits.max_connections,
            extra={"max_connections": self._limits.max_connections},
        )
        self.transport.write(_REFUSAL_RESPONSE)
        self.transport.close()
