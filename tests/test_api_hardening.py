"""No 500 on any input: each class of input an independent tester found to break the server, and a refused request
changes nothing (nothing stored, no session left behind, the same idempotency key refused the same way again)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.types import Message

from evostim.protocol import MAX_SEED
from tests.conftest import counts_for
from tests.test_api import assert_problem, create
from tests.test_optimizers import NEEDS_BASIS


def state(api: TestClient, session_id: str) -> dict[str, Any]:
    """Everything stored about a session that a refused post must leave as it was."""
    history: dict[str, Any] = api.get(f"/v1/sessions/{session_id}/history", params={"codes": True}).json()
    return history


def uniform_counts(manifest: dict[str, Any], value: float, repetitions: int = 2) -> dict[str, Any]:
    return {"responses": [{"stimulus": s["id"], "counts": {"ch0": [value] * repetitions}} for s in manifest["stimuli"]]}


# -- derived numbers that overflow after validation --------------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "value", "field"),
    [
        ({}, 1e308, "stimulus g0-e"),  # the mean of two repetitions overflows
        ({"objective": {"weights": {"ch0": 1e300}}}, 1e10, "stimulus g0-e"),  # weight x mean overflows
        ({"response": {"window_ms": 1e-300}}, 1e10, "stimulus g0-e"),  # the rate in a tiny window overflows
        ({}, 1.5e308, "accepted.evolved_mean"),  # each score is finite, their mean is not
    ],
)
def test_if_counts_that_overflow_once_scored_are_a_422_that_names_them_and_store_nothing(
    api: TestClient, config: dict[str, Any], value: float, field: str
) -> None:
    created = create(api, population_size=4, references={"builtin": 0}, **config)
    session_id, manifest = created["session"]["id"], created["generation"]
    before = state(api, session_id)
    repetitions = 1 if field.startswith("accepted") else 2
    body = uniform_counts(manifest, value, repetitions)
    key = {"Idempotency-Key": "overflow-1"}
    problem = assert_problem(api.post(manifest["responses_url"], json=body, headers=key), 422, field, "finite")
    assert problem["field"]
    # the same key is refused the same way (no answer was stored under it), and nothing changed
    assert_problem(api.post(manifest["responses_url"], json=body, headers=key), 422, field)
    assert state(api, session_id) == before
    assert api.get(f"/v1/sessions/{session_id}").json()["generation"] == 0
    # the generation is still open: good counts under the same key are accepted
    assert api.post(manifest["responses_url"], json=counts_for(manifest), headers=key).status_code == 200


def test_a_post_answer_holds_where_the_session_stands_but_not_its_configuration(api: TestClient) -> None:
    created = create(api, population_size=4, metadata={"notes": "x" * 1000})
    manifest = created["generation"]
    answer = api.post(manifest["responses_url"], json=counts_for(manifest)).json()
    assert answer["session"]["generation"] == 1 and "config" not in answer["session"]
    full = api.get(f"/v1/sessions/{created['session']['id']}").json()
    assert full["config"]["metadata"] == {"notes": "x" * 1000}


# -- creations that validate but cannot render ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"code_norm": 1e300}, "code_norm"),  # beyond float32, the generator's precision
        ({"code_norm": None, "optimizer": {"name": "cholesky-cma", "params": {"sigma": 1e308}}}, "sigma"),  # <= 1e6
        ({"references": {"builtin": 0, "codes": [[1e300] * 100]}}, "code"),
        ({"init": {"codes": [[1e308] * 100, [1e308] * 100]}}, "finite"),  # their mean overflows
        ({"response": {"window_ms": 1e-307}}, "window_ms"),  # spikes per second would overflow
        ({"init": {"codes": [[1.0] * 100, [1.0] * 3]}}, "init.codes"),  # ragged rows
        ({"references": {"codes": [[1.0] * 100, [1.0] * 99]}}, "references.codes[1]"),
        ({"metadata": {"x": [1, [2, "a\x00b"]]}}, "NUL"),
        ({"optimizer": {"name": "cholesky-cma", "params": {"sigma": "NaN-PLACEHOLDER"}}}, "finite"),
    ],
)
def test_if_a_session_that_cannot_be_computed_or_rendered_is_a_422_and_leaves_no_session(
    api: TestClient, config: dict[str, Any], fragment: str
) -> None:
    text = json.dumps({"seed": 1, "population_size": 4, **config}).replace('"NaN-PLACEHOLDER"', "NaN")
    response = api.post("/v1/sessions", content=text, headers={"content-type": "application/json"})
    assert_problem(response, 422, fragment)
    assert api.get("/v1/sessions").json()["total"] == 0


# -- integers beyond the database's range, NUL characters -------------------------------------------------------
HUGE = [2**31, 2**63, 10**30]


@pytest.mark.parametrize("number", HUGE)
def test_if_huge_integers_in_paths_and_queries_are_refused_before_the_database(api: TestClient, number: int) -> None:
    created = create(api, population_size=4)
    session_id, manifest = created["session"]["id"], created["generation"]
    base = f"/v1/sessions/{session_id}"
    reads = [
        f"{base}/generations/{number}",
        f"{base}/generations/{number}/images.zip",
        f"/v1/sessions?offset={number}",
        f"/v1/sessions?limit={number}",
        f"{base}/history?from_generation={number}",
        f"{base}/history?to_generation={number}",
        f"{base}/stimuli/g0-e0.png?size={number}",
    ]
    for url in reads:
        assert_problem(api.get(url), 422)
    posts: list[tuple[str, dict[str, Any]]] = [
        (f"{base}/generations/{number}/responses", counts_for(manifest)),
        ("/v1/sessions", {"init": {"session": session_id, "up_to_generation": number}}),
        ("/v1/sessions", {"max_generations": number}),
        ("/v1/sessions", {"plateau_generations": number}),
        (f"{base}/fork", {"generation": number}),
        (f"{base}/fork", {"max_generations": number}),
        ("/v1/blocks/responses", {"generations": [{"session": session_id, "number": number}], "responses": []}),
    ]
    for url, body in posts:
        assert_problem(api.post(url, json=body), 422)
    assert api.get("/v1/sessions").json()["total"] == 1


@pytest.mark.parametrize("session_id", ["a\x00b", "s_" + "f" * 60, "..", "s 1"])
def test_if_ids_that_cannot_be_session_ids_are_unknown_sessions_never_database_errors(
    api: TestClient, session_id: str
) -> None:
    quoted = session_id.replace("\x00", "%00").replace(" ", "%20")
    for url in (f"/v1/sessions/{quoted}", f"/v1/sessions/{quoted}/history", f"/v1/blocks?sessions={quoted}"):
        assert_problem(api.get(url), 404)
    assert_problem(api.post(f"/v1/sessions/{quoted}/stop"), 404)
    assert_problem(api.post("/v1/sessions", json={"init": {"session": session_id}}), 422, "init.session")


def test_if_a_nul_in_a_posted_stimulus_id_is_an_unknown_stimulus(api: TestClient) -> None:
    manifest = create(api, population_size=4)["generation"]
    body = counts_for(manifest)
    body["responses"][0]["stimulus"] += "\x00"
    assert_problem(api.post(manifest["responses_url"], json=body), 422, "not part of generation")


# -- request size ------------------------------------------------------------------------------------------------
def test_a_body_above_the_limit_is_a_413_problem(make_api: Any) -> None:
    api = make_api(max_body_bytes=64 * 1024)
    big = {"seed": 1, "metadata": {"notes": "x" * 100_000}}
    response = api.post("/v1/sessions", json=big)
    assert_problem(response, 413, "EVOSTIM_MAX_BODY_BYTES")
    assert api.get("/v1/sessions").json()["total"] == 0


def _asgi_post(app: Any, chunks: int, chunk: bytes, *, declare_length: bool) -> tuple[int, int, bytes]:
    """POST /v1/sessions straight to the ASGI app; (status, body messages the app read, answer body)."""
    headers = [(b"content-type", b"application/json")]
    if declare_length:
        headers.append((b"content-length", str(chunks * len(chunk)).encode()))
    scope = {"type": "http", "method": "POST", "path": "/v1/sessions", "raw_path": b"/v1/sessions",
             "query_string": b"", "headers": headers, "http_version": "1.1", "scheme": "http",
             "server": ("test", 80), "client": ("test", 1), "root_path": "", "app": app}  # fmt: skip
    read = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": chunk, "more_body": read < chunks}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(sent[0]["status"]), read, body


@pytest.mark.parametrize("declare_length", [True, False])
def test_a_big_body_is_refused_without_being_read_whole(make_api: Any, declare_length: bool) -> None:
    api = make_api(max_body_bytes=1024 * 1024)
    chunk = b" " * (64 * 1024)  # 120 MB in 64 KiB pieces, if anyone read them all
    status, read, body = _asgi_post(api.app, 1920, chunk, declare_length=declare_length)
    assert status == 413 and json.loads(body)["type"] == "/problems/content-too-large"
    # a declared length is refused before a byte is read; a streamed body as soon as it passes the limit
    assert read == (0 if declare_length else 1024 * 1024 // len(chunk) + 1)


def test_metadata_above_the_limit_is_refused(make_api: Any) -> None:
    api = make_api(max_metadata_bytes=1000)
    assert_problem(api.post("/v1/sessions", json={"metadata": {"notes": "é" * 600}}), 422, "EVOSTIM_MAX_METADATA_BYTES")
    assert api.get("/v1/sessions").json()["total"] == 0
    session_id = create(api, population_size=4, metadata={"notes": "ok"})["session"]["id"]
    fork = api.post(f"/v1/sessions/{session_id}/fork", json={"metadata": {"notes": "x" * 2000}})
    assert_problem(fork, 422, "metadata")


def test_population_channels_and_repetitions_above_the_operators_limits_are_refused(make_api: Any) -> None:
    api = make_api(max_population=6, max_channels=2, max_repetitions=3)
    assert_problem(api.post("/v1/sessions", json={"population_size": 7}), 422, "EVOSTIM_MAX_POPULATION")
    three = {"population_size": 4, "channels": ["a", "b", "c"]}
    assert_problem(api.post("/v1/sessions", json=three), 422, "EVOSTIM_MAX_CHANNELS")
    created = create(api, population_size=6)
    session_id, manifest = created["session"]["id"], created["generation"]
    before = state(api, session_id)
    body = uniform_counts(manifest, 3.0, repetitions=4)
    assert_problem(api.post(manifest["responses_url"], json=body), 422, "EVOSTIM_MAX_REPETITIONS")
    assert state(api, session_id) == before


@pytest.mark.parametrize(("settings", "limit"), [({}, 200), ({"max_repetitions": 3}, 3)])
def test_every_refused_repetition_count_states_this_servers_limit(make_api: Any, settings: Any, limit: int) -> None:
    api = make_api(**settings)
    created = create(api, population_size=4)
    session_id, manifest = created["session"]["id"], created["generation"]
    before = state(api, session_id)
    for part, repetitions in [("counts", 0), ("counts", limit + 1), ("counts", 1001), ("baseline", 0)]:
        body = uniform_counts(manifest, 3.0, repetitions=1)
        body["responses"][0][part] = {"ch0": [3.0] * repetitions}
        said = f"needs 1 to {limit} repetitions, this server's limit (EVOSTIM_MAX_REPETITIONS), got {repetitions}"
        problem = assert_problem(api.post(manifest["responses_url"], json=body), 422, said, "g0-")
        assert problem["type"] == "/problems/invalid-responses" and problem["field"] == f"responses[0].{part}.ch0"
    assert state(api, session_id) == before


@pytest.mark.parametrize(
    ("config", "field", "fragment"),
    [
        ({"channels": [f"c{i}" for i in range(600)]}, "channels", "600 channels"),
        ({"population_size": 1001}, "population_size", "population_size 1001"),
    ],
)
def test_channels_and_population_above_every_servers_limit_name_the_setting(
    api: TestClient, config: dict[str, Any], field: str, fragment: str
) -> None:
    setting = {"channels": "EVOSTIM_MAX_CHANNELS", "population_size": "EVOSTIM_MAX_POPULATION"}[field]
    problem = assert_problem(api.post("/v1/sessions", json=config), 422, fragment, setting)
    assert problem["type"] == "/problems/invalid-session-config" and problem["field"] == field
    assert api.get("/v1/sessions").json()["total"] == 0


# -- keys, strict numbers, seeds ---------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["", " ", "a b", "ключ", "k" * 256])
def test_an_empty_or_unprintable_idempotency_key_is_refused_on_every_keyed_route(api: TestClient, key: str) -> None:
    created = create(api, population_size=4)
    session_id, manifest = created["session"]["id"], created["generation"]
    header = {"Idempotency-Key": key}
    block = {"generations": [{"session": session_id, "number": 0}], "responses": []}
    for url, body in (
        ("/v1/sessions", {}),
        (manifest["responses_url"], counts_for(manifest)),
        (f"/v1/sessions/{session_id}/fork", {}),
        ("/v1/blocks/responses", block),
    ):
        encoded = {k: v.encode() for k, v in header.items()}
        assert_problem(api.post(url, json=body, headers=encoded), 422, "idempotency-key")
    assert api.get("/v1/sessions").json()["total"] == 1


@pytest.mark.parametrize("value", [True, "5", [5], None])
def test_counts_are_numbers_never_coerced(api: TestClient, value: Any) -> None:
    manifest = create(api, population_size=4)["generation"]
    body = counts_for(manifest)
    body["responses"][0]["counts"]["ch0"] = [value, 1.0]
    assert_problem(api.post(manifest["responses_url"], json=body), 422, "counts.ch0.0")


@pytest.mark.parametrize("config", [{"population_size": "8"}, {"seed": True}, {"population_size": 8.0}])
def test_session_numbers_are_not_coerced_either(api: TestClient, config: dict[str, Any]) -> None:
    assert_problem(api.post("/v1/sessions", json=config), 422, next(iter(config)))


def test_seeds_lie_below_2_to_the_53_so_every_json_reader_reads_them_exactly(api: TestClient) -> None:
    assert_problem(api.post("/v1/sessions", json={"seed": 2**53}), 422, "seed")
    assert create(api, population_size=4, seed=MAX_SEED)["session"]["config"]["seed"] == 2**53 - 1
    for _ in range(8):
        seed = api.post("/v1/sessions", json={"population_size": 4}).json()["session"]["config"]["seed"]
        assert 0 <= seed < 2**53 and float(seed) == seed


def test_every_optimizer_takes_huge_but_finite_scores_without_failing(api: TestClient) -> None:
    """Scores near the largest double (counts minus baselines of +-1.7e308): finite, so told; no optimizer fails."""
    names = [
        o["name"] for o in api.get("/v1/optimizers").json()["data"] if o["available"] and o["name"] not in NEEDS_BASIS
    ]
    assert "ga" in names
    windows = {"window_ms": 1000, "baseline_window_ms": 1000}
    for name in names:
        created = create(
            api, population_size=6, optimizer={"name": name}, references={"builtin": 0}, response=windows,
            objective={"weights": {"ch0": 1.0}, "subtract_baseline": True},
        )  # fmt: skip
        big = 1.7e308
        responses = [
            {"stimulus": s["id"], "counts": {"ch0": [big * (i % 2)]}, "baseline": {"ch0": [big * (1 - i % 2)]}}
            for i, s in enumerate(created["generation"]["stimuli"])
        ]
        body = {"responses": responses}
        answer = api.post(created["generation"]["responses_url"], json=body)
        assert answer.status_code == 200, (name, answer.text)
