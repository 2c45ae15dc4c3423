"""Errors at the edge: every error type answers through the one table, and nothing answers text/plain."""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient

from evostim.extras import MissingExtra
from evostim.generators.errors import GeneratorError, GeneratorPackageMissing
from evostim.optimizers.errors import OptimizerError
from evostim.server.api import problems
from evostim.server.api.problems import PROBLEMS, Problem, problem_for
from evostim.server.app import create_app
from evostim.server.config import Settings
from evostim.server.sessions import errors
from evostim.server.sessions.errors import DomainError, StateCorrupt, Unauthorized
from evostim.server.storage import errors as store_errors
from evostim.server.storage.errors import StoreError
from evostim.server.storage.store import Store
from tests.conftest import counts_for

PROBLEM_JSON = "application/problem+json"
ERROR_MODULES = ("evostim.server.sessions.errors", "evostim.server.storage.errors", "evostim.optimizers.errors",
                 "evostim.generators.errors", "evostim.extras")  # fmt: skip


def _subclasses(base: type[Exception]) -> set[type[Exception]]:
    found = {base}
    for sub in base.__subclasses__():
        found |= _subclasses(sub)
    return {cls for cls in found if cls.__module__.startswith("evostim.")}


def _every_error_type() -> set[type[Exception]]:
    for name in ERROR_MODULES:
        importlib.import_module(name)
    known: set[type[Exception]] = {MissingExtra}
    for base in (DomainError, StoreError, OptimizerError, GeneratorError, MissingExtra):
        known |= _subclasses(base)
    for name in ERROR_MODULES:  # also what a module declares, imported or not elsewhere
        module = importlib.import_module(name)
        known |= {
            value
            for value in (getattr(module, n) for n in getattr(module, "__all__", ()))
            if inspect.isclass(value) and issubclass(value, Exception)
        }
    return known


def _instance(cls: type[Exception]) -> Exception:
    """An instance of ``cls`` with the fields its problem body shows."""
    if cls is MissingExtra:
        return MissingExtra(extra="metric", module="scipy", feature="the pullback metric")
    if issubclass(cls, GeneratorPackageMissing):
        return cls("pip install --no-deps gan-face-generate", package="gan-face-generate")
    if issubclass(cls, DomainError | StoreError):
        return cls(f"what to do about {cls.__name__}", hint="a field for programs")
    if cls is RequestValidationError:
        return RequestValidationError([{"loc": ("body", "seed"), "msg": "not an integer", "type": "int_type"}])
    return cls(f"what went wrong in {cls.__name__}")


def _raising(make: Callable[[], Exception]) -> Callable[[], None]:
    def dependency() -> None:
        raise make()

    return dependency


def _app(tmp_path: Path) -> FastAPI:
    """The real app, plus routes, a dependency and a middleware that raise."""
    app = create_app(Settings(data_dir=tmp_path))
    rows = {cls.__name__: cls for cls in PROBLEMS}

    @app.get("/test/raise/{name}")
    def raise_row(name: str) -> None:
        raise _instance(rows[name])

    @app.get("/test/dependency", dependencies=[Depends(_raising(lambda: RuntimeError("db password in here")))])
    def dependency_raises() -> None:  # pragma: no cover - the dependency raises first
        return None

    @app.get("/test/dependency-domain", dependencies=[Depends(_raising(lambda: Unauthorized("send a token")))])
    def dependency_raises_domain() -> None:  # pragma: no cover - the dependency raises first
        return None

    @app.middleware("http")
    async def raising_middleware(request: Request, call_next: Callable[[Request], Any]) -> Response:
        if request.url.path == "/test/middleware":
            raise RuntimeError("a middleware failed")
        if request.url.path == "/test/middleware-domain":
            raise StateCorrupt("the stored state does not replay", session="s_1")
        response: Response = await call_next(request)
        return response

    return app


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with TestClient(_app(tmp_path_factory.mktemp("problems")), raise_server_exceptions=False) as test_client:
        yield test_client


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON, response.headers
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{slug}" and body["status"] == status and body["title"], body
    assert body["instance"] == response.request.url.path and body["detail"], body
    assert isinstance(body["retryable"], bool)
    return body


def assert_incident_logged(body: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    incident = body["incident"]
    assert isinstance(incident, str) and len(incident) >= 8
    logged = [r for r in caplog.records if r.name == "evostim" and incident in r.getMessage()]
    assert logged and logged[0].levelno == logging.ERROR and logged[0].exc_info is not None


# -- the table ----------------------------------------------------------------------------------------------------
def test_if_every_error_type_has_its_own_row_in_the_table() -> None:
    missing = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in _every_error_type() - set(PROBLEMS))
    assert not missing, f"add these error types to evostim.server.api.problems.PROBLEMS: {missing}"


