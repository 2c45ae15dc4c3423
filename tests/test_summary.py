"""The one score summary of a generation (evostim.summary): numpy's numbers bit for bit, NaN left out, and the same
numbers in the server's stored summaries, the analyses and the client's best images."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from evostim.clients.analysis.evolution import Evolution, best_per_generation, score_trajectory
from evostim.clients.http.frames import best_stimuli
from evostim.summary import GenerationSummary, statistics, summarize
from tests.conftest import counts_for


def test_statistics_are_numpys_mean_and_max_bit_for_bit_and_its_sample_sd() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        values = rng.standard_normal(int(rng.integers(1, 300))) * 10 ** rng.uniform(-3, 6)
        described = statistics(values)
        assert described.n == len(values) and float(described.mean) == float(np.mean(values))
        assert float(described.max) == float(np.max(values)) and int(described.argmax) == int(np.argmax(values))
        if len(values) > 1:
            assert float(described.sd) == pytest.approx(float(np.std(values, ddof=1)), rel=1e-12)
            assert float(described.sem) == pytest.approx(float(described.sd) / math.sqrt(len(values)), rel=1e-15)


def test_statistics_leave_out_what_was_not_measured_column_by_column() -> None:
    described = statistics([[1.0, np.nan, np.nan], [3.0, 2.0, np.nan], [3.0, np.nan, np.nan]])
    np.testing.assert_array_equal(described.n, [3, 1, 0])
    np.testing.assert_array_equal(described.mean, [7 / 3, 2.0, np.nan])
    np.testing.assert_array_equal(described.max, [3.0, 2.0, np.nan])
    np.testing.assert_array_equal(described.argmax, [1, 1, -1])  # the first of two equal maxima
    assert np.isnan(described.sd[1:]).all() and described.sd[0] == pytest.approx(np.std([1, 3, 3], ddof=1))
    empty = statistics([])
    assert empty.n == 0 and np.isnan(empty.mean) and np.isnan(empty.max) and empty.argmax == -1


def test_a_generations_summary_names_its_first_best_and_leaves_out_what_is_undefined() -> None:
    ids, kinds = ["e0", "e1", "e2", "r0"], ["evolved", "evolved", "evolved", "reference"]
    summary = summarize(ids, kinds, {"e0": 4.0, "e1": 7.0, "e2": 7.0, "r0": 1.0})
    assert summary.best_stimulus == "e1" and summary.evolved_max == 7.0 and summary.evolved_mean == 6.0
    assert summary.as_dict() == {
        "evolved_mean": 6.0,
        "evolved_max": 7.0,
        "reference_mean": 1.0,
        "evolved_sd": pytest.approx(math.sqrt(3)),
    }
    alone = summarize(ids, kinds, {"e2": 5.0})
    assert alone.as_dict() == {"evolved_mean": 5.0, "evolved_max": 5.0} and alone.best_stimulus == "e2"
    huge = GenerationSummary(evolved_mean=1e308, evolved_max=1e308, reference_mean=None, best_stimulus="e0")
    assert "evolved_sd" not in GenerationSummary(**{**huge.__dict__, "evolved_sd": math.inf}).as_dict()
    with pytest.raises(ValueError, match="at least one measured evolved stimulus"):
        summarize(ids, kinds, {"r0": 1.0})


def _session_with_history(api: TestClient, generations: int) -> dict[str, Any]:
    created = api.post("/v1/sessions", json={"seed": 11, "population_size": 8, "references": {"builtin": 3}})
    session_id = created.json()["session"]["id"]
    for number in range(generations):
        manifest = api.get(f"/v1/sessions/{session_id}/generations/{number}").json()
        body = counts_for(manifest, seed=number)
        body["responses"] = body["responses"][1:]  # one evolved stimulus not measured (an aborted trial)
        answer = api.post(f"/v1/sessions/{session_id}/generations/{number}/responses", json=body)
        assert answer.status_code == 200, answer.text
    history: dict[str, Any] = api.get(f"/v1/sessions/{session_id}/history").json()
    return history


def test_the_servers_stored_summaries_are_the_analyses_numbers_to_the_bit(api: TestClient) -> None:
    history = _session_with_history(api, 4)
    closed = [g for g in history["generations"] if g["status"] == "closed"]
    stored = {key: [g["optimizer"][key] for g in closed] for key in ("evolved_mean", "evolved_sd", "evolved_max")}
    references = [g["optimizer"]["reference_mean"] for g in closed]
    evolution = Evolution.from_history(history)
    scores = score_trajectory(evolution)
    assert len(closed) == 4 and scores.evolved_mean[:4].tolist() == stored["evolved_mean"]
    assert scores.evolved_max[:4].tolist() == stored["evolved_max"] and scores.reference_mean[:4].tolist() == references
    np.testing.assert_allclose(scores.evolved_std[:4], stored["evolved_sd"], rtol=1e-12)
    best = best_per_generation(evolution)
    for g, generation in enumerate(closed):
        named = next(s for s in generation["stimuli"] if s["id"] == best.ids[g])
        assert named["score"] == generation["optimizer"]["evolved_max"] == best.scores[g]
    arrays = {
        "kind": evolution.kind,
        "score": evolution.score,
        "generation": evolution.generation,
        "stimulus_id": np.array(evolution.ids),
    }
    expected = list(zip(best.numbers[:4].tolist(), best.ids[:4], strict=True))
    assert [(g, i) for g, i, _ in best_stimuli(arrays)] == expected
