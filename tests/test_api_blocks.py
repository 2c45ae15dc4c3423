"""Blocks: two sessions ("threads") shown as one interleaved block and answered with one post."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.test_api import assert_problem, create, history


def block_body(block: dict[str, Any], value: float = 5.0, channel: str = "ch0") -> dict[str, Any]:
    return {
        "generations": block["generations"],
        "responses": [{"session": s["session"], "stimulus": s["id"], "counts": {channel: [value, value + 1]}}
                      for s in block["stimuli"]],
    }  # fmt: skip


def two_threads(api: TestClient) -> tuple[str, str]:
    a = create(api, population_size=4, references={"builtin": 1})["session"]["id"]
    b = create(api, population_size=6, optimizer={"name": "ga"}, references={"builtin": 1})["session"]["id"]
    return a, b


def test_a_block_interleaves_both_threads_and_keeps_each_one_s_order(api: TestClient) -> None:
    a, b = two_threads(api)
    block = api.get("/v1/blocks", params={"sessions": f"{a},{b}"}).json()
    assert block == api.get("/v1/blocks", params={"sessions": f"{a},{b}"}).json()  # reproducible
    assert [g["number"] for g in block["generations"]] == [0, 0] and len(block["stimuli"]) == 5 + 7
    assert {(r["session"], r["id"]) for r in block["order"]} == {(s["session"], s["id"]) for s in block["stimuli"]}
    for session_id in (a, b):
        own = api.get(f"/v1/sessions/{session_id}/generations/0").json()["order"]
        assert [r["id"] for r in block["order"] if r["session"] == session_id] == own
    assert {r["session"] for r in block["order"][:6]} == {a, b}  # interleaved, not one after the other


def test_one_post_answers_every_thread_and_a_retry_is_counted_once(api: TestClient) -> None:
    a, b = two_threads(api)
    block = api.get("/v1/blocks", params={"sessions": f"{a},{b}"}).json()
    first = api.post("/v1/blocks/responses", json=block_body(block), headers={"Idempotency-Key": "blk-1"})
    assert first.status_code == 200, first.text
    answer = first.json()
    assert set(answer["accepted"]) == {a, b} and answer["accepted"][b]["measured"] == 7
    assert [g["number"] for g in answer["next"]["generations"]] == [1, 1]
    again = api.post("/v1/blocks/responses", json=block_body(block), headers={"Idempotency-Key": "blk-1"})
    assert again.status_code == 200 and again.json()["accepted"] == answer["accepted"]
    assert api.get(f"/v1/sessions/{a}").json()["generation"] == 1
    second = api.post("/v1/blocks/responses", json=block_body(answer["next"], 7.0))
    assert second.status_code == 200 and [g["number"] for g in second.json()["next"]["generations"]] == [2, 2]


def test_a_block_with_one_bad_share_stores_nothing_for_any_thread(api: TestClient) -> None:
    a, b = two_threads(api)
    block = api.get("/v1/blocks", params={"sessions": f"{a},{b}"}).json()
    body = block_body(block)
    for response in body["responses"]:
        if response["session"] == b:
            response["counts"] = {"wrong": [1.0]}
    before = [history(api, a)["generations"], history(api, b)["generations"]]
    assert_problem(api.post("/v1/blocks/responses", json=body), 422, b, "channels")
    assert [history(api, a)["generations"], history(api, b)["generations"]] == before
    api.post(f"/v1/sessions/{b}/stop")
    assert_problem(api.post("/v1/blocks/responses", json=block_body(block)), 409, "stopped")
    assert [history(api, a)["generations"], history(api, b)["generations"]] == before
    outsider = dict(block_body(block))
    outsider["responses"] = [
        *outsider["responses"],
        {"session": "s_other", "stimulus": "g0-e0", "counts": {"ch0": [1]}},
    ]
    assert_problem(api.post("/v1/blocks/responses", json=outsider), 422, "s_other")
