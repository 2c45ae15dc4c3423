"""Optimizers over HTTP: the catalog, per-session choice with parameters, replay after a restart, bad parameters."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from evostim import optimizers
from evostim.generators.metric import packaged_metric
from tests.conftest import counts_for
from tests.test_api import assert_problem, create, history
from tests.test_optimizers import NEEDS_BASIS

DCGAN_DIM = 100


def session_optimizer(name: str) -> dict[str, Any]:
    if name not in NEEDS_BASIS:
        return {"name": name}
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((DCGAN_DIM, 8)))
    inner = {"inner": "sep-cma"} if name == "subspace" else {}
    return {"name": name, "params": {"basis": q.T.tolist(), **inner}}


def test_the_catalog_lists_every_optimizer_with_parameters_defaults_and_schemas(api: TestClient) -> None:
    response = api.get("/v1/optimizers")
    assert response.status_code == 200
    catalog = {entry["name"]: entry for entry in response.json()["data"]}
    assert set(catalog) == set(optimizers.OPTIMIZERS)
    assert [name for name, entry in catalog.items() if entry["is_default"]] == [optimizers.DEFAULT_OPTIMIZER]
    ga = {p["name"]: p for p in catalog["ga"]["parameters"]}
    assert ga["mutation_rate"]["default"] == 0.25 and ga["mutation_size"]["default"] == 0.75
    assert ga["mutation_rate"]["json_schema"] == {"type": "number"}
    assert "mutates" in ga["mutation_rate"]["description"]
    assert all(entry["summary"] for entry in catalog.values())
    assert {name: (entry["available"], entry["extra"]) for name, entry in catalog.items()} == {
        name: (True, "references" if name in ("pycma", "cmaes", "cmaes-sep") else None) for name in catalog
    }
    assert all(p["description"] for entry in catalog.values() for p in entry["parameters"])


def test_the_catalog_rescales_defaults_to_a_generator_s_space(api: TestClient) -> None:
    body = api.get("/v1/optimizers", params={"generator": "dcgan-faces"}).json()
    catalog = {entry["name"]: {p["name"]: p["default"] for p in entry["parameters"]} for entry in body["data"]}
    assert body["generator"] == "dcgan-faces"
    assert [entry["name"] for entry in body["data"] if entry["is_default"]] == ["metric-cma"]  # its own default
    assert catalog["cholesky-cma"]["sigma"] == 0.64  # 3 in fc6, per-coordinate spread 1 vs 300 / 64
    assert catalog["sphere-cma"]["sphere_norm"] == 10.0
    assert_problem(api.get("/v1/optimizers", params={"generator": "no-such"}), 422, "no-such")


def test_the_catalog_for_a_generator_gives_the_defaults_its_sessions_run(api: TestClient) -> None:
    body = api.get("/v1/optimizers", params={"generator": "dcgan-faces"}).json()
    listed = {p["name"]: p["default"] for p in next(e for e in body["data"] if e["name"] == "metric-cma")["parameters"]}
    stored = create(api, seed=3)["session"]["config"]["optimizer"]["params"]  # of the default size, 40
    assert stored == {name: listed[name] for name in stored}  # every default the session stores is the listed one
    assert listed["starts"] == 2 and listed["refresh_every"] == 5 and listed["basis"] == "dcgan-faces.metric"
    assert listed["remeasure"] == 2  # in a generation of at least 20 images; none in a smaller one
    assert create(api, population_size=19)["session"]["config"]["optimizer"]["params"]["remeasure"] == 0
    assert listed["angle_end"] == 2.0 and listed["mirrored"] is True


def test_a_dcgan_faces_session_that_names_no_optimizer_runs_metric_cma_as_measured(api: TestClient) -> None:
    generators = {entry["name"]: entry for entry in api.get("/v1/generators").json()["data"]}
    assert {name: entry["default_optimizer"] for name, entry in generators.items()} == {
        name: "metric-cma" if name == "dcgan-faces" else optimizers.DEFAULT_OPTIMIZER for name in generators
    }
    created = create(api, population_size=8, seed=3)
    stored = created["session"]["config"]["optimizer"]
    assert stored["name"] == "metric-cma"
    assert {k: stored["params"][k] for k in ("basis", "refresh_every", "window", "starts", "trial_generations")} == {
        "basis": "dcgan-faces.metric",  # the shipped metric, stored by name
        "refresh_every": 5,
        "window": 0.125,
        "starts": 2,
        "trial_generations": 3,
    }
    named = create(api, population_size=8, seed=3, optimizer={"params": {"starts": 1}})  # params alone: the same
    assert named["session"]["config"]["optimizer"]["name"] == "metric-cma"
    assert named["session"]["config"]["optimizer"]["params"]["starts"] == 1


@pytest.mark.parametrize("name", sorted(optimizers.OPTIMIZERS))
def test_every_optimizer_runs_a_session_and_replays_bit_identically_after_a_restart(make_api: Any, name: str) -> None:
    """Two sessions with one seed; the optimizers are dropped before every post to the second one."""
    api = make_api(snapshot_every=2)
    config = {"population_size": 8, "optimizer": session_optimizer(name)}
    sessions = [create(api, **config), create(api, **config)]
    assert sessions[0]["session"]["config"]["optimizer"]["name"] == name
    manifests = [s["generation"] for s in sessions]
    for generation in range(4):
        for which, manifest in enumerate(manifests):
            if which == 1:
                api.app.state.service.forget_optimizers()
            body = counts_for(manifest, seed=generation)
            body["responses"] = body["responses"][: len(body["responses"]) - 2]  # two aborted trials
            answer = api.post(manifest["responses_url"], json=body)
            assert answer.status_code == 200, answer.text
            manifests[which] = answer.json()["next"]
    codes = [
        [[s["code"] for s in g["stimuli"]] for g in history(api, s["session"]["id"])["generations"]] for s in sessions
    ]
    assert codes[0] == codes[1]
    assert codes[0][0] != codes[0][-1]


@pytest.mark.parametrize(
    ("optimizer", "fragment"),
    [
        ({"name": "ga", "params": {"mutation_rate": 2}}, "mutation_rate"),
        ({"name": "sphere-cma", "params": {"learning_rate": "fast"}}, "sphere-cma"),
        ({"name": "cholesky-cma", "params": {"step": 1}}, "step"),
        ({"name": "subspace", "params": {"basis": [[1.0, 0.0]]}}, "basis"),
        ({"name": "nevergrad"}, "nevergrad"),
        ({"name": "sphere-cma", "params": {"decay_generations": 40, "replans": [30]}}, "longer than decay_generations"),
        ({"name": "metric-cma", "params": {"replans": [80, 80]}}, "replans must be increasing"),
    ],
)
def test_bad_optimizer_settings_are_a_problem_and_create_nothing(
    api: TestClient, optimizer: dict[str, Any], fragment: str
) -> None:
    assert_problem(api.post("/v1/sessions", json={"optimizer": optimizer}), 422, fragment)
    assert api.get("/v1/sessions").json()["total"] == 0


def test_metric_cma_refreshed_at_its_mean_runs_on_the_session_generator_and_replays_after_a_restart(
    make_api: Any,
) -> None:
    """The metric at the mean comes from the session's generator, live and in a replay from a snapshot."""
    api = make_api(snapshot_every=2)
    default = create(api, population_size=8, optimizer={"name": "metric-cma"})["session"]["config"]["optimizer"]
    assert default["params"]["refresh_every"] == 5  # a session's default on a generator of up to 512-d
    assert default["params"]["window"] == 0.125  # refreshed with the metric of a window at the image centre
    assert default["params"]["starts"] == 2  # two searches begun
    inner = create(api, population_size=8, optimizer={"name": "metric-cma", "params": {"inner": "cholesky-cma"}})
    assert inner["session"]["config"]["optimizer"]["params"]["refresh_every"] is None  # refreshes sphere-cma's only
    assert inner["session"]["config"]["optimizer"]["params"]["window"] is None
    one_start = {"refresh_every": 2, "starts": 1}  # one search: its first refresh at generation 2
    config = {"population_size": 8, "optimizer": {"name": "metric-cma", "params": one_start}}
    sessions = [create(api, **config), create(api, **config)]
    manifests = [s["generation"] for s in sessions]
    for generation in range(5):
        for which, manifest in enumerate(manifests):
            if which == 1:
                api.app.state.service.forget_optimizers()
            answer = api.post(manifest["responses_url"], json=counts_for(manifest, seed=generation))
            assert answer.status_code == 200, answer.text
            manifests[which] = answer.json()["next"]
    generations = [history(api, s["session"]["id"])["generations"] for s in sessions]
    codes = [[[s["code"] for s in g["stimuli"] if s["kind"] == "evolved"] for g in gens] for gens in generations]
    assert codes[0] == codes[1]
    given = packaged_metric("dcgan-faces")
    assert given is not None
    top = given.basis[:20]  # before the first refresh every code is in the given top 20 (round 47); after it, not
    outside = [np.linalg.norm(np.array(c) - np.array(c) @ top.T @ top, axis=1).max() for c in codes[0]]
    assert max(outside[:2]) < 1e-9 and min(outside[2:]) > 0.1


