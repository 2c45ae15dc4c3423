"""The HTTP protocol in-process (real app, real SQLite file): happy path, every bad input, idempotency."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import counts_for

PROBLEM = "application/problem+json"


def create(api: TestClient, **config: Any) -> dict[str, Any]:
    response = api.post("/v1/sessions", json={"seed": 5, **config})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_problem(response: Any, status: int, *fragments: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status and problem["title"] and problem["type"].startswith("/problems/")
    for fragment in fragments:
        assert fragment in problem["detail"], problem["detail"]
    return problem


def history(api: TestClient, session_id: str, *, codes: bool = True) -> dict[str, Any]:
    """The whole history, latent codes included unless ``codes=False``."""
    response = api.get(f"/v1/sessions/{session_id}/history", params={"codes": codes})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_a_session_starts_with_evolved_and_reference_images_ready(api: TestClient) -> None:
    optimizer = {"name": "cholesky-cma"}
    created = create(
        api, population_size=10, references={"builtin": 3}, metadata={"animal": "Beto"}, optimizer=optimizer
    )
    session, generation = created["session"], created["generation"]
    assert session["status"] == "running" and session["generation"] == 0
    # The published fc6 step (3 for codes of norm 300 in 4,096 d) rescaled to this generator: 3 * 1 / (300 / 64).
    assert session["config"]["optimizer"]["params"]["sigma"] == 0.64
    assert session["config"]["code_norm"] == pytest.approx(10.0)
    assert session["config"]["metadata"] == {"animal": "Beto"}
    kinds = [s["kind"] for s in generation["stimuli"]]
    assert kinds.count("evolved") == 10 and kinds.count("reference") == 3
    assert sorted(generation["order"]) == sorted(s["id"] for s in generation["stimuli"])
    png = api.get(generation["stimuli"][0]["url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    jpg = api.get(generation["stimuli"][0]["url"].replace(".png", ".jpg"), params={"size": 128})
    assert jpg.headers["content-type"] == "image/jpeg" and jpg.content[:2] == b"\xff\xd8"
    bmp = api.get(generation["stimuli"][0]["url"].replace(".png", ".bmp"))
    assert bmp.content[:2] == b"BM"
    listed = api.get("/v1/sessions").json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == session["id"]


def test_evolved_codes_lie_on_the_sphere_of_the_priors_norm(api: TestClient) -> None:
    session_id = create(api, population_size=6)["session"]["id"]
    codes = [s["code"] for s in history(api, session_id)["generations"][0]["stimuli"] if s["kind"] == "evolved"]
    np.testing.assert_allclose(np.linalg.norm(codes, axis=1), 10.0)


def test_posting_responses_returns_the_next_generation_and_stores_everything(api: TestClient) -> None:
    created = create(api, population_size=8, references={"builtin": 2})
    session_id, manifest = created["session"]["id"], created["generation"]
    body = counts_for(manifest)
    answer = api.post(manifest["responses_url"], json=body)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["accepted"]["number"] == 0 and result["accepted"]["measured"] == 10
    assert result["next"]["number"] == 1 and result["session"]["generation"] == 1
    assert "db;dur=" in answer.headers["server-timing"]
    image = api.get(result["next"]["stimuli"][0]["url"])
    assert image.status_code == 200
    stored = history(api, session_id)["generations"][0]["stimuli"]
    posted = {r["stimulus"]: r["counts"] for r in body["responses"]}
    assert {s["id"]: s["counts"] for s in stored} == posted
    assert all(s["score"] == pytest.approx(np.mean(posted[s["id"]]["ch0"])) for s in stored)
    current = api.get(f"/v1/sessions/{session_id}/generations/current", follow_redirects=False)
    assert current.status_code == 307 and current.headers["location"].endswith("/generations/1")


def test_missing_stimuli_are_recorded_as_missing(api: TestClient) -> None:
    created = create(api, population_size=10, references={"builtin": 2})
    manifest = created["generation"]
    body = counts_for(manifest)
    body["responses"] = body["responses"][3:]  # three aborted trials
    result = api.post(manifest["responses_url"], json=body).json()
    assert len(result["accepted"]["missing"]) == 3
    stored = history(api, created["session"]["id"])["generations"][0]["stimuli"]
    assert sum(s["counts"] is None and s["score"] is None for s in stored) == 3


def test_a_weighted_objective_over_channels_is_what_gets_scored(api: TestClient) -> None:
    created = create(
        api,
        population_size=4,
        references={"builtin": 0},
        channels=["a", "b"],
        objective={"weights": {"a": 1.0, "b": -0.5}},
    )
    manifest = created["generation"]
    body = {"responses": [{"stimulus": s["id"], "counts": {"a": [4, 6], "b": [2, 2]}} for s in manifest["stimuli"]]}
    result = api.post(manifest["responses_url"], json=body).json()
    assert result["accepted"]["evolved_mean"] == pytest.approx(5.0 - 1.0)


@pytest.mark.parametrize(
    ("mutate", "status", "fragment"),
    [
        (lambda b: b["responses"].append({"stimulus": "g0-e999", "counts": {"ch0": [1]}}), 422, "g0-e999"),
        (lambda b: b["responses"].append(dict(b["responses"][0])), 422, "more than once"),
        (lambda b: b["responses"][0]["counts"].update({"ch9": [1]}), 422, "channels"),
        (lambda b: b["responses"][0].update({"counts": {"ch0": []}}), 422, "repetitions"),
        (lambda b: b["responses"][0]["counts"].update({"ch0": [-1.0]}), 422, "greater than or equal to 0"),
        (lambda b: b["responses"][0]["counts"].update({"ch0": ["many"]}), 422, "number"),
        (lambda b: b["responses"][0].pop("counts"), 422, "counts"),
        (lambda b: b["responses"][0].pop("stimulus"), 422, "stimulus"),
        (lambda b: b.pop("responses"), 422, "responses"),
        (lambda b: b.update({"responses": b["responses"][:2]}), 422, "at least"),
        (lambda b: b.update({"extra": 1}), 422, "extra"),
    ],
)
def test_if_bad_responses_are_refused_and_change_nothing(
    api: TestClient, mutate: Any, status: int, fragment: str
) -> None:
    created = create(api, population_size=8)
    session_id, manifest = created["session"]["id"], created["generation"]
    before = history(api, session_id)
    body = counts_for(manifest)
    mutate(body)
    assert_problem(api.post(manifest["responses_url"], json=body), status, fragment)
    assert history(api, session_id) == before


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_if_non_finite_counts_are_refused_and_change_nothing(api: TestClient, value: str) -> None:
    created = create(api, population_size=4)
    session_id, manifest = created["session"]["id"], created["generation"]
    before = history(api, session_id)
    body = counts_for(manifest)
    body["responses"][0]["counts"]["ch0"] = [1.0, "PLACEHOLDER"]
    text = json.dumps(body).replace('"PLACEHOLDER"', value)  # JSON has no NaN; Python's parser accepts it
    response = api.post(manifest["responses_url"], content=text, headers={"content-type": "application/json"})
    assert_problem(response, 422, "finite")
    assert history(api, session_id) == before


def test_if_malformed_json_is_a_problem_too(api: TestClient) -> None:
    manifest = create(api, population_size=4)["generation"]
    response = api.post(manifest["responses_url"], content=b"{not json", headers={"content-type": "application/json"})
    assert_problem(response, 422, "JSON")


def test_if_unknown_sessions_generations_and_stimuli_are_404(api: TestClient) -> None:
    created = create(api, population_size=4)
    session_id, manifest = created["session"]["id"], created["generation"]
    assert_problem(api.get("/v1/sessions/s_nope"), 404, "s_nope")
    assert_problem(api.post("/v1/sessions/s_nope/generations/0/responses", json=counts_for(manifest)), 404, "s_nope")
    assert_problem(api.get(f"/v1/sessions/{session_id}/generations/7"), 404, "open generation is 0")
    assert_problem(
        api.post(f"/v1/sessions/{session_id}/generations/3/responses", json=counts_for(manifest)),
        404,
        "does not exist yet",
    )
    assert_problem(api.get(f"/v1/sessions/{session_id}/stimuli/g9-e0.png"), 404, "g9-e0")
    assert_problem(api.get(f"/v1/sessions/{session_id}/stimuli/g0-e0.gif"), 404, ".png")


def test_a_second_submission_for_a_closed_generation_is_409_and_changes_nothing(api: TestClient) -> None:
    created = create(api, population_size=4)
    session_id, manifest = created["session"]["id"], created["generation"]
    assert api.post(manifest["responses_url"], json=counts_for(manifest)).status_code == 200
    before = history(api, session_id)
    problem = assert_problem(api.post(manifest["responses_url"], json=counts_for(manifest, seed=1)), 409, "closed")
    assert problem["open_generation"] == 1
    assert history(api, session_id) == before


def test_an_idempotent_retry_replays_the_stored_answer(api: TestClient) -> None:
    manifest = create(api, population_size=4)["generation"]
    body = counts_for(manifest)
    first = api.post(manifest["responses_url"], json=body, headers={"Idempotency-Key": "trial-block-1"})
    retry = api.post(manifest["responses_url"], json=body, headers={"Idempotency-Key": "trial-block-1"})
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json() and retry.headers["idempotent-replayed"] == "true"
    other = api.post(
        manifest["responses_url"], json=counts_for(manifest, seed=9), headers={"Idempotency-Key": "trial-block-1"}
    )
    assert_problem(other, 409, "different request body")


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"generator": "stylegan9"}, "stylegan9"),
        ({"optimizer": {"name": "simplex"}}, "simplex"),
        ({"optimizer": {"name": "cholesky-cma", "params": {"sigma": -1}}}, "optimizer cholesky-cma: sigma must be"),
        ({"optimizer": {"name": "cholesky-cma", "params": {"lr": 1}}}, "lr"),
        ({"population_size": 1}, "population_size"),
        ({"channels": ["a", "a"]}, "unique"),
        ({"channels": ["a"], "objective": {"weights": {"b": 1}}}, "['b']"),
        ({"references": {"codes": [[0.0, 1.0]]}}, "references.codes[0]"),
        ({"code_norm": -3}, "code_norm"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_if_bad_session_configs_are_refused_and_create_nothing(
    api: TestClient, config: dict[str, Any], fragment: str
) -> None:
    assert_problem(api.post("/v1/sessions", json=config), 422, fragment)
    assert api.get("/v1/sessions").json()["total"] == 0


def test_the_stop_rule_finishes_the_session(api: TestClient) -> None:
    manifest = create(api, population_size=4, max_generations=2)["generation"]
    manifest = api.post(manifest["responses_url"], json=counts_for(manifest)).json()["next"]
    last = api.post(manifest["responses_url"], json=counts_for(manifest)).json()
    assert last["next"] is None and last["session"]["status"] == "finished"
    assert_problem(api.post(manifest["responses_url"], json=counts_for(manifest, seed=4)), 409, "finished")


def test_a_replayed_optimizer_proposes_exactly_what_a_live_one_does(make_api: Any) -> None:
    """Drop the in-memory optimizers before every post (as after a restart): proposals stay bit-identical."""
    api = make_api(snapshot_every=3)
    live = create(api, population_size=6)
    replayed = create(api, population_size=6)
    manifests = [live["generation"], replayed["generation"]]
    for generation in range(7):
        answers = []
        for which, manifest in enumerate(manifests):
            if which == 1:
                api.app.state.service.forget_optimizers()
            answers.append(api.post(manifest["responses_url"], json=counts_for(manifest, seed=generation)).json())
        manifests = [answer["next"] for answer in answers]
    codes = [
        [[s["code"] for s in g["stimuli"]] for g in history(api, created["session"]["id"])["generations"]]
        for created in (live, replayed)
    ]
    assert codes[0] == codes[1]


def test_a_replay_accepts_another_cpus_last_bit_and_refuses_a_different_proposal(
    make_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database moved to another CPU replays to the last bit (other BLAS kernels); a real divergence is refused."""
    from evostim.server.sessions import stepper

    api = make_api(snapshot_every=5)
    manifest = create(api, population_size=6)["generation"]
    for generation in range(2):
        manifest = api.post(manifest["responses_url"], json=counts_for(manifest, seed=generation)).json()["next"]
    stored = stepper._evolved_codes
    for offset, status in ((4e-16, 200), (1e-3, 500)):
        monkeypatch.setattr(stepper, "_evolved_codes", lambda *args, o=offset: stored(*args) + o)
        api.app.state.service.forget_optimizers()  # as after a restart: the optimizer is replayed from its snapshot
        answer = api.post(manifest["responses_url"], json=counts_for(manifest, seed=7))
        assert answer.status_code == status, answer.text
        if status == 500:
            assert answer.json()["type"] == "/problems/state-corrupt"
            assert "does not reproduce the stored proposals" in answer.json()["detail"]
        else:
            manifest = answer.json()["next"]


