"""Running it like a service: health and readiness, Prometheus metrics, JSON logs with an access log and incident
ids, hashed and read-only tokens, the refusals of `evostim serve`, several worker processes on one database."""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from evostim import cli
from evostim.cli.serve import is_loopback
from evostim.clients.http.local_server import free_port
from evostim.server.app import create_app
from evostim.server.config import Settings, token_digest
from evostim.server.ops.observability import JsonFormatter
from evostim.server.storage.store import Store
from tests.conftest import counts_for

TOKEN_A = "token-of-lab-a-0123456789"
TOKEN_B = "token-of-lab-b-0123456789"
VIEWER = "dashboard-token-0123456789"


def sample(text: str, name: str) -> float:
    """One unlabelled sample of a Prometheus exposition (0 when absent)."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match[1]) if match else 0.0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- health, readiness, metrics ----------------------------------------------------------------------------------
def test_healthz_and_readyz_answer_when_the_database_and_the_generator_are_there(api: TestClient) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "generator:dcgan-faces": "ok"}}


def test_readyz_is_a_503_problem_naming_what_is_missing(make_api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    api = make_api(ready_generators=["dcgan-faces", "deepsim-fc6"], weights_dir=Path("/nonexistent"))
    answer = api.get("/readyz")
    assert answer.status_code == 503 and answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == "/problems/not-ready" and problem["retryable"] is True
    assert problem["checks"]["database"] == "ok" and problem["checks"]["generator:dcgan-faces"] == "ok"
    assert "deepsim-fc6.pt" in problem["checks"]["generator:deepsim-fc6"]
    assert "deepsim-fc6" in problem["detail"]

    def unreachable() -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(api.app.state.store, "ping", unreachable)
    problem = api.get("/readyz").json()
    assert problem["checks"]["database"].startswith("unreachable: OperationalError")
    assert api.get("/healthz").status_code == 200  # alive all the same: a restart would not help


def test_metrics_count_generations_post_latency_decodes_sessions_and_caches(api: TestClient) -> None:
    before = api.get("/metrics").text
    created = api.post("/v1/sessions", json={"seed": 1, "population_size": 6}).json()
    manifest = created["generation"]
    for number in range(2):
        key = {"Idempotency-Key": f"k{number}"}
        answer = api.post(manifest["responses_url"], json=counts_for(manifest), headers=key)
        manifest = answer.json()["next"]
    api.post(manifest["responses_url"], json=counts_for(manifest), headers={"Idempotency-Key": "k2"})
    last = api.post(manifest["responses_url"], json=counts_for(manifest), headers={"Idempotency-Key": "k2"})  # a replay
    assert api.get(last.json()["next"]["stimuli"][0]["url"]).status_code == 200  # waits for the decode ahead
    after = api.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain; version=")
    text = after.text
    served = sample(text, "evostim_generations_served_total") - sample(before, "evostim_generations_served_total")
    posts = sample(text, "evostim_post_seconds_count") - sample(before, "evostim_post_seconds_count")
    decodes = sample(text, "evostim_decode_seconds_count") - sample(before, "evostim_decode_seconds_count")
    assert served == 3 and posts == 4 and decodes >= 4  # the replay is a post, not a generation
    assert sample(text, "evostim_active_sessions") >= 1
    assert sample(text, "evostim_image_cache_bytes") > 0
    assert sample(text, "evostim_optimizer_cache_sessions") >= 1 and sample(text, "evostim_optimizer_cache_bytes") > 0
    assert 'evostim_post_seconds_bucket{le="1.5"}' in text
    assert 'evostim_http_requests_total{method="POST",route="/v1/sessions",status="201"}' in text


# -- logs --------------------------------------------------------------------------------------------------------
def test_log_lines_are_json_with_the_records_fields() -> None:
    record = logging.LogRecord("evostim", logging.ERROR, __file__, 1, "incident %s", ("abc",), None)
    record.incident = "abc"
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "error" and line["logger"] == "evostim" and line["msg"] == "incident abc"
    assert line["incident"] == "abc" and line["ts"].endswith("+00:00")


def test_the_access_log_names_each_request_and_a_5xx_its_incident(
    api: TestClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    api.get("/v1/sessions")
    access = [r for r in caplog.records if r.name == "evostim.access"]
    assert access[-1].status == 200 and access[-1].path == "/v1/sessions" and access[-1].method == "GET"  # type: ignore[attr-defined]

    from evostim.server.sessions.errors import StateCorrupt

    def corrupt(*args: Any, **kwargs: Any) -> Any:
        raise StateCorrupt("the snapshot does not replay")

    monkeypatch.setattr(api.app.state.service, "list_sessions", corrupt)  # type: ignore[attr-defined]
    caplog.clear()
    problem = api.get("/v1/sessions").json()
    incident = problem["incident"]
    errors = [r for r in caplog.records if r.name == "evostim" and r.levelno == logging.ERROR]
    access = [r for r in caplog.records if r.name == "evostim.access"]
    assert errors[-1].incident == incident and errors[-1].exc_info is not None  # type: ignore[attr-defined]
    assert access[-1].status == 500 and access[-1].incident == incident  # type: ignore[attr-defined]
    assert access[-1].levelno == logging.ERROR


# -- tokens ------------------------------------------------------------------------------------------------------
def test_only_token_digests_are_kept_and_a_digest_may_be_configured_instead_of_the_token() -> None:
    settings = Settings(tokens=[TOKEN_A, token_digest(TOKEN_B)], read_tokens=[VIEWER], environment="production")
    dumped = settings.model_dump_json()
    assert TOKEN_A not in dumped and VIEWER not in dumped
    assert settings.tokens == [token_digest(TOKEN_A), token_digest(TOKEN_B)]
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", t) for t in settings.tokens + settings.read_tokens)
    with pytest.raises(ValueError, match="16 characters"):
        Settings(tokens=["short"], environment="production")
    Settings(tokens=[token_digest("short")], environment="production")  # a digest says nothing of its length


def test_owners_stay_what_earlier_versions_stored_so_old_databases_keep_their_sessions(
    make_api: Any, tmp_path: Path
) -> None:
    api = make_api(tokens=[token_digest(TOKEN_A)])  # configured as a digest: the owner is the same
    session_id = api.post("/v1/sessions", json={"seed": 2}, headers=bearer(TOKEN_A)).json()["session"]["id"]
    stored = Store(f"sqlite:///{tmp_path / 'evostim.db'}")
    try:
        record = stored.get_session(session_id)
    finally:
        stored.close()
    assert record is not None and record.owner == hashlib.sha256(TOKEN_A.encode()).hexdigest()[:32]


def test_a_read_only_token_views_every_session_and_may_not_post(make_api: Any) -> None:
    api = make_api(tokens=[TOKEN_A, TOKEN_B], read_tokens=[VIEWER])
    mine = api.post("/v1/sessions", json={"seed": 3, "population_size": 4}, headers=bearer(TOKEN_A)).json()
    theirs = api.post("/v1/sessions", json={"seed": 4, "population_size": 4}, headers=bearer(TOKEN_B)).json()
    listed = api.get("/v1/sessions", headers=bearer(VIEWER)).json()
    assert {s["id"] for s in listed["items"]} == {mine["session"]["id"], theirs["session"]["id"]}
    assert listed["total"] == 2
    assert api.get(f"/v1/sessions/{theirs['session']['id']}", headers=bearer(VIEWER)).status_code == 200
    image = api.get(theirs["generation"]["stimuli"][0]["url"], headers=bearer(VIEWER))
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert api.get(f"/v1/sessions/{mine['session']['id']}/history", headers=bearer(VIEWER)).status_code == 200
    # lab-wide viewing only: a rig's token still sees only its own sessions
    assert api.get(f"/v1/sessions/{theirs['session']['id']}", headers=bearer(TOKEN_A)).status_code == 404

    manifest = mine["generation"]
    refused = api.post(manifest["responses_url"], json=counts_for(manifest), headers=bearer(VIEWER))
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "/problems/forbidden" and "read-only" in refused.json()["detail"]
    assert api.post("/v1/sessions", json={}, headers=bearer(VIEWER)).status_code == 403
    assert api.post(f"/v1/sessions/{mine['session']['id']}/stop", headers=bearer(VIEWER)).status_code == 403
    assert api.get(f"/v1/sessions/{mine['session']['id']}", headers=bearer(TOKEN_A)).json()["generation"] == 0
    assert api.get("/v1/sessions", headers=bearer("not-a-token-at-all")).status_code == 401


def test_health_readiness_and_metrics_answer_without_a_token_as_the_readme_says(make_api: Any) -> None:
    api = make_api(tokens=[TOKEN_A], read_tokens=[VIEWER])
    created = api.post("/v1/sessions", json={"seed": 5, "population_size": 4}, headers=bearer(TOKEN_A)).json()
    session_id = created["session"]["id"]
    assert api.get(f"/v1/sessions/{session_id}", headers=bearer(TOKEN_A)).status_code == 200
    assert [api.get(path).status_code for path in ("/healthz", "/readyz", "/metrics")] == [200, 200, 200]
    metrics = api.get("/metrics").text  # a scraper needs no token: counts only, routes as their templates
    assert sample(metrics, "evostim_active_sessions") >= 1 and "/v1/sessions/{session_id}" in metrics
    assert session_id not in metrics and TOKEN_A not in metrics
    assert api.get("/v1/sessions").status_code == 401


# -- the command line --------------------------------------------------------------------------------------------
@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No EVOSTIM_* settings from the test run's environment; whatever `serve` sets is undone afterwards."""
    for name in list(os.environ):
        if name.startswith("EVOSTIM_") or name == "PROMETHEUS_MULTIPROC_DIR":
            monkeypatch.delenv(name)
    monkeypatch.setenv("EVOSTIM_DATA_DIR", "unused")  # restored (deleted) after the test, whatever serve sets