def test_if_the_table_is_looked_up_by_mro() -> None:
    class Unforeseen(errors.SessionNotRunning):
        pass

    assert problem_for(Unforeseen) == PROBLEMS[errors.SessionNotRunning]
    assert problem_for(KeyError) == Problem(500, "internal-error", True)


def test_if_slugs_keep_their_meaning_across_the_table() -> None:
    statuses: dict[str, set[int]] = {}
    for problem in PROBLEMS.values():
        statuses.setdefault(problem.slug, set()).add(problem.status)
    assert all(len(found) == 1 for found in statuses.values()), statuses


def test_if_domain_errors_know_nothing_of_http() -> None:
    for module in (errors, store_errors):
        source = inspect.getsource(module)
        assert "fastapi" not in source and "starlette" not in source
    for cls in _subclasses(DomainError) | _subclasses(StoreError):
        assert not hasattr(cls, "status") and not hasattr(cls, "slug"), cls


@pytest.mark.parametrize("cls", list(PROBLEMS), ids=lambda cls: cls.__name__)
def test_if_each_row_answers_its_status_slug_and_retryable(
    client: TestClient, caplog: pytest.LogCaptureFixture, cls: type[Exception]
) -> None:
    status, slug, retryable = PROBLEMS[cls]
    with caplog.at_level(logging.ERROR, logger="evostim"):
        body = assert_problem(client.get(f"/test/raise/{cls.__name__}"), status, slug)
    assert body["retryable"] is retryable
    if status >= 500:
        assert_incident_logged(body, caplog)
    else:
        assert "incident" not in body and not caplog.records
    if issubclass(cls, DomainError | StoreError):
        assert body["detail"] == f"what to do about {cls.__name__}" and body["hint"] == "a field for programs"


def test_if_a_missing_extra_names_the_extra_and_the_module(client: TestClient) -> None:
    body = assert_problem(client.get("/test/raise/MissingExtra"), 422, "extra-missing")
    assert body["extra"] == "metric" and body["module"] == "scipy" and "evostim[metric]" in body["detail"]


def test_if_a_missing_generator_package_names_the_package(client: TestClient) -> None:
    body = assert_problem(client.get("/test/raise/GeneratorPackageMissing"), 422, "generator-unavailable")
    assert body["package"] == "gan-face-generate"


def test_if_unauthorized_asks_for_a_bearer_token(client: TestClient) -> None:
    response = client.get("/test/raise/Unauthorized")
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


def test_if_extra_fields_never_replace_the_standard_members() -> None:
    members = {"status": 200, "type": "/problems/evil", "retryable": True, "open_generation": 3}
    response = problems.problem_response(409, "conflict", "re-read", "/x", members=members)
    assert response.status_code == 409
    body = bytes(response.body)
    assert body.startswith(b'{"type":"/problems/conflict","title":"Conflict","status":409,')
    assert body.endswith(b'"retryable":false,"open_generation":3}')