def test_a_metric_cma_session_with_a_window_refreshes_with_the_metric_where_the_neuron_looks(api: TestClient) -> None:
    """Same seed, same responses: the first generation (the shipped basis) is the same, the refreshed one is not."""
    runs = []
    for window in (None, 0.125):
        params = {"refresh_every": 1, "window": window, "starts": 1}  # one search: refreshed from generation 1
        created = create(api, population_size=8, seed=7, optimizer={"name": "metric-cma", "params": params})
        assert created["session"]["config"]["optimizer"]["params"]["window"] == window
        manifest = created["generation"]
        for generation in range(2):
            answer = api.post(manifest["responses_url"], json=counts_for(manifest, seed=generation))
            assert answer.status_code == 200, answer.text
            manifest = answer.json()["next"]
        generations = history(api, created["session"]["id"])["generations"]
        runs.append([[s["code"] for s in g["stimuli"] if s["kind"] == "evolved"] for g in generations])
    assert runs[0][0] == runs[1][0]
    assert not np.allclose(runs[0][1], runs[1][1])
    np.testing.assert_allclose(np.linalg.norm(runs[1][1], axis=1), 10.0)  # still on the prior's sphere
    bad = {"name": "metric-cma", "params": {"window": -1}}
    assert_problem(api.post("/v1/sessions", json={"optimizer": bad}), 422, "window must be")


