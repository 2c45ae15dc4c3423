"""Keyed creation: a session creation or fork retried with its Idempotency-Key makes one session, never two."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import counts_for
from tests.test_api import assert_problem

CONFIG: dict[str, Any] = {"population_size": 4, "seed": 3, "references": {"builtin": 1}}


def test_if_a_creation_retried_with_its_key_answers_the_same_session_and_makes_no_other(api: TestClient) -> None:
    first = api.post("/v1/sessions", json=CONFIG, headers={"Idempotency-Key": "create-1"})
    again = api.post("/v1/sessions", json=CONFIG, headers={"Idempotency-Key": "create-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert api.get("/v1/sessions").json()["total"] == 1


def test_if_the_same_key_with_another_body_is_refused_and_creates_nothing(api: TestClient) -> None:
    assert api.post("/v1/sessions", json=CONFIG, headers={"Idempotency-Key": "k"}).status_code == 201
    other = api.post("/v1/sessions", json={**CONFIG, "seed": 4}, headers={"Idempotency-Key": "k"})
    assert_problem(other, 409, "different request body")
    assert other.json()["type"] == "/problems/idempotency-key-reused"
    assert api.get("/v1/sessions").json()["total"] == 1


def test_if_an_empty_key_is_refused(api: TestClient) -> None:
    assert_problem(api.post("/v1/sessions", json=CONFIG, headers={"Idempotency-Key": ""}), 422, "idempotency-key")
    assert api.get("/v1/sessions").json()["total"] == 0


def test_if_keys_belong_to_their_token(make_api: Any) -> None:
    api = make_api(tokens=["lab-a", "lab-b"])
    a = api.post("/v1/sessions", json=CONFIG, headers={"Idempotency-Key": "k", "Authorization": "Bearer lab-a"})
    b = api.post("/v1/sessions", json=CONFIG, headers={"Idempotency-Key": "k", "Authorization": "Bearer lab-b"})
    assert a.status_code == b.status_code == 201
    assert a.json()["session"]["id"] != b.json()["session"]["id"]


def test_if_a_fork_retried_with_its_key_makes_one_fork_even_after_the_source_moved_on(api: TestClient) -> None:
    parent = api.post("/v1/sessions", json=CONFIG).json()
    sid = parent["session"]["id"]
    assert api.post(f"/v1/sessions/{sid}/generations/0/responses", json=counts_for(parent["generation"])).is_success
    first = api.post(f"/v1/sessions/{sid}/fork", json={"best": 2}, headers={"Idempotency-Key": "fork-1"})
    nxt = api.get(f"/v1/sessions/{sid}/generations/1").json()
    assert api.post(f"/v1/sessions/{sid}/generations/1/responses", json=counts_for(nxt)).is_success
    again = api.post(f"/v1/sessions/{sid}/fork", json={"best": 2}, headers={"Idempotency-Key": "fork-1"})
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert api.get("/v1/sessions").json()["total"] == 2


def test_if_concurrent_creations_with_one_key_make_exactly_one_session(api: TestClient) -> None:
    def post(_: int) -> tuple[int, str | None]:
        answer = api.post("/v1/sessions", json=CONFIG, headers={"Idempotency-Key": "race"})
        body = answer.json()
        return answer.status_code, body.get("session", {}).get("id") if answer.status_code == 201 else body["type"]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(post, range(4)))
    assert api.get("/v1/sessions").json()["total"] == 1
    created = {sid for status, sid in results if status == 201}
    assert len(created) == 1, results
    # A loser of the race is told to retry (a retryable conflict), and its retry replays the winner.
    assert all(status == 201 or sid == "/problems/conflict" for status, sid in results), results
