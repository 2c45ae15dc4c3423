"""Session life cycle over HTTP: stop, resume, fork; starting from given codes or another session's best codes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import counts_for
from tests.test_api import assert_problem, create, history


def advance(api: TestClient, manifest: dict[str, Any], generations: int, seed: int = 0) -> dict[str, Any]:
    for g in range(generations):
        answer = api.post(manifest["responses_url"], json=counts_for(manifest, seed=seed + g))
        assert answer.status_code == 200, answer.text
        manifest = answer.json()["next"]
    return manifest


def test_a_stopped_session_refuses_responses_until_resumed_and_loses_nothing(api: TestClient) -> None:
    created = create(api, population_size=4)
    session_id = created["session"]["id"]
    manifest = advance(api, created["generation"], 2)
    before = history(api, session_id)["generations"]

    stopped = api.post(f"/v1/sessions/{session_id}/stop")
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    assert api.post(f"/v1/sessions/{session_id}/stop").json()["status"] == "stopped"  # idempotent
    assert_problem(api.post(manifest["responses_url"], json=counts_for(manifest)), 409, "stopped", "resume")
    assert history(api, session_id)["generations"] == before

    assert api.post(f"/v1/sessions/{session_id}/resume").json()["status"] == "running"
    answer = api.post(manifest["responses_url"], json=counts_for(manifest))
    assert answer.status_code == 200 and answer.json()["next"]["number"] == 3


def test_a_finished_session_cannot_be_resumed_or_stopped_but_can_be_forked(api: TestClient) -> None:
    created = create(api, population_size=4, max_generations=2)
    session_id = created["session"]["id"]
    advance(api, created["generation"], 2)
    assert_problem(api.post(f"/v1/sessions/{session_id}/resume"), 409, "fork")
    assert_problem(api.post(f"/v1/sessions/{session_id}/stop"), 409, "finished")
    # No generation is open: `current` names the last, and a later one is refused as past the end, not as unopened.
    last = api.get(f"/v1/sessions/{session_id}/generations/current", follow_redirects=False)
    assert last.status_code == 307 and last.headers["location"].endswith("/generations/1")
    assert_problem(api.get(f"/v1/sessions/{session_id}/generations/7"), 404, "it finished at generation 1")
    assert_problem(api.get(f"/v1/sessions/{session_id}/generations/7/images.zip"), 404, "it finished at generation 1")
    assert api.post(f"/v1/sessions/{session_id}/fork", json={}).status_code == 201
    assert_problem(api.post("/v1/sessions/s_nope/stop"), 404, "s_nope")


def test_a_fork_starts_from_the_parent_s_best_code_with_another_optimizer(api: TestClient) -> None:
    created = create(api, population_size=6, references={"builtin": 0}, channels=["a", "b"])
    parent_id = created["session"]["id"]
    advance_counts = created["generation"]
    for g in range(3):
        body = counts_for(advance_counts, seed=g, channels=("a", "b"))
        advance_counts = api.post(advance_counts["responses_url"], json=body).json()["next"]
    generations = history(api, parent_id)["generations"]
    measured = [s for g in generations[:2] for s in g["stimuli"] if s["score"] is not None]
    best = max(measured, key=lambda s: s["score"])

    response = api.post(
        f"/v1/sessions/{parent_id}/fork",
        json={"generation": 1, "optimizer": {"name": "sep-cma", "params": {"sigma": 0.1}}, "max_generations": 5},
    )
    assert response.status_code == 201, response.text
    child = response.json()["session"]
    config = child["config"]
    assert config["optimizer"]["name"] == "sep-cma" and config["channels"] == ["a", "b"]
    assert config["metadata"]["forked_from"] == {"session": parent_id, "generation": 1}
    np.testing.assert_allclose(config["optimizer"]["params"]["mean"], best["code"])
    first = np.array([s["code"] for s in history(api, child["id"])["generations"][0]["stimuli"]])
    # sigma 0.1 around the parent's best code, then projected on the same sphere: all close to it.
    assert np.max(np.linalg.norm(first - np.array(best["code"]), axis=1)) < 0.25 * np.linalg.norm(best["code"])


@pytest.mark.parametrize("optimizer", ["cholesky-cma", "ga", "sphere-cma", "pycma"])
def test_a_session_starts_from_given_codes(api: TestClient, optimizer: str) -> None:
    start = np.random.default_rng(0).standard_normal((3, 100))
    created = create(api, population_size=6, optimizer={"name": optimizer}, init={"codes": start.tolist()})
    params = created["session"]["config"]["optimizer"]["params"]
    assert created["session"]["config"]["init"] == {"codes": 3, "session": None, "best": 1, "up_to_generation": None}
    if optimizer == "ga":
        np.testing.assert_allclose(params["initial_codes"], start)
        codes = history(api, created["session"]["id"])["generations"][0]["stimuli"]
        evolved = sorted((s for s in codes if s["kind"] == "evolved"), key=lambda s: s["index"])
        shown = np.array([s["code"] for s in evolved[:3]])
        np.testing.assert_allclose(shown, start * (10 / np.linalg.norm(start, axis=1, keepdims=True)))
    else:
        np.testing.assert_allclose(params["mean"], start.mean(axis=0))


@pytest.mark.parametrize(
    ("init", "fragment"),
    [
        ({"codes": [[0.0] * 99]}, "100 finite numbers"),
        ({"codes": [[0.0] * 100], "session": "s_x"}, "either codes or session"),
        ({}, "either codes or session"),
        ({"session": "s_missing"}, "s_missing"),
    ],
)
def test_bad_init_is_a_problem_and_creates_nothing(api: TestClient, init: dict[str, Any], fragment: str) -> None:
    assert_problem(api.post("/v1/sessions", json={"init": init}), 422, fragment)
    assert api.get("/v1/sessions").json()["total"] == 0


def test_init_from_a_session_without_measurements_is_refused(api: TestClient) -> None:
    fresh = create(api, population_size=4)["session"]["id"]
    assert_problem(api.post("/v1/sessions", json={"init": {"session": fresh}}), 422, "no measured")
    assert_problem(api.post(f"/v1/sessions/{fresh}/fork", json={"generation": 9}), 422, "no generation 9")


def test_init_up_to_a_generation_the_source_does_not_have_is_refused_as_a_fork_to_it_is(api: TestClient) -> None:
    created = create(api, population_size=4)
    source = created["session"]["id"]
    advance(api, created["generation"], 2)  # generations 0 and 1 measured, 2 open
    said = f"session {source} has no generation 999 yet; its last is 2"
    init = {"session": source, "best": 5, "up_to_generation": 999}
    refusals = [
        (api.post("/v1/sessions", json={"init": init}), "init.up_to_generation"),
        (api.post(f"/v1/sessions/{source}/fork", json={"generation": 999, "best": 5}), "generation"),
    ]
    for refused, field in refusals:
        problem = assert_problem(refused, 422, f"{field}: {said}")
        assert problem["type"] == "/problems/invalid-session-config" and problem["field"] == field
    assert api.get("/v1/sessions").json()["total"] == 1
    for last in (1, 2):  # what it has: the same bound as fork's
        started = api.post("/v1/sessions", json={"init": {**init, "up_to_generation": last}})
        assert started.status_code == 201, started.text


def test_the_plateau_rule_finishes_a_session_whose_scores_stopped_improving(api: TestClient) -> None:
    created = create(api, population_size=4, plateau_generations=2)
    assert created["session"]["config"]["plateau_generations"] == 2
    manifest = created["generation"]

    def post(value: float) -> dict[str, Any]:
        body = {"responses": [{"stimulus": s["id"], "counts": {"ch0": [value]}} for s in manifest["stimuli"]]}
        answer = api.post(manifest["responses_url"], json=body)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    for value in (5.0, 9.0, 7.0):  # improving, then one worse generation: still running
        answer = post(value)
        assert answer["session"]["status"] == "running"
        manifest = answer["next"]
    answer = post(8.0)  # two generations without beating 9
    assert answer["session"]["status"] == "finished" and answer["next"] is None


def test_timestamps_are_utc_in_every_answer(api: TestClient) -> None:
    created = create(api, population_size=4)
    answer = api.post(created["generation"]["responses_url"], json=counts_for(created["generation"])).json()
    listed = api.get("/v1/sessions").json()["items"][0]
    for stamp in (created["session"]["created_at"], answer["session"]["created_at"], listed["created_at"]):
        assert stamp.endswith("Z") or stamp.endswith("+00:00"), stamp


def test_last_activity_moves_with_every_post_stop_and_resume_and_never_before_creation(api: TestClient) -> None:
    created = create(api, population_size=4)
    session_id, manifest = created["session"]["id"], created["generation"]
    times = [created["session"]["last_activity"]]
    assert times[0] == created["session"]["created_at"]
    answer = api.post(manifest["responses_url"], json=counts_for(manifest)).json()
    times.append(answer["session"]["last_activity"])
    assert api.get(f"/v1/sessions/{session_id}").json()["last_activity"] == times[-1]  # the answer's is the stored one
    for action in ("stop", "resume"):
        assert api.post(f"/v1/sessions/{session_id}/{action}").status_code == 200
        times.append(api.get(f"/v1/sessions/{session_id}").json()["last_activity"])
    listed = api.get("/v1/sessions").json()["items"][0]
    assert listed["id"] == session_id and listed["last_activity"] == times[-1]
    assert times == sorted(times) and len(set(times)) == 4
