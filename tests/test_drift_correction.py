"""Drift correction from the reference images: the rule (evostim.drift), a session with objective.drift_correction
through the API (told scores, stored factors, best image, refusal, replay), and the sweep engine using the same
function."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from evostim.drift import DRIFT_RULE, DriftRule, drift_factor, drift_factors
from tests.test_api import assert_problem, create, history


# -- the rule ----------------------------------------------------------------------------------------------------
def _fitted(means: list[float], ridge: float = DRIFT_RULE.ridge) -> float:
    """exp(slope x t) of the ridge-shrunk least-squares line through log(means), written out again."""
    s = np.arange(len(means), dtype=np.float64)
    y = np.log(means)
    slope = np.sum((s - s.mean()) * (y - y.mean())) / (np.sum((s - s.mean()) ** 2) + ridge)
    return float(np.exp(slope * (len(means) - 1)))


def test_the_factor_is_the_shrunk_log_linear_trend_of_the_reference_means_relative_to_generation_0() -> None:
    declining = [20.0 * 0.6 ** (t / 39) for t in range(40)]  # a 40% decline over 40 generations, without noise
    factors = drift_factors(declining)
    assert factors[0] == 1.0  # generation 0 is the baseline: its scores are told as measured
    assert factors == pytest.approx([_fitted(declining[: t + 1]) for t in range(40)], rel=1e-12)
    assert all(later < earlier for earlier, later in itertools.pairwise(factors))
    # shrunk towards no drift: half of the decline's logarithm over 23 generations, five sixths over 40
    assert math.log(factors[39]) / math.log(0.6) == pytest.approx(5330 / 6330, rel=1e-9)
    assert drift_factors([7.0] * 30) == [1.0] * 30  # references that do not drift: no correction
    assert drift_factors(declining, DriftRule(ridge=0.0))[39] == pytest.approx(0.6, rel=1e-12)  # unshrunk: the drift


def test_missing_zero_and_negative_reference_means_add_nothing_and_the_factor_stays_bounded() -> None:
    means: list[float | None] = [10.0, None, 0.0, -3.0, 8.0, math.nan, 6.0]
    # the usable generations are 0, 4 and 6; generations without one are corrected by the others' line
    assert drift_factor(means) == pytest.approx(_trend_at([(0, 10.0), (4, 8.0), (6, 6.0)], 6))
    assert drift_factor(means[:4]) == 1.0  # one usable generation: no line, no correction
    assert drift_factor([None]) == drift_factor([]) == drift_factor([0.0, -1.0]) == 1.0
    fading = [100.0 * 0.5**t for t in range(60)]  # a neuron going silent: never a division by ~0
    assert drift_factor(fading) == 1 / DRIFT_RULE.max_factor
    assert drift_factor(fading[::-1]) == DRIFT_RULE.max_factor


def _trend_at(points: list[tuple[int, float]], generation: int) -> float:
    s = np.array([p[0] for p in points], dtype=np.float64)
    y = np.log([p[1] for p in points])
    slope = np.sum((s - s.mean()) * (y - y.mean())) / (np.sum((s - s.mean()) ** 2) + DRIFT_RULE.ridge)
    return float(np.exp(slope * generation))


def test_a_rule_is_stored_with_its_constants_and_an_unknown_one_is_refused() -> None:
    assert DriftRule.from_stored(DRIFT_RULE.to_stored()) == DRIFT_RULE
    assert DRIFT_RULE.to_stored() == {"rule": "log-linear-ridge", "ridge": 1000.0, "max_factor": 4.0}
    with pytest.raises(ValueError, match="unknown drift correction rule 'ema'"):
        DriftRule.from_stored({"rule": "ema", "ridge": 1.0, "max_factor": 4.0})
    with pytest.raises(ValueError, match="max_factor"):
        DriftRule(max_factor=0.5)


# -- a session ---------------------------------------------------------------------------------------------------
CORRECTED = {"weights": {"ch0": 1.0}, "drift_correction": True}


def _body(manifest: dict[str, Any], generation: int) -> dict[str, Any]:
    """Evolved images at 10 + index spikes; references whose response halves over 10 generations (and stray by
    +-1 spike from one generation to the next)."""
    responses = []
    for stimulus in manifest["stimuli"]:
        if stimulus["kind"] == "reference":
            count = 20.0 * 0.5 ** (generation / 10) + (1.0 if generation % 2 else -1.0)
        else:
            count = 10.0 + stimulus["index"]
        responses.append({"stimulus": stimulus["id"], "counts": {"ch0": [count]}})
    return {"responses": responses}


def _run(api: TestClient, generations: int, **config: Any) -> tuple[str, dict[str, Any]]:
    created = create(api, population_size=4, references={"builtin": 2}, **config)
    manifest = created["generation"]
    for generation in range(generations):
        answer = api.post(manifest["responses_url"], json=_body(manifest, generation))
        assert answer.status_code == 200, answer.text
        manifest = answer.json()["next"]
    return created["session"]["id"], manifest


def _summaries(api: TestClient, session_id: str, count: int) -> list[dict[str, Any]]:
    """The stored summaries of the session's first ``count`` generations."""
    return [g["optimizer"] for g in history(api, session_id, codes=False)["generations"][:count]]


