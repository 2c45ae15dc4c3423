"""The store on each backend (SQLite and Postgres): values round-trip equal, and what Postgres cannot store is
refused the same way on both, before anything is written."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from evostim.server.storage.errors import GenerationAlreadyClosed, UnstorableValue
from evostim.server.storage.store import (
    IdempotencyRecord,
    PostInputs,
    ResponseRecord,
    SessionRecord,
    StimulusRecord,
    Store,
)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    yield store
    store.close()


def stimuli(generation: int, count: int = 3) -> list[StimulusRecord]:
    rng = np.random.default_rng(generation)
    return [
        StimulusRecord(f"g{generation}-e{i}", generation, "evolved", i, i, rng.normal(size=8)) for i in range(count)
    ]


def new_session(store: Store, session_id: str = "s_1", **fields: Any) -> SessionRecord:
    record = SessionRecord(
        **{
            "id": session_id,
            "owner": "anonymous",
            "created_at": datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
            "config": {"generator": "dcgan-faces", "metadata": {"notes": "é ☃ \U0001f600"}},
            "status": "running",
            "generation": 0,
            "best_score": None,
            "best_stimulus": None,
            **fields,
        }
    )
    first = stimuli(0)
    store.create_session(record, first, [s.stimulus_id for s in first], b"\x00state")
    return SessionRecord(**{**record.__dict__, "updated_at": record.created_at})  # as stored: active since created


def close_generation(store: Store, session_id: str = "s_1", **fields: Any) -> None:
    following = stimuli(1)
    arguments: dict[str, Any] = {
        "session_id": session_id,
        "closed": 0,
        "responses": [ResponseRecord("g0-e0", 0, False, {"a": [1.0, 2.5]}, 1.75, {"a": [0.5, 0.5]})],
        "summary": {"evolved_mean": 1.75},
        "best": (1.75, "g0-e0"),
        "status": "running",
        "next_stimuli": following,
        "next_order": [s.stimulus_id for s in following],
        "snapshot": b"\x00\xffnext",
        "idempotency": IdempotencyRecord("key-1", "0" * 64, 200, {"next": 1}),
        **fields,
    }
    store.commit_generation(**arguments)


def test_what_goes_in_comes_out_equal(store: Store) -> None:
    record = new_session(store)
    assert store.get_session("s_1") == record
    closed_at = datetime(2024, 5, 1, 12, 41, 7, 250000, tzinfo=UTC)
    close_generation(store, at=closed_at, best_mean=(1.75, 0))
    assert store.get_session("s_1") == SessionRecord(
        **{
            **record.__dict__,
            **{"generation": 1, "best_score": 1.75, "best_stimulus": "g0-e0", "updated_at": closed_at},
            **{"best_mean": 1.75, "best_mean_generation": 0},
        }
    )
    # In UTC, whatever the backend hands back (naive from SQLite, the server's zone from Postgres: here New York).
    assert store.list_sessions("anonymous", limit=1, offset=0)[0][0].created_at.tzinfo is UTC
    [closed, opened] = store.list_generations("s_1")
    assert closed.closed and closed.summary == {"evolved_mean": 1.75} and not opened.closed
    assert closed.opened_at is not None and closed.opened_at.tzinfo is UTC
    assert closed.closed_at is not None and closed.closed_at.tzinfo is UTC
    got = store.get_stimuli("s_1", 0, 1)
    assert [s.stimulus_id for s in got] == [s.stimulus_id for s in stimuli(0) + stimuli(1)]
    assert all(np.array_equal(a.code, b.code) for a, b in zip(got, stimuli(0) + stimuli(1), strict=True))
    assert store.get_responses("s_1", 0, 0) == [
        ResponseRecord("g0-e0", 0, False, {"a": [1.0, 2.5]}, 1.75, {"a": [0.5, 0.5]})
    ]
    assert store.latest_snapshot("s_1", 5) == (1, b"\x00\xffnext")
    replayed = store.get_post_inputs("s_1", 0, "key-1")
    assert replayed is not None and replayed.replay == IdempotencyRecord("key-1", "0" * 64, 200, {"next": 1})
    assert store.count_sessions("running") == 1


def test_what_a_post_reads_comes_in_one_round_trip(store: Store) -> None:
    record = new_session(store)
    opened = store.get_post_inputs("s_1", 0, "a-new-key")
    assert opened is not None and opened.session == record and opened.replay is None
    assert [s.stimulus_id for s in opened.stimuli] == [s.stimulus_id for s in stimuli(0)]
    assert all(np.array_equal(a.code, b.code) for a, b in zip(opened.stimuli, stimuli(0), strict=True))
    unkeyed = store.get_post_inputs("s_1", 0, None)
    assert unkeyed is not None and unkeyed.replay is None and len(unkeyed.stimuli) == len(opened.stimuli)
    # Not the open generation: nothing to score (the post is refused by the session's state alone).
    assert store.get_post_inputs("s_1", 1, None) == PostInputs(record, [], None)
    assert store.get_post_inputs("s_2", 0, "a-new-key") is None


def test_an_image_fetch_reads_its_session_and_stimulus_in_one_statement(store: Store) -> None:
    record = new_session(store)
    found = store.get_image_source("s_1", "g0-e1")
    assert found is not None and found[0] == record and found[1] is not None
    assert found[1].stimulus_id == "g0-e1" and np.array_equal(found[1].code, stimuli(0)[1].code)
    assert store.get_image_source("s_1", "g9-e0") == (record, None)
    assert store.get_image_source("s_2", "g0-e1") is None
    with pytest.raises(UnstorableValue):
        store.get_image_source("s_1", "g0\x00")
    # Its connection goes back to the pool transactional: a commit refused after its first write leaves nothing.
    with pytest.raises(UnstorableValue):
        close_generation(store, idempotency=IdempotencyRecord("key\x00", "0" * 64, 200, {}))
    assert store.get_session("s_1") == record and [g.closed for g in store.list_generations("s_1")] == [False]


def test_a_generation_closes_once(store: Store) -> None:
    new_session(store)
    close_generation(store)
    with pytest.raises(GenerationAlreadyClosed):
        close_generation(store, idempotency=None)


UNSTORABLE_SESSIONS: dict[str, dict[str, Any]] = {
    "NUL in text": {"owner": "lab\x00a"},
    "text longer than its column": {"owner": "x" * 65},
    "an integer beyond 32 bits": {"generation": 2**31},
    "NaN in JSON": {"config": {"metadata": {"gain": math.nan}}},
    "Infinity in JSON": {"config": {"metadata": {"gain": [math.inf]}}},
}


@pytest.mark.parametrize("fields", UNSTORABLE_SESSIONS.values(), ids=list(UNSTORABLE_SESSIONS))
def test_a_value_postgres_cannot_store_is_refused_on_every_backend_and_nothing_is_written(
    store: Store, fields: dict[str, Any]
) -> None:
    with pytest.raises(UnstorableValue):
        new_session(store, **fields)
    assert store.get_session("s_1") is None and store.get_stimuli("s_1", 0) == []


UNSTORABLE_COMMITS: dict[str, dict[str, Any]] = {
    "NaN in a summary": {"summary": {"evolved_mean": math.nan}},
    "NUL in an idempotency key": {"idempotency": IdempotencyRecord("key\x00", "0" * 64, 200, {})},
    "a key longer than its column": {"idempotency": IdempotencyRecord("k" * 256, "0" * 64, 200, {})},
    "NaN in the stored answer": {"idempotency": IdempotencyRecord("key-2", "0" * 64, 200, {"score": math.nan})},
    "NaN in counts": {"responses": [ResponseRecord("g0-e0", 0, False, {"a": [math.nan]}, 1.0)]},
}


@pytest.mark.parametrize("fields", UNSTORABLE_COMMITS.values(), ids=list(UNSTORABLE_COMMITS))
def test_a_commit_with_an_unstorable_value_changes_nothing(store: Store, fields: dict[str, Any]) -> None:
    before = new_session(store)
    with pytest.raises(UnstorableValue):
        close_generation(store, **fields)
    assert store.get_session("s_1") == before
    assert [g.closed for g in store.list_generations("s_1")] == [False]
    assert store.get_responses("s_1", 0, 5) == [] and store.latest_snapshot("s_1", 5) == (0, b"\x00state")


@pytest.mark.parametrize("number", [2**31, -(2**31) - 1, 2**63])
def test_looking_up_an_integer_no_column_can_hold_is_refused_not_a_driver_error(store: Store, number: int) -> None:
    new_session(store)
    with pytest.raises(UnstorableValue):
        store.get_generation("s_1", number)
    with pytest.raises(UnstorableValue):
        store.get_stimuli("s_1", 0, number)


@pytest.mark.parametrize("offset", [2**31, 2**63])
def test_a_page_beyond_every_session_is_empty(store: Store, offset: int) -> None:
    new_session(store)
    assert store.list_sessions("anonymous", limit=10, offset=offset) == ([], 1)
    assert len(store.list_sessions("anonymous", limit=2**63, offset=0)[0]) == 1


def test_looking_up_text_with_a_nul_character_is_refused(store: Store) -> None:
    with pytest.raises(UnstorableValue):
        store.get_session("s_\x00")
    with pytest.raises(UnstorableValue):
        store.get_creation_key("anonymous", "k\x00")


def test_a_store_opens_on_an_in_memory_sqlite_database_which_has_no_connection_pool() -> None:
    store = Store("sqlite://")  # SingletonThreadPool: pool sizes would be a TypeError
    try:
        store.ping()
        assert store.schema_revision() is not None
    finally:
        store.close()
