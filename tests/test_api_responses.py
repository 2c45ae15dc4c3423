"""Responses beyond plain counts: counting windows, rates, pre-stimulus baselines, baseline-subtracted objectives."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import counts_for
from tests.test_api import assert_problem, create, history

WINDOWS = {"unit": "count", "window_ms": 200, "baseline_window_ms": 100}


def post(api: TestClient, manifest: dict[str, Any], counts: list[float], baseline: list[float] | None) -> Any:
    responses = []
    for stimulus in manifest["stimuli"]:
        item: dict[str, Any] = {"stimulus": stimulus["id"], "counts": {"a": counts, "b": [0.0] * len(counts)}}
        if baseline is not None:
            item["baseline"] = {"a": baseline, "b": [0.0] * len(baseline)}
        responses.append(item)
    return api.post(manifest["responses_url"], json={"responses": responses})


def test_counts_in_windows_become_rates_and_the_baseline_is_subtracted(api: TestClient) -> None:
    created = create(
        api, population_size=4, channels=["a", "b"], response=WINDOWS,
        objective={"weights": {"a": 1.0}, "subtract_baseline": True},
    )  # fmt: skip
    config = created["session"]["config"]
    assert config["response"] == {"unit": "count", "window_ms": 200.0, "baseline_window_ms": 100.0}
    assert config["objective"]["subtract_baseline"] is True
    answer = post(api, created["generation"], [10.0, 12.0], [2.0, 2.0])
    assert answer.status_code == 200, answer.text
    # (10 / 0.2 s - 2 / 0.1 s + 12 / 0.2 s - 2 / 0.1 s) / 2 = (30 + 40) / 2 spikes/s
    assert answer.json()["accepted"]["evolved_mean"] == pytest.approx(35.0)
    stimulus = history(api, created["session"]["id"])["generations"][0]["stimuli"][0]
    assert stimulus["counts"]["a"] == [10.0, 12.0] and stimulus["baseline"]["a"] == [2.0, 2.0]
    assert stimulus["score"] == pytest.approx(35.0)


def test_rates_are_used_as_they_are(api: TestClient) -> None:
    created = create(
        api, population_size=4, channels=["a", "b"], response={"unit": "rate"},
        objective={"weights": {"a": 2.0}, "subtract_baseline": True},
    )  # fmt: skip
    answer = post(api, created["generation"], [30.0, 50.0], [10.0, 10.0])
    assert answer.json()["accepted"]["evolved_mean"] == pytest.approx(2.0 * 30.0)


def test_a_baseline_is_stored_even_when_the_objective_does_not_use_it(api: TestClient) -> None:
    created = create(api, population_size=4, channels=["a", "b"])
    answer = post(api, created["generation"], [4.0, 6.0], [1.0, 1.0])
    assert answer.json()["accepted"]["evolved_mean"] == pytest.approx(5.0)
    assert history(api, created["session"]["id"])["generations"][0]["stimuli"][0]["baseline"]["a"] == [1.0, 1.0]


def test_missing_or_misshapen_baselines_are_problems_that_change_nothing(api: TestClient) -> None:
    created = create(
        api, population_size=4, channels=["a", "b"], response=WINDOWS,
        objective={"weights": {"a": 1.0}, "subtract_baseline": True},
    )  # fmt: skip
    manifest, session_id = created["generation"], created["session"]["id"]
    before = history(api, session_id)
    assert_problem(post(api, manifest, [1.0, 2.0], None), 422, "give its baseline")
    assert_problem(post(api, manifest, [1.0, 2.0], [1.0]), 422, "same channels and number of repetitions")
    assert history(api, session_id) == before


def test_channels_with_different_numbers_of_repetitions_are_refused_and_change_nothing(api: TestClient) -> None:
    created = create(api, population_size=4, channels=["ch1", "ch2"])
    manifest, session_id = created["generation"], created["session"]["id"]
    before = history(api, session_id)
    body = counts_for(manifest, channels=("ch1", "ch2"))
    stimulus = body["responses"][1]["stimulus"]
    body["responses"][1]["counts"] = {"ch1": [1, 2], "ch2": [1]}  # a repetition is recorded on every channel
    said = (f"stimulus {stimulus}", "the same number of repetitions", "{'ch1': 2, 'ch2': 1}")
    problem = assert_problem(api.post(manifest["responses_url"], json=body), 422, *said)
    assert problem["type"] == "/problems/invalid-responses" and problem["stimulus"] == stimulus
    block = {
        "generations": [{"session": session_id, "number": 0}],
        "responses": [{"session": session_id, **item} for item in body["responses"]],
    }
    problem = assert_problem(api.post("/v1/blocks/responses", json=block), 422, f"session {session_id}", *said)
    assert problem["type"] == "/problems/invalid-responses"
    assert history(api, session_id) == before


def test_a_baseline_subtracted_count_objective_needs_both_windows(api: TestClient) -> None:
    body = {"channels": ["a"], "objective": {"weights": {"a": 1}, "subtract_baseline": True}}
    assert_problem(api.post("/v1/sessions", json=body), 422, "baseline_window_ms")
