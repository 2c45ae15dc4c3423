"""The event hub: one poll per watched session for all its listeners, bounded streams, nothing left behind."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from evostim.protocol import SessionPublic
from evostim.server.api.event_hub import EventHub, EventStreamsFull, StreamLimits, Subscription, TooManyStreams
from evostim.server.sessions.errors import SessionNotFound

POLL_S = 0.02


def _session(session_id: str, generation: int) -> SessionPublic:
    return SessionPublic.model_validate(
        {
            "id": session_id,
            "status": "running",
            "generation": generation,
            "best_score": None if generation == 0 else float(generation),
            "best_stimulus": None,
            "config": {},
            "created_at": "2026-01-01T00:00:00Z",
        }
    )


class FakeStore:
    """Sessions by id, and how many times each was read."""

    def __init__(self) -> None:
        self.generation: dict[str, int] = {}
        self.reads: dict[str, int] = {}

    def read(self, session_id: str) -> SessionPublic:
        self.reads[session_id] = self.reads.get(session_id, 0) + 1
        if session_id not in self.generation:
            raise SessionNotFound(f"no session {session_id}")
        return _session(session_id, self.generation[session_id])


def _hub(
    store: FakeStore, *, per_token: int = 1000, per_server: int = 1000, stop: Callable[[], bool] = bool
) -> EventHub:
    return EventHub(
        store.read, StreamLimits(per_token=per_token, per_server=per_server), poll_s=POLL_S, stopping=lambda: stop()
    )


async def _listen(subscription: Subscription, first: SessionPublic, seen: list[int], *, until: int) -> None:
    async for session in subscription.updates(first, heartbeat_s=60.0):
        if session is not None:
            seen.append(session.generation)
            if session.generation >= until:
                return


def _run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 30.0))


def test_two_hundred_listeners_on_one_session_share_one_poll_and_all_see_each_change() -> None:
    store = FakeStore()
    store.generation["s1"] = 0

    async def scenario() -> None:
        hub = _hub(store)
        subscriptions = [hub.reserve(f"owner{n % 7}") for n in range(200)]
        first = _session("s1", 0)
        for subscription in subscriptions:
            hub.join(subscription, "s1", first)
        seen: list[list[int]] = [[] for _ in subscriptions]
        listeners = [
            asyncio.create_task(_listen(s, first, mine, until=2)) for s, mine in zip(subscriptions, seen, strict=True)
        ]
        await asyncio.sleep(POLL_S * 3)
        store.generation["s1"] = 1
        await asyncio.sleep(POLL_S * 3)
        store.generation["s1"] = 2
        await asyncio.gather(*listeners)
        polls = store.reads["s1"]
        assert polls <= 20, polls  # one read per poll period, not one per listener (200 listeners: >= 1,000)
        assert all(mine == [1, 2] for mine in seen)
        assert hub.watched_sessions == 1
        for subscription in subscriptions:
            subscription.close()
        assert hub.open_streams == 0 and hub.watched_sessions == 0
        await asyncio.sleep(POLL_S * 3)
        assert store.reads["s1"] == polls  # the watch stopped with its last listener

    _run(scenario)


def test_a_token_beyond_its_limit_is_refused_then_served_once_a_stream_closes() -> None:
    async def scenario() -> None:
        hub = _hub(FakeStore(), per_token=2, per_server=3)
        a1, a2 = hub.reserve("a"), hub.reserve("a")
        with pytest.raises(TooManyStreams) as refused:
            hub.reserve("a")
        assert refused.value.extra == {"limit": 2, "retry_after": 5}
        b1 = hub.reserve("b")
        with pytest.raises(EventStreamsFull) as full:
            hub.reserve("c")
        assert full.value.extra["limit"] == 3
        a1.close()
        a1.close()  # a second close frees nothing more
        assert hub.open_streams == 2
        hub.reserve("c").close()
        for subscription in (a2, b1):
            subscription.close()
        assert hub.open_streams == 0

    _run(scenario)


def test_listeners_end_when_the_session_goes_away_and_when_the_server_stops() -> None:
    store = FakeStore()
    store.generation.update({"gone": 0, "kept": 0})
    stopping = False

    async def scenario() -> None:
        nonlocal stopping
        hub = _hub(store, stop=lambda: stopping)
        ends: list[asyncio.Task[None]] = []
        for session_id in ("gone", "kept"):
            subscription = hub.reserve("a")
            hub.join(subscription, session_id, _session(session_id, 0))
            ends.append(asyncio.create_task(_listen(subscription, _session(session_id, 0), [], until=99)))
        del store.generation["gone"]
        await asyncio.wait_for(ends[0], 1.0)  # the first poll finds it gone
        assert not ends[1].done() and hub.watched_sessions == 1
        stopping = True
        await asyncio.wait_for(ends[1], 1.0)
        assert hub.watched_sessions == 0
        assert hub.open_streams == 2  # the slots are the responses' to free, when they end

    _run(scenario)


def test_a_quiet_session_gives_heartbeats() -> None:
    store = FakeStore()
    store.generation["s1"] = 0

    async def scenario() -> None:
        hub = _hub(store)
        subscription = hub.reserve("a")
        hub.join(subscription, "s1", _session("s1", 0))
        updates = subscription.updates(_session("s1", 0), heartbeat_s=POLL_S * 2)
        assert await anext(updates) is None
        store.generation["s1"] = 1
        update = await anext(updates)
        while update is None:
            update = await anext(updates)
        assert update.generation == 1
        await updates.aclose()
        subscription.close()

    _run(scenario)
