"""A session's metadata changed after creation (PATCH /v1/sessions/{id}, a JSON merge patch), what a token may do
(GET /v1/access), and the history as CSV (GET .../export?format=csv): what the dashboard's notes, buttons and
download use."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from evostim.server.sessions.metadata import merge_patch
from tests.conftest import counts_for
from tests.test_api import assert_problem, create, history
from tests.test_client_protocol import SESSION, Script, both, problem

RIG = {"Authorization": "Bearer rig-token"}
OTHER_RIG = {"Authorization": "Bearer other-rig"}
VIEWER = {"Authorization": "Bearer viewer-token"}


def _patch(api: TestClient, session_id: str, metadata: dict[str, Any], **kwargs: Any) -> Any:
    return api.patch(f"/v1/sessions/{session_id}", json={"metadata": metadata}, **kwargs)


def test_merge_patch_follows_rfc_7396() -> None:
    target = {"animal": "Ringo", "notes": "old", "array": {"area": "V4", "pins": [1, 2]}}
    patch = {"notes": "new", "animal": None, "array": {"pins": [3], "depth": None}, "channel": 12}
    assert merge_patch(target, patch) == {"notes": "new", "array": {"area": "V4", "pins": [3]}, "channel": 12}
    assert target["notes"] == "old"  # the target itself is not changed
    assert merge_patch({"a": 1}, {"a": {"b": None, "c": 2}}) == {"a": {"c": 2}}  # an object replaces a number


def test_notes_are_patched_into_the_metadata_and_a_repeated_patch_changes_nothing_more(api: TestClient) -> None:
    created = create(api, population_size=4, metadata={"animal": "Ringo", "array": "V4-left"})
    session_id = created["session"]["id"]
    answer = _patch(api, session_id, {"notes": "channel 12 lost after generation 30"})
    assert answer.status_code == 200, answer.text
    expected = {"animal": "Ringo", "array": "V4-left", "notes": "channel 12 lost after generation 30"}
    assert answer.json()["config"]["metadata"] == expected
    again = _patch(api, session_id, {"notes": "channel 12 lost after generation 30"})
    assert again.json() == answer.json()  # a retry: the same session, the same answer
    assert api.get(f"/v1/sessions/{session_id}").json()["config"]["metadata"] == expected
    assert history(api, session_id, codes=False)["session"]["config"]["metadata"] == expected
    listed = api.get("/v1/sessions").json()["items"]
    assert [s["config"]["metadata"] for s in listed if s["id"] == session_id] == [expected]
    removed = _patch(api, session_id, {"notes": None, "array": None})
    assert removed.json()["config"]["metadata"] == {"animal": "Ringo"}
    # nothing else of the session changed, and it still takes responses
    session = removed.json()
    assert {k: v for k, v in session["config"].items() if k != "metadata"} == {
        k: v for k, v in created["session"]["config"].items() if k != "metadata"
    }
    assert session["last_activity"] == created["session"]["last_activity"]  # a note is not the experiment's activity
    manifest = created["generation"]
    assert api.post(manifest["responses_url"], json=counts_for(manifest)).status_code == 200


def test_a_fork_and_the_export_carry_the_patched_notes(api: TestClient) -> None:
    created = create(api, population_size=4, metadata={"animal": "Ringo"})
    session_id, manifest = created["session"]["id"], created["generation"]
    assert api.post(manifest["responses_url"], json=counts_for(manifest)).status_code == 200
    _patch(api, session_id, {"notes": "good cell"})
    fork = api.post(f"/v1/sessions/{session_id}/fork", json={})
    assert fork.status_code == 201 and fork.json()["session"]["config"]["metadata"]["notes"] == "good cell"
    exported = api.get(f"/v1/sessions/{session_id}/export", params={"format": "npz"})
    with np.load(io.BytesIO(exported.content)) as npz:
        assert '"notes": "good cell"' in str(npz["session"])


def test_a_patch_is_also_taken_as_application_merge_patch_json(api: TestClient) -> None:
    session_id = create(api, population_size=4)["session"]["id"]
    answer = api.patch(
        f"/v1/sessions/{session_id}",
        content=b'{"metadata": {"notes": "x"}}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert answer.status_code == 200 and answer.json()["config"]["metadata"] == {"notes": "x"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"metadata": {}}, "metadata"),
        ({}, "metadata"),
        ({"metadata": {"notes": "x"}, "config": {"seed": 1}}, "config"),
        ({"metadata": "notes"}, "metadata"),
        ({"metadata": {"notes": "a\x00b"}}, "NUL"),
    ],
)
def test_a_malformed_patch_is_refused_and_changes_nothing(api: TestClient, body: Any, fragment: str) -> None:
    created = create(api, population_size=4, metadata={"animal": "Ringo"})
    session_id = created["session"]["id"]
    assert_problem(api.patch(f"/v1/sessions/{session_id}", json=body), 422, fragment)
    assert api.get(f"/v1/sessions/{session_id}").json() == created["session"]


def test_metadata_patched_above_the_servers_limit_is_refused_and_nothing_is_stored(make_api: Any) -> None:
    api = make_api(max_metadata_bytes=200)
    session_id = create(api, population_size=4, metadata={"animal": "Ringo"})["session"]["id"]
    assert_problem(_patch(api, session_id, {"notes": "x" * 300}), 422, "EVOSTIM_MAX_METADATA_BYTES")
    assert api.get(f"/v1/sessions/{session_id}").json()["config"]["metadata"] == {"animal": "Ringo"}
    assert_problem(_patch(api, "s_nope", {"notes": "x"}), 404, "s_nope")


def test_only_the_sessions_owner_patches_it_and_a_read_only_token_is_refused(make_api: Any) -> None:
    api = make_api(tokens=["rig-token", "other-rig"], read_tokens=["viewer-token"])
    answer = api.post("/v1/sessions", json={"seed": 1, "population_size": 4}, headers=RIG)
    session_id = answer.json()["session"]["id"]
    assert_problem(_patch(api, session_id, {"notes": "x"}, headers=OTHER_RIG), 404, session_id)
    assert_problem(_patch(api, session_id, {"notes": "x"}, headers=VIEWER), 403, "read-only")
    assert_problem(_patch(api, session_id, {"notes": "x"}), 401)
    assert api.get(f"/v1/sessions/{session_id}", headers=VIEWER).json()["config"]["metadata"] == {}
    assert _patch(api, session_id, {"notes": "x"}, headers=RIG).status_code == 200
    assert api.get(f"/v1/sessions/{session_id}", headers=VIEWER).json()["config"]["metadata"] == {"notes": "x"}


def test_a_patch_made_by_another_server_process_is_read_by_this_one(make_api: Any) -> None:
    first, second = make_api(), make_api()  # two apps (processes) over one database: each caches configurations
    session_id = create(first, population_size=4)["session"]["id"]
    assert second.get(f"/v1/sessions/{session_id}").json()["config"]["metadata"] == {}
    assert _patch(first, session_id, {"notes": "from the rig room"}).status_code == 200
    assert second.get(f"/v1/sessions/{session_id}").json()["config"]["metadata"] == {"notes": "from the rig room"}


def test_access_says_what_each_token_may_do(make_api: Any) -> None:
    assert make_api().get("/v1/access").json() == {"role": "open", "can_write": True}
    api = make_api(tokens=["rig-token"], read_tokens=["viewer-token"])
    assert api.get("/v1/access", headers=RIG).json() == {"role": "rig", "can_write": True}
    assert api.get("/v1/access", headers=VIEWER).json() == {"role": "viewer", "can_write": False}
    assert_problem(api.get("/v1/access"), 401)
    assert_problem(api.get("/v1/access", headers={"Authorization": "Bearer nobody"}), 401, "unknown")


def test_the_csv_export_has_one_row_per_stimulus_with_every_repetition_and_the_code_norm(api: TestClient) -> None:
    created = create(api, population_size=4, references={"builtin": 2}, channels=["a", "b"])
    session_id = created["session"]["id"]
    manifest = created["generation"]
    for g in range(2):
        manifest = api.post(manifest["responses_url"], json=counts_for(manifest, seed=g, channels=("a", "b")))
        manifest = manifest.json()["next"]
    answer = api.get(f"/v1/sessions/{session_id}/export", params={"format": "csv"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == f'attachment; filename="{session_id}.csv"'
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    stimuli = [s for g in history(api, session_id)["generations"] for s in g["stimuli"]]
    assert len(rows) == len(stimuli) == 3 * 6
    by_id = {row["stimulus_id"]: row for row in rows}
    for stimulus in stimuli:
        row = by_id[stimulus["id"]]
        assert float(row["code_norm"]) == pytest.approx(np.linalg.norm(stimulus["code"]), rel=1e-12)
        if stimulus["score"] is None:  # the open generation: nothing posted yet
            assert row["status"] == "pending" and row["score"] == row["counts.a"] == row["closed_at"] == ""
            continue
        assert float(row["score"]) == stimulus["score"]
        assert [float(v) for v in row["counts.b"].split()] == stimulus["counts"]["b"]
        assert row["opened_at"].endswith("Z") and row["closed_at"].endswith("Z")
    evolved = by_id[stimuli[0]["id"]]
    assert evolved["kind"] == "evolved" and evolved["reference_id"] == "" and evolved["optimizer.evolved_mean"]


def test_the_clients_send_a_merge_patch_retry_it_safely_and_check_it_before_sending() -> None:
    def script() -> Script:
        return Script(problem(503, "not-ready", retryable=True), httpx.Response(200, json=SESSION))

    patch = {"notes": "good cell", "array": None}
    for answer, sent in both(script, "update_metadata", "s_1", patch):
        assert answer == SESSION  # the 503 was retried: a patch says what the metadata becomes
        assert [(r.method, r.url.path) for r in sent.requests] == [("PATCH", "/v1/sessions/s_1")] * 2
        assert [json.loads(r.content) for r in sent.requests] == [{"metadata": patch}] * 2
    for answer, sent in both(script, "update_metadata", "s_1", {}):
        assert isinstance(answer, ValueError) and not sent.requests  # refused before sending, as the server would