def _entries(summaries: list[dict[str, Any]], key: str) -> list[Any]:
    return [summary[key] for summary in summaries]


def test_a_session_with_drift_correction_tells_scores_over_the_stored_factor(make_api: Any) -> None:
    api = make_api()
    session_id, _ = _run(api, 8, objective=CORRECTED)
    session = api.get(f"/v1/sessions/{session_id}").json()
    summaries = _summaries(api, session_id, 8)
    means, factors = _entries(summaries, "reference_mean"), _entries(summaries, "drift_factor")
    assert means[0] == pytest.approx(19.0)  # stored raw: the references' counts as posted
    assert factors == drift_factors(means)  # the same function, on the stored means
    assert factors[0] == 1.0 > factors[-1]  # early on, shrunk towards no drift: a few %
    # raw scores are stored; the optimizer was told score / factor, and the session's best is the best told
    assert set(_entries(summaries, "evolved_max")) == {13.0}
    told_best = max(13.0 / factor for factor in factors)
    assert session["best_score"] == pytest.approx(told_best) == summaries[-1]["best_score"]
    assert session["best_stimulus"].startswith("g7-")  # the same responses, later: the neuron answered less


def test_the_configuration_keeps_the_option_and_its_rule_and_a_fork_keeps_them(make_api: Any) -> None:
    api = make_api()
    session_id, _ = _run(api, 1, objective=CORRECTED)
    config = api.get(f"/v1/sessions/{session_id}").json()["config"]
    assert config["objective"] == {**CORRECTED, "subtract_baseline": False}
    assert config["drift_rule"] == DRIFT_RULE.to_stored() and config["schema_version"] == 2
    fork = api.post(f"/v1/sessions/{session_id}/fork", json={})
    assert fork.status_code == 201, fork.text
    assert fork.json()["session"]["config"]["objective"]["drift_correction"] is True


def test_without_the_option_nothing_changes(make_api: Any) -> None:
    api = make_api()
    session_id, _ = _run(api, 3, objective={"weights": {"ch0": 1.0}})
    session = api.get(f"/v1/sessions/{session_id}").json()
    assert session["config"]["objective"]["drift_correction"] is False and session["config"]["drift_rule"] is None
    summaries = _summaries(api, session_id, 3)
    assert all("drift_factor" not in s for s in summaries)
    assert session["best_score"] == 13.0 and session["best_stimulus"].startswith("g0-")  # the first to reach it