def test_if_a_race_lost_to_another_server_is_a_retryable_generation_closed_that_a_retry_resolves(
    make_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two server processes on one database: the store's conditional update decides, and says so in its own error."""
    first, second = make_api(), make_api()
    created = first.post("/v1/sessions", json={"seed": 5, "population_size": 4})
    manifest = created.json()["generation"]
    body, key = counts_for(manifest), {"Idempotency-Key": "rig-1-generation-0"}
    commit = Store.commit_generation
    raced: list[int] = []

    def commit_after_the_other_server(store: Store, **fields: Any) -> None:
        if not raced:  # the second server read the open generation; the first server commits it now
            raced.append(1)
            assert first.post(manifest["responses_url"], json=body, headers=key).status_code == 200
        commit(store, **fields)

    monkeypatch.setattr(Store, "commit_generation", commit_after_the_other_server)
    lost = second.post(manifest["responses_url"], json=body, headers=key)
    problem = assert_problem(lost, 409, "generation-closed")
    assert problem["retryable"] is True and problem["generation"] == 0 and "another request" in problem["detail"]
    retried = second.post(manifest["responses_url"], json=body, headers=key)
    assert retried.status_code == 200 and retried.headers["idempotent-replayed"] == "true"


# -- the framework's errors ---------------------------------------------------------------------------------------
def test_if_an_unknown_route_is_a_not_found_problem(client: TestClient) -> None:
    body = assert_problem(client.get("/v2/nothing/here"), 404, "not-found")
    assert body["retryable"] is False and "/docs" in body["detail"]


def test_if_a_wrong_method_is_a_method_not_allowed_problem_with_allow(client: TestClient) -> None:
    response = client.delete("/healthz")
    body = assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "GET" and "DELETE" in body["detail"] and body["retryable"] is False


def test_if_malformed_json_is_a_validation_problem(client: TestClient) -> None:
    response = client.post("/v1/sessions", content=b'{"seed": 1,', headers={"content-type": "application/json"})
    body = assert_problem(response, 422, "validation-error")
    assert "not valid JSON at character" in body["detail"] and body["errors"][0]["type"] == "json_invalid"


@pytest.mark.parametrize("payload", [[1, 2], "a string", 3, None])
def test_if_a_body_that_is_not_an_object_is_a_validation_problem(client: TestClient, payload: Any) -> None:
    body = assert_problem(client.post("/v1/sessions", json=payload), 422, "validation-error")
    assert body["retryable"] is False and body["errors"]


def test_if_a_mistyped_field_names_the_field(client: TestClient) -> None:
    body = assert_problem(client.post("/v1/sessions", json={"seed": "five"}), 422, "validation-error")
    assert body["detail"].startswith("seed:") and body["errors"][0]["loc"] == ["body", "seed"]


@pytest.mark.parametrize(
    ("content_type", "said"),
    [("text/plain", "as 'text/plain'"), ("application/x-www-form-urlencoded", "as 'application/x-www-form-urlencoded'"),
     (None, "without a Content-Type")],
)  # fmt: skip
def test_if_a_body_not_sent_as_json_is_an_unsupported_media_type_that_names_what_was_sent(
    client: TestClient, content_type: str | None, said: str
) -> None:
    before = client.get("/v1/sessions").json()["total"]
    headers = {} if content_type is None else {"content-type": content_type}
    response = client.post("/v1/sessions", content=b'{"seed": 1}', headers=headers)
    body = assert_problem(response, 415, "unsupported-media-type")
    assert "must be JSON sent with Content-Type: application/json" in body["detail"] and said in body["detail"]
    assert body["content_type"] == content_type and body["retryable"] is False
    assert client.get("/v1/sessions").json()["total"] == before


def test_if_a_body_that_is_not_utf8_is_a_bad_request_that_says_so(client: TestClient) -> None:
    content = b'{"metadata": {"animal": "B\xe9to"}}'  # Latin-1, not UTF-8
    response = client.post("/v1/sessions", content=content, headers={"content-type": "application/json"})
    body = assert_problem(response, 400, "bad-request")
    assert f"not valid UTF-8 JSON (byte {content.index(0xE9)}:" in body["detail"], body


# -- unexpected exceptions --------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/test/raise/Exception", "/test/dependency", "/test/middleware"])
def test_if_an_unexpected_exception_is_an_internal_error_with_a_logged_incident(
    client: TestClient, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    with caplog.at_level(logging.ERROR, logger="evostim"):
        body = assert_problem(client.get(path), 500, "internal-error")
    assert_incident_logged(body, caplog)
    assert body["incident"] in body["detail"] and "password" not in body["detail"]  # internals stay in the log
    assert body["retryable"] is True


def test_if_unexpected_exceptions_are_still_raised_for_the_servers_log(tmp_path: Path) -> None:
    """Starlette's ServerErrorMiddleware answers with our handler, then re-raises for the server's log."""
    with TestClient(_app(tmp_path), raise_server_exceptions=True) as strict, pytest.raises(RuntimeError):
        strict.get("/test/dependency")


def test_if_domain_errors_raised_in_dependencies_and_middleware_use_the_table(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    assert_problem(client.get("/test/dependency-domain"), 401, "unauthorized")
    with caplog.at_level(logging.ERROR, logger="evostim"):
        body = assert_problem(client.get("/test/middleware-domain"), 500, "state-corrupt")
    assert body["session"] == "s_1" and body["detail"] == "the stored state does not replay"
    assert_incident_logged(body, caplog)


def test_if_no_answer_is_ever_text_plain(client: TestClient) -> None:
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/nowhere", {}),
        ("PUT", "/v1/sessions", {}),
        ("POST", "/v1/sessions", {"content": b"not json", "headers": {"content-type": "application/json"}}),
        ("POST", "/v1/sessions", {"content": b"seed=1", "headers": {"content-type": "text/plain"}}),
        ("GET", "/v1/sessions/s_nope", {}),
        ("GET", "/test/raise/RuntimeError", {}),  # not a row: the route's own lookup fails with KeyError
        ("GET", "/test/dependency", {}),
        ("GET", "/test/middleware", {}),
    ]
    for method, path, options in requests:
        response = client.request(method, path, **options)
        assert response.status_code >= 400 and response.headers["content-type"] == PROBLEM_JSON, (method, path)