def test_a_restarted_server_continues_every_session(make_api: Any) -> None:
    first = make_api()
    created = create(first, population_size=4)
    session_id, manifest = created["session"]["id"], created["generation"]
    manifest = first.post(manifest["responses_url"], json=counts_for(manifest)).json()["next"]
    before = history(first, session_id)
    second = make_api()  # a new process's app on the same database file
    assert history(second, session_id) == before
    answer = second.post(manifest["responses_url"], json=counts_for(manifest))
    assert answer.status_code == 200 and answer.json()["next"]["number"] == 2


def test_one_token_never_sees_another_tokens_sessions(make_api: Any) -> None:
    api = make_api(tokens=["token-of-lab-a", "token-of-lab-b"])
    assert_problem(api.get("/v1/sessions"), 401, "Bearer")
    assert_problem(api.get("/v1/sessions", headers={"Authorization": "Bearer wrong"}), 401, "unknown")
    lab_a = {"Authorization": "Bearer token-of-lab-a"}
    lab_b = {"Authorization": "Bearer token-of-lab-b"}
    created = api.post("/v1/sessions", json={"population_size": 4}, headers=lab_a).json()
    session_id, manifest = created["session"]["id"], created["generation"]
    assert api.get(f"/v1/sessions/{session_id}", headers=lab_a).status_code == 200
    assert_problem(api.get(f"/v1/sessions/{session_id}", headers=lab_b), 404, session_id)
    assert_problem(api.get(manifest["stimuli"][0]["url"], headers=lab_b), 404, session_id)
    assert_problem(api.post(manifest["responses_url"], json=counts_for(manifest), headers=lab_b), 404, session_id)
    assert api.get("/v1/sessions", headers=lab_b).json()["total"] == 0