def test_drift_correction_is_refused_when_the_session_shows_no_references(api: TestClient) -> None:
    before = api.get("/v1/sessions").json()
    answer = api.post("/v1/sessions", json={"objective": CORRECTED, "references": {"builtin": 0}})
    problem = assert_problem(answer, 422, "objective.drift_correction", "shows none")
    assert problem["type"] == "/problems/invalid-session-config" and problem["field"] == "objective.drift_correction"
    assert api.get("/v1/sessions").json() == before  # nothing was stored
    given = {"objective": CORRECTED, "references": {"builtin": 0, "codes": [[0.0] * 100]}}
    assert api.post("/v1/sessions", json={"seed": 5, "population_size": 4, **given}).status_code == 201


def test_a_replay_tells_exactly_what_the_posts_told(make_api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every generation's told scores, live and replayed from generation 0's snapshot after a restart, are the same
    floats (the factor derives from the stored reference means only)."""
    from evostim.server.sessions import stepper

    told: list[tuple[int, list[float]]] = []
    original = stepper.tell_measured

    def recording(optimizer: Any, stimuli: Any, scores: Any, factor: float = 1.0) -> None:
        evolved = [s for s in stimuli if s.kind == "evolved" and s.stimulus_id in scores]
        told.append((stimuli[0].generation, [scores[s.stimulus_id] / factor for s in evolved]))
        original(optimizer, stimuli, scores, factor)

    monkeypatch.setattr(stepper, "tell_measured", recording)
    api = make_api(snapshot_every=100)
    _, manifest = _run(api, 6, objective=CORRECTED)
    live = list(told)
    told.clear()
    restarted = make_api(snapshot_every=100)  # a fresh process: replays generations 0..5 before taking the 7th
    answer = restarted.post(manifest["responses_url"], json=_body(manifest, 6))
    assert answer.status_code == 200, answer.text
    assert told[:6] == live and [g for g, _ in told] == [0, 1, 2, 3, 4, 5, 6]
    assert live[5][1] != [10.0, 11.0, 12.0, 13.0]  # corrected: not the raw counts


def test_an_old_stored_configuration_reads_as_no_correction() -> None:
    from evostim.server.sessions.config import SessionConfig

    stored: dict[str, Any] = {
        "schema_version": 1,
        "generator": "dcgan-faces",
        "optimizer": {"name": "cholesky-cma", "params": {}},
        "population_size": 4,
        "seed": 1,
        "channels": ["ch0"],
        "objective": {"weights": {"ch0": 1.0}, "subtract_baseline": False},
        "references": {"builtin": 4, "given": 0},
        "code_norm": None,
    }
    config = SessionConfig.from_stored(stored)
    assert config.objective.drift_rule is None and not config.objective.drift_correction
    assert config.to_stored()["objective"]["drift_correction"] is False
    corrected = {**config.to_stored(), "objective": {**stored["objective"], "drift_correction": True}}
    assert SessionConfig.from_stored({**corrected, "drift_rule": DRIFT_RULE.to_stored()}).objective.drift_correction


# -- the sweep engine: the same function -------------------------------------------------------------------------
def test_the_sweep_engine_divides_by_the_sessions_factor() -> None:
    from evostim.clients.sweeps import engine
    from evostim.clients.sweeps.engine import RunSpec, evolve
    from evostim.clients.sweeps.panels import SyntheticPanel
    from evostim.server.sessions import drift as session_drift

    assert vars(engine)["drift_factor"] is vars(session_drift)["drift_factor"] is drift_factor  # one, shared
    panel = SyntheticPanel(2, seed=0, dim=8, code_norm=3.0)
    spec = RunSpec("cholesky-cma", panel.names[0], "recorded", 1, 12, population=6, references=4, drift_correction=True)
    (result,) = evolve(panel, [spec], {panel.names[0]: 5.0})
    assert result.drift_factor == drift_factors(result.reference_mean)
    assert len(set(result.drift_factor)) > 1