def test_a_start_logs_the_schema_upgrade_without_alembics_info_lines(tmp_path: Path) -> None:
    script = (
        "from evostim.server.ops.observability import configure_logging; configure_logging('info'); "
        f"from evostim.server.storage.store import Store; Store('sqlite:///{tmp_path / 'evostim.db'}').close()"
    )  # a fresh process: alembic logs its plugins when first imported
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [line["logger"] for line in lines] == ["evostim"], done.stderr
    assert lines[0]["msg"].startswith("database schema: upgrading from revision None")


def refusal(argv: list[str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    return str(stopped.value.code)


@pytest.mark.usefixtures("clean_environment")
def test_serve_refuses_an_open_address_without_tokens_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    line = refusal(["serve", "--host", "0.0.0.0"])
    assert line.startswith("evostim serve: refusing to listen on 0.0.0.0 without bearer tokens") and "\n" not in line
    assert "--insecure-no-auth" in line and "EVOSTIM_TOKENS" in line
    monkeypatch.setenv("EVOSTIM_ENVIRONMENT", "production")
    line = refusal(["serve"])
    assert line == (
        "evostim serve: refusing to start: EVOSTIM_TOKENS must be set in production: "
        "without tokens anyone can drive sessions"
    )
    assert refusal(["serve", "--workers", "0"]) == "evostim serve: --workers must be 1 or more"


def test_export_without_a_server_says_where_it_looked_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    line = refusal(["export", "s_0123456789abcdef", "--url", url, "--out", str(tmp_path / "x.npz")])
    assert line.startswith(f"evostim export: no server answers at {url} (ConnectError: ") and "\n" not in line
    assert "--url or EVOSTIM_URL" in line and not (tmp_path / "x.npz").exists()
    for command in (["export", "--help"], ["rig", "--help"]):
        with pytest.raises(SystemExit):
            cli.main(command)
        assert "(default: EVOSTIM_URL or http://127.0.0.1:8000)" in " ".join(capsys.readouterr().out.split())


@pytest.mark.usefixtures("clean_environment")
def test_the_readmes_first_serve_command_starts_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Running the server", 1)[1]
    command = next(line for line in section.splitlines() if "-m evostim serve" in line).split("#")[0].split()
    started: list[dict[str, Any]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: started.append(options))
    monkeypatch.chdir(tmp_path)
    cli.main(command[command.index("evostim") + 1 :])
    assert started and started[0]["host"] == "127.0.0.1" and os.environ["EVOSTIM_DATA_DIR"] == "data"


def test_loopback_addresses_need_no_tokens() -> None:
    assert all(is_loopback(host) for host in ("127.0.0.1", "127.0.1.1", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(host) for host in ("0.0.0.0", "::", "192.168.1.20", "rig-server.lab"))


def test_version_and_token_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--version"])
    assert stopped.value.code == 0 and re.fullmatch(r"evostim \S+\n", capsys.readouterr().out)
    cli.main(["token"])
    token, digest = (line.rsplit(" ", 1)[1] for line in capsys.readouterr().out.splitlines())
    assert len(token) >= 32 and digest == token_digest(token)


def help_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        cli.main([*argv, "--help"])
    assert stopped.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # the words, however the terminal's width wrapped them


def test_the_help_lists_every_command_in_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of([], capsys)
    commands = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(commands) == {"serve", "token", "demo", "metric", "rig", "export", "report", "db", "sweep"}
    for name, parser in commands.items():
        assert f" {name} " in text, name
        assert parser.format_help()  # every command's own help renders
    assert "``" not in text and ":class:" not in text and "`evostim COMMAND --help`" in text


@pytest.mark.usefixtures("clean_environment")
def test_serve_help_names_every_setting_and_the_defaults_show(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(["serve"], capsys)
    for name in Settings.model_fields:
        assert f"EVOSTIM_{name.upper()} " in text, name
    assert "(default: EVOSTIM_HOST or 127.0.0.1)" in text and "(default: EVOSTIM_PORT or 8000)" in text
    assert "EVOSTIM_MAX_POPULATION population_size of a session (default: 500)" in text
    demo = help_of(["demo"], capsys)
    assert "(default: onet.conv3.9)" in demo and "generations to run (default: 60)" in demo
    assert "presentations per image (default: 2)" in demo and "(default: out/demo)" in demo


@pytest.mark.usefixtures("clean_environment")
def test_serve_reads_host_port_and_workers_from_the_settings_and_its_options_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[dict[str, Any]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: started.append(options))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVOSTIM_PORT", "8123")
    cli.main(["serve"])
    cli.main(["serve", "--port", "9000", "--host", "::1"])
    assert [(o["host"], o["port"]) for o in started] == [("127.0.0.1", 8123), ("::1", 9000)]
    monkeypatch.setenv("EVOSTIM_PORT", "http")
    assert refusal(["serve"]).startswith("evostim serve: refusing to start: EVOSTIM_PORT: Input should be a valid")
    monkeypatch.delenv("EVOSTIM_PORT")
    monkeypatch.setenv("EVOSTIM_WORKERS", "0")
    assert refusal(["serve"]).startswith("evostim serve: refusing to start: EVOSTIM_WORKERS: Input should be greater")


# -- several worker processes on one SQLite file -----------------------------------------------------------------
@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVOSTIM_")}
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "evostim", "serve", "--port", str(port), "--workers", "2"]
    command += ["--data-dir", str(tmp_path / "data")]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("two workers did not get ready: " + log.read_text()[-2000:])
        yield url, log
    finally:
        process.terminate()
        process.wait(timeout=60)


def _race(post: Callable[..., httpx.Response], headers: dict[str, str], racers: int) -> list[httpx.Response]:
    """The same post sent by ``racers`` threads at once."""
    with ThreadPoolExecutor(racers) as pool:
        return list(pool.map(lambda _: post(headers=headers), range(racers)))


def _run_session(url: str, seed: int, generations: int, racers: int) -> list[Any]:
    """A session stepped ``generations`` times; each post is sent by ``racers`` clients at once (same key)."""
    with httpx.Client(base_url=url, timeout=60) as http:
        manifest = http.post("/v1/sessions", json={"seed": seed, "population_size": 6}).json()["generation"]
        session_id = manifest["session_id"]
        for number in range(generations):
            post = partial(http.post, manifest["responses_url"], json=counts_for(manifest, seed=number))
            answers = _race(post, {"Idempotency-Key": f"gen-{number}"}, racers)
            accepted = [a for a in answers if a.status_code == 200]
            assert accepted and all(a.status_code in (200, 409) for a in answers), [a.text for a in answers]
            assert all(a.json() == accepted[0].json() for a in accepted)  # replays of one stored answer
            manifest = http.get(f"/v1/sessions/{session_id}/generations/{number + 1}").json()
        history: list[Any] = http.get(f"/v1/sessions/{session_id}/history?codes=true").json()["generations"]
        return history


def _reference_history(make_api: Any, seed: int, generations: int) -> list[Any]:
    """The session run by one in-process server, one request at a time."""
    single = make_api()
    manifest = single.post("/v1/sessions", json={"seed": seed, "population_size": 6}).json()["generation"]
    for number in range(generations):
        manifest = single.post(manifest["responses_url"], json=counts_for(manifest, seed=number)).json()["next"]
    history: list[Any] = single.get(f"/v1/sessions/{manifest['session_id']}/history?codes=true").json()["generations"]
    return history


def test_two_workers_on_one_sqlite_file_count_each_generation_once_and_propose_what_one_process_does(
    two_workers: tuple[str, Path], tmp_path: Path, make_api: Any
) -> None:
    url, log = two_workers
    raced = _run_session(url, seed=21, generations=4, racers=4)
    reference = _reference_history(make_api, seed=21, generations=4)  # one process, one request at a time
    assert len(raced) == len(reference) == 5 and raced[0]["stimuli"][0]["code"] is not None
    for ours, theirs in zip(raced, reference, strict=True):
        assert [s["code"] for s in ours["stimuli"]] == [s["code"] for s in theirs["stimuli"]]
        assert [s["counts"] for s in ours["stimuli"]] == [s["counts"] for s in theirs["stimuli"]]
    metrics = httpx.get(f"{url}/metrics").text  # summed over both workers
    assert sample(metrics, "evostim_generations_served_total") == 4
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(line.get("address") == url and line["workers"] == 2 for line in lines)
    assert any("SQLite" in line["msg"] for line in lines if line["level"] == "warning")


# -- several replicas on one Postgres database ------------------------------------------------------------------
@pytest.mark.postgres
def test_two_replicas_on_one_postgres_take_turns_on_a_session_and_never_serve_a_stale_optimizer(
    tmp_path: Path, postgres_cluster: Any, make_api: Any
) -> None:
    from evostim.clients.http.local_server import LocalServer

    env = {"EVOSTIM_DATABASE_URL": postgres_cluster.create_database("replicas")}
    with LocalServer(tmp_path / "a", env=env) as a, LocalServer(tmp_path / "b", env=env) as b:
        replicas = [httpx.Client(base_url=a.url, timeout=60), httpx.Client(base_url=b.url, timeout=60)]
        manifest = replicas[0].post("/v1/sessions", json={"seed": 33, "population_size": 6}).json()["generation"]
        session_id = manifest["session_id"]
        for number in range(6):  # A posts the even generations, B the odd ones: each one's cache is a step behind
            poster, reader = replicas[number % 2], replicas[1 - number % 2]
            answer = poster.post(manifest["responses_url"], json=counts_for(manifest, seed=number))
            assert answer.status_code == 200, answer.text
            manifest = answer.json()["next"]
            # the other replica reads the write at once: the session's state and the new generation
            assert reader.get(f"/v1/sessions/{session_id}").json()["generation"] == number + 1
            assert reader.get(f"/v1/sessions/{session_id}/generations/{number + 1}").json() == manifest
            assert reader.get(manifest["stimuli"][0]["url"]).status_code == 200
        raced = replicas[1].get(f"/v1/sessions/{session_id}/history?codes=true").json()["generations"]
        for client in replicas:
            client.close()
    reference = _reference_history(make_api, seed=33, generations=6)
    assert len(raced) == len(reference) == 7
    for ours, theirs in zip(raced, reference, strict=True):
        assert [s["code"] for s in ours["stimuli"]] == [s["code"] for s in theirs["stimuli"]]
        assert [s["counts"] for s in ours["stimuli"]] == [s["counts"] for s in theirs["stimuli"]]


# -- bounded memory ----------------------------------------------------------------------------------------------
def test_the_optimizer_cache_keeps_the_most_recent_within_its_byte_bound() -> None:
    from evostim.optimizers import create_optimizer
    from evostim.server.sessions.stepper import OptimizerStepper, array_bytes

    optimizers = [create_optimizer("cholesky-cma", 100, population_size=8, seed=s) for s in range(3)]
    for optimizer in optimizers:
        optimizer.ask()
    size = array_bytes(optimizers[0])
    assert size >= 8 * 100 * 8  # at least the pending codes
    stepper = OptimizerStepper(None, snapshot_every=10, cache_bytes=2 * size)  # type: ignore[arg-type]
    for i, optimizer in enumerate(optimizers):
        stepper.keep(f"s{i}", optimizer)
    assert stepper.cached == (2, 2 * size)  # s0, the least recently kept, was dropped
    stepper.keep("s1", None)
    assert stepper.cached == (1, size)


def test_sessions_whose_optimizers_were_evicted_propose_what_cached_ones_do(make_api: Any) -> None:
    def run(api: TestClient) -> list[Any]:
        manifest = api.post("/v1/sessions", json={"seed": 5, "population_size": 6}).json()["generation"]
        for number in range(3):
            manifest = api.post(manifest["responses_url"], json=counts_for(manifest, seed=number)).json()["next"]
        history: list[Any] = api.get(f"/v1/sessions/{manifest['session_id']}/history?codes=true").json()["generations"]
        return [[s["code"] for s in generation["stimuli"]] for generation in history]

    no_cache = make_api(optimizer_cache_mb=0)  # every post replays its optimizer from the store
    assert run(no_cache) == run(make_api())


def test_cached_pixels_own_their_memory(dcgan: Any) -> None:
    import numpy as np

    from evostim.server.media.renderer import Renderer

    renderer = Renderer(lambda name: dcgan, cache_bytes=2**30)
    batch = renderer.prepare("dcgan-faces", list(np.random.default_rng(0).standard_normal((4, 100))))
    assert batch is not None
    batch.result()  # decoded in the background
    held = list(renderer._cache._items.values())
    assert len(held) == 4 and all(isinstance(p, np.ndarray) and p.base is None for p in held)
    assert renderer.cache_bytes == 4 * 64 * 64 * 3


def test_a_running_server_keeps_its_long_lived_objects_out_of_the_collectors_scans(tmp_path: Path) -> None:
    """server/ops/collector.py: a full collection scanned every module's objects with the GIL held (200-450 ms under
    load); frozen while the server runs, and handed back when it stops."""
    with TestClient(create_app(Settings(data_dir=tmp_path, gc_freeze=True))) as client:
        frozen = gc.get_freeze_count()
        assert frozen > 100_000  # torch, SQLAlchemy, pydantic, FastAPI: the imports alone
        assert client.post("/v1/sessions", json={"seed": 1}).status_code == 201  # loads dcgan-faces for this server
        assert gc.get_freeze_count() > frozen  # frozen again once the generator loaded
        assert len(gc.get_objects()) < frozen / 10  # what a collection scans: what was made since
    assert gc.get_freeze_count() == 0  # what the stopped server held can be collected
