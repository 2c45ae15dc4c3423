"""Every session the server accepts can advance (issue #34): parameters an optimizer cannot step with, or an objective
that cannot score a plausible response, are refused at creation by a dry run, naming the parameter and its limit;
an optimizer that fails anyway (an outside library's assertion) is a clear 422, never a 500, and stores nothing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from evostim import optimizers
from evostim.optimizers.geometry import project_to_sphere
from tests.conftest import counts_for
from tests.test_api import assert_problem, create, history
from tests.test_optimizers import basis


def sessions(api: TestClient) -> int:
    total: int = api.get("/v1/sessions").json()["total"]
    return total


@pytest.mark.parametrize(
    ("optimizer", "fragments"),
    [
        ({"name": "cholesky-cma", "params": {"sigma": 1e200}}, ["sigma", "1e+06"]),
        ({"name": "sep-cma", "params": {"sigma": 1e300}}, ["sigma", "1e+06"]),
        ({"name": "cmaes", "params": {"sigma": 1e33}}, ["sigma", "1e+06"]),
        ({"name": "cmaes-sep", "params": {"sigma": 1e33}}, ["sigma", "1e+06"]),
        ({"name": "pycma", "params": {"sigma": 1e300}}, ["sigma", "1e+06"]),
        ({"name": "ga", "params": {"mutation_size": 1e200}}, ["mutation_size", "1e+06"]),
        ({"name": "sphere-cma", "params": {"sphere_norm": 1e-300}}, ["sphere_norm", "0.001"]),
        ({"name": "sphere-cma", "params": {"angle_start": 1e-320}}, ["angle_start", "1e-06"]),
        ({"name": "cholesky-cma", "params": {"mean": [1e300] * 100}}, ["mean", "1e+06"]),
    ],
)
def test_if_an_optimizer_that_cannot_take_a_generation_is_refused_at_creation_naming_the_limit(
    api: TestClient, optimizer: dict[str, Any], fragments: list[str]
) -> None:
    problem = assert_problem(api.post("/v1/sessions", json={"optimizer": optimizer}), 422, *fragments)
    assert problem["type"] == "/problems/invalid-session-config"
    assert sessions(api) == 0


def test_if_objective_weights_that_overflow_a_plausible_score_are_refused_naming_the_limit(api: TestClient) -> None:
    body = {"channels": ["a", "b"], "objective": {"weights": {"a": 1e308, "b": 1e308}}}
    problem = assert_problem(api.post("/v1/sessions", json=body), 422, "objective.weights", "at most 1.8e+305")
    assert problem["field"] == "objective.weights"
    # the same weights with a counting window of 100 ms: counts become spikes/s, 10 x larger
    windowed = {**body, "objective": {"weights": {"a": 1e304, "b": 1e304}}, "response": {"window_ms": 100.0}}
    assert_problem(api.post("/v1/sessions", json=windowed), 422, "at most 1.8e+304")
    assert sessions(api) == 0


def test_weights_a_plausible_response_can_be_scored_with_are_accepted_and_advance(api: TestClient) -> None:
    created = create(api, channels=["a", "b"], objective={"weights": {"a": 1e300, "b": -1e300}}, population_size=4)
    manifest = created["generation"]
    counts = counts_for(manifest, channels=("a", "b"))
    assert api.post(manifest["responses_url"], json=counts).status_code == 200


def test_a_subspace_session_takes_its_own_code_norm_and_unknown_parameters_are_refused_not_500(
    api: TestClient,
) -> None:
    params = {"basis": basis(100, 8), "code_norm": 5.0}
    created = create(api, population_size=4, optimizer={"name": "subspace", "params": params})
    assert created["session"]["config"]["optimizer"]["params"]["code_norm"] == 5.0
    for name in ("seed", "population_size", "host", "dim"):
        body = {"optimizer": {"name": "cholesky-cma", "params": {name: 3}}}
        assert_problem(api.post("/v1/sessions", json=body), 422, f"no parameters ['{name}']")
    assert sessions(api) == 1


def test_the_dry_run_leaves_the_session_s_optimizer_untouched(api: TestClient) -> None:
    """Generation 1 of a session is what its optimizer, built alone with the same seed, proposes for those scores."""
    created = create(api, seed=11, population_size=6, references={"builtin": 0}, optimizer={"name": "cholesky-cma"})
    manifest = created["generation"]
    answer = api.post(manifest["responses_url"], json=counts_for(manifest, seed=3)).json()
    settings = created["session"]["config"]["optimizer"]["params"]
    alone = optimizers.create_optimizer("cholesky-cma", 100, population_size=6, seed=11, params=settings)
    first = alone.ask()
    scores = [float(np.mean(r["counts"]["ch0"])) for r in counts_for(manifest, seed=3)["responses"]]
    alone.tell(first.ids, scores)
    norm = created["session"]["config"]["code_norm"]
    expected = project_to_sphere(alone.ask().codes, norm)
    stimuli = history(api, created["session"]["id"])["generations"][1]["stimuli"]
    assert answer["next"]["number"] == 1
    np.testing.assert_array_equal(np.array([s["code"] for s in stimuli]), expected)
