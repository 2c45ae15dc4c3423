"""Live session events for many listeners: one database poll per watched session, and limits on open streams.

Every ``GET /v1/sessions/{id}/events`` stream used to poll the store on its own, twice a second: 1,000 open streams
made 2,000 reads a second, and an ordinary GET went from 130 ms to 4.3 s. Here a stream takes a *slot* (at most
``max_event_streams_per_token`` per token and ``max_event_streams`` per server process; beyond them it is refused
with a 429 or 503 problem and a Retry-After) and subscribes to its session's *watch*: one task per watched session
that reads it every ``poll_s`` and wakes the listeners when its generation, status or best score changes. The watch
stops when its last listener leaves, when the session is gone, or when the server is asked to stop.

A slot is released exactly once, by whoever ends first: the stream's response when it finishes (the client went
away, the watch closed), or the route when the stream never starts (an unknown session).

TooManyStreams(DomainError)    this token has its limit of streams open (429; Retry-After)
EventStreamsFull(DomainError)  the server has its limit of streams open (503; Retry-After)
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from evostim.protocol import SessionPublic
from evostim.server.ops.observability import EVENT_STREAMS
from evostim.server.sessions.errors import DomainError, NotFound

__all__ = ["RETRY_AFTER_S", "EventHub", "EventStreamsFull", "StreamLimits", "Subscription", "TooManyStreams"]

RETRY_AFTER_S = 5  # what a refused stream's Retry-After says: streams are held for minutes, so not sooner

log = logging.getLogger("evostim.events")

State = tuple[int, str, float | None]


def state_of(session: SessionPublic) -> State:
    """What a listener is told about: a change of generation, status or best score."""
    return session.generation, session.status, session.best_score


class TooManyStreams(DomainError):
    """This token already has its limit of event streams open (``limit``, ``retry_after``)."""


class EventStreamsFull(DomainError):
    """The server already has its limit of event streams open (``limit``, ``retry_after``)."""


@dataclass(frozen=True, kw_only=True)
class StreamLimits:
    """How many event streams may be open at once: per token (owner) and in this server process."""

    per_token: int
    per_server: int


class _Watch:
    """One session's poll, shared by every listener on it."""

    def __init__(self, session_id: str, first: SessionPublic) -> None:
        self.session_id = session_id
        self.latest = first
        self.version = 0
        self.closed = False
        self.listeners = 0
        self.task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    def publish(self, session: SessionPublic) -> None:
        if state_of(session) == state_of(self.latest):
            return
        self.latest = session
        self.version += 1
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_past(self, version: int, timeout: float) -> bool:
        """Wait until the watch has moved past ``version`` or closed (True), or ``timeout`` seconds passed (False)."""
        if self.version != version or self.closed:
            return True
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            return False
        return True


@dataclass(eq=False)
class Subscription:
    """One stream's place: its slot in the limits and its seat at its session's watch; ``close()`` frees both."""

    _hub: EventHub
    owner: str
    _watch: _Watch | None = None
    _closed: bool = field(default=False, init=False)

    async def updates(self, last: SessionPublic, *, heartbeat_s: float) -> AsyncGenerator[SessionPublic | None, None]:
        """Each change after ``last`` (what this listener was shown first), or None after ``heartbeat_s`` of quiet."""
        watch = self._watch
        if watch is None:
            return
        shown, version = state_of(last), watch.version
        while not watch.closed:
            if not await watch.wait_past(version, heartbeat_s):
                yield None
                continue
            version = watch.version
            if not watch.closed and state_of(watch.latest) != shown:
                shown = state_of(watch.latest)
                yield watch.latest

    def close(self) -> None:
        """Leave the watch and free the slot (once; later calls do nothing)."""
        if not self._closed:
            self._closed = True
            self._hub.release(self)


class EventHub:
    """The process's event streams: their limits, and one polling watch per session that has listeners.

    ``read(session_id)`` reads a session for the watch (every listener was authorized by its own first read);
    ``stopping()`` says the server is shutting down, and every watch then closes within ``poll_s``.
    """

    def __init__(
        self,
        read: Callable[[str], SessionPublic],
        limits: StreamLimits,
        *,
        poll_s: float,
        stopping: Callable[[], bool],
    ) -> None:
        self._read = read
        self._limits = limits
        self._poll_s = poll_s
        self._stopping = stopping
        self._per_owner: Counter[str] = Counter()
        self._watches: dict[str, _Watch] = {}

    @property
    def open_streams(self) -> int:
        return self._per_owner.total()

    @property
    def watched_sessions(self) -> int:
        return len(self._watches)

    def reserve(self, owner: str) -> Subscription:
        """A slot for one more stream of ``owner``, or TooManyStreams / EventStreamsFull."""
        if self._per_owner[owner] >= self._limits.per_token:
            raise TooManyStreams(
                f"this token already has {self._limits.per_token} event streams open, the most it may "
                "(EVOSTIM_MAX_EVENT_STREAMS_PER_TOKEN); close one, or retry later",
                limit=self._limits.per_token,
                retry_after=RETRY_AFTER_S,
            )
        if self.open_streams >= self._limits.per_server:
            raise EventStreamsFull(
                f"the server already has {self._limits.per_server} event streams open, the most it serves "
                "(EVOSTIM_MAX_EVENT_STREAMS); retry later",
                limit=self._limits.per_server,
                retry_after=RETRY_AFTER_S,
            )
        self._per_owner[owner] += 1
        EVENT_STREAMS.inc()
        return Subscription(self, owner)

    def join(self, subscription: Subscription, session_id: str, first: SessionPublic) -> None:
        """Seat ``subscription`` at ``session_id``'s watch, starting the watch (``first``: the session now) if new."""
        watch = self._watches.get(session_id)
        if watch is None:
            watch = self._watches[session_id] = _Watch(session_id, first)
            watch.task = asyncio.get_running_loop().create_task(self._poll(watch), name=f"events:{session_id}")
        watch.listeners += 1
        subscription._watch = watch

    def release(self, subscription: Subscription) -> None:
        self._per_owner[subscription.owner] -= 1
        if self._per_owner[subscription.owner] <= 0:
            del self._per_owner[subscription.owner]
        EVENT_STREAMS.dec()
        watch, subscription._watch = subscription._watch, None
        if watch is not None:
            watch.listeners -= 1
            if watch.listeners <= 0:
                self._forget(watch)

    def _forget(self, watch: _Watch) -> None:
        watch.close()
        if self._watches.get(watch.session_id) is watch:
            del self._watches[watch.session_id]
        if watch.task is not None and watch.task is not asyncio.current_task():
            watch.task.cancel()

    async def _poll(self, watch: _Watch) -> None:
        try:
            while not watch.closed:
                await asyncio.sleep(self._poll_s)
                if self._stopping():
                    return
                watch.publish(await run_in_threadpool(self._read, watch.session_id))
        except NotFound:
            return  # the session went away: nothing more to watch
        except Exception:  # a database that failed: its listeners' streams end, and their clients reconnect
            log.exception("the event stream's poll of session %s failed", watch.session_id)
        finally:
            self._forget(watch)