def test_metric_cma_anneals_its_steps_over_the_session_planned_length(api: TestClient) -> None:
    """max_generations under 40 or over 75 sets the inner schedule's length: it ends at the last planned generation
    of the search that goes on (the other start's trial taken off), at 4 degrees; an open-ended session, and one
    planned to 40-75 generations (round 30), keeps the measured 75 and 2 degrees; a length or an end the lab names
    wins."""

    def params(**config: Any) -> dict[str, Any]:
        stored: dict[str, Any] = create(api, population_size=8, **config)["session"]["config"]["optimizer"]["params"]
        return stored

    assert params(max_generations=80)["decay_generations"] == 77  # 80 - 3 generations of the other start's trial
    assert params(max_generations=80)["angle_end"] == 4  # round 20: a planned session ends at 4 degrees
    assert params(max_generations=80, optimizer={"params": {"angle_end": 3}})["angle_end"] == 3
    assert params()["angle_end"] == 2  # an open-ended one: the 75-generation schedule to 2 degrees
    for planned in (40, 60, 75):  # round 30: as an open-ended one
        assert params(max_generations=planned)["angle_end"] == 2
        assert params(max_generations=planned)["decay_generations"] is None
    assert params(max_generations=40, optimizer={"params": {"angle_end": 3}})["angle_end"] == 3
    assert params(max_generations=100, optimizer={"params": {"starts": 1}})["decay_generations"] == 100
    assert params(max_generations=20)["decay_generations"] == 37  # a shorter session anneals as a 40-generation one
    assert params(max_generations=20)["angle_end"] == 4
    assert params()["decay_generations"] is None  # sphere-cma's own 75
    named = {"params": {"decay_generations": 60}}
    assert params(max_generations=80, optimizer=named)["decay_generations"] == 60
    inner = {"name": "metric-cma", "params": {"inner": "cholesky-cma"}}
    assert params(max_generations=80, optimizer=inner)["decay_generations"] is None  # sphere-cma's setting only