def test_production_settings_refuse_to_run_without_tokens() -> None:
    from pydantic import ValidationError

    from evostim.server.config import Settings

    with pytest.raises(ValidationError, match="EVOSTIM_TOKENS"):
        Settings(environment="production")


def test_an_image_fetched_twice_is_decoded_and_encoded_once(tmp_path: Any) -> None:
    from evostim import generators
    from evostim.server.app import create_app
    from evostim.server.config import Settings

    decoded: list[int] = []

    class CountingGenerator:
        def __init__(self, inner: generators.ImageGenerator) -> None:
            self.inner = inner

        def decode_pixels(self, codes: Any) -> Any:  # the renderer's batched path
            decoded.append(len(codes))
            return self.inner.decode_pixels(codes)

        def __getattr__(self, name: str) -> Any:  # the rest as the generator has it (metric-cma: its module)
            return getattr(self.inner, name)

    def load(name: str, device: str, weights_dir: Any) -> Any:
        return CountingGenerator(generators.load_generator(name, "cpu", weights_dir))

    with TestClient(create_app(Settings(data_dir=tmp_path), load_generator=load)) as api:
        manifest = create(api, population_size=4)["generation"]
        url = manifest["stimuli"][0]["url"]
        first, second = api.get(url), api.get(url)  # the first waits for the generation decoding ahead
        assert decoded == [len(manifest["stimuli"])]  # the whole generation, in one batch, from its creation
        assert first.status_code == second.status_code == 200 and first.content == second.content
        assert api.get(url.replace(".png", ".jpg")).status_code == 200
        assert decoded == [len(manifest["stimuli"])]  # every fetch was served from the render cache
