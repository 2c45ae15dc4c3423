"""The client's half of the protocol, without a server: retries only what may be sent twice, bodies checked against
the wire types before sending, one error class per problem type, and the sync and async clients kept alike."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest

import evostim
from evostim.clients.http import calls, errors
from evostim.clients.http.client import AsyncClient, Client

PROBLEM = {"Content-Type": "application/problem+json"}
SESSION = {"id": "s_1", "status": "running", "generation": 0}
CREATED = {"session": SESSION, "generation": {"number": 0, "stimuli": []}}
ANSWER = {"accepted": {"number": 0, "measured": 1}, "session": SESSION, "next": None}


def problem(status: int, slug: str, **extra: Any) -> httpx.Response:
    body = {"type": f"/problems/{slug}", "title": "t", "status": status, "detail": f"{slug} happened", **extra}
    return httpx.Response(status, json=body, headers=PROBLEM)


class Script:
    """A MockTransport handler that answers requests in turn from a script (an exception is raised instead)."""

    def __init__(self, *answers: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        answer = answer(request) if callable(answer) else answer
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)  # a fresh copy

    @property
    def keys(self) -> list[str | None]:
        return [r.headers.get("Idempotency-Key") for r in self.requests]


def sync_client(script: Script, **options: Any) -> Client:
    return Client("http://evostim.test", transport=httpx.MockTransport(script), backoff=0.0, **options)


def call(script: Script, method: str, *args: Any, **kwargs: Any) -> Any:
    """``method`` through the sync client over ``script``."""
    with sync_client(script) as client:
        return getattr(client, method)(*args, **kwargs)


def both(script_factory: Callable[[], Script], method: str, *args: Any, **kwargs: Any) -> list[tuple[Any, Script]]:
    """``method`` through the sync and the async client, each over a fresh script: [(result or error, script)]."""
    outcomes: list[tuple[Any, Script]] = []
    script = script_factory()
    with sync_client(script) as client:
        try:
            outcomes.append((getattr(client, method)(*args, **kwargs), script))
        except Exception as error:
            outcomes.append((error, script))

    async def run_async() -> Any:
        async with AsyncClient("http://evostim.test", transport=httpx.MockTransport(ascript), backoff=0.0) as aclient:
            try:
                return await getattr(aclient, method)(*args, **kwargs)
            except Exception as error:
                return error

    ascript = script_factory()
    outcomes.append((asyncio.run(run_async()), ascript))
    return outcomes


# -- retries --------------------------------------------------------------------------------------------------------
def test_a_read_is_retried_on_a_503_and_on_a_lost_connection() -> None:
    def script() -> Script:
        return Script(problem(503, "unavailable"), httpx.ConnectError("refused"), httpx.Response(200, json=SESSION))

    for result, used in both(script, "session", "s_1"):
        assert result == SESSION and len(used.requests) == 3
        assert all(r.method == "GET" for r in used.requests)


def test_a_problem_that_says_retryable_is_retried_and_one_that_says_not_is_raised_at_once() -> None:
    retryable = Script(problem(500, "internal-error", retryable=True), httpx.Response(200, json=SESSION))
    assert call(retryable, "session", "s_1") == SESSION and len(retryable.requests) == 2

    final = Script(problem(503, "database-busy", retryable=False))
    with pytest.raises(errors.ServerError) as raised, sync_client(final) as client:
        client.session("s_1")
    assert len(final.requests) == 1 and not raised.value.retryable


def test_retries_end_after_the_configured_number_with_the_last_error() -> None:
    script = Script(problem(502, "bad-gateway"))
    with pytest.raises(errors.ServerError) as raised, sync_client(script, retries=2) as client:
        client.history("s_1")
    assert len(script.requests) == 3 and raised.value.status == 502 and raised.value.retryable

    lost = Script(httpx.ReadTimeout("no answer"))
    with pytest.raises(httpx.ReadTimeout), sync_client(lost, retries=1) as client:
        client.history("s_1")
    assert len(lost.requests) == 2


def test_every_post_carries_a_key_and_its_retries_reuse_the_key_and_the_bytes() -> None:
    counts = {"g0-e0": {"ch0": [1, 2]}}
    posts: list[tuple[str, tuple[Any, ...], dict[str, Any], dict[str, Any]]] = [
        ("create_session", (), {"seed": 1}, CREATED),
        ("fork", ("s_1",), {"best": 2}, CREATED),
        ("stop", ("s_1",), {}, SESSION),
        ("resume", ("s_1",), {}, SESSION),
        ("post_responses", ("s_1", 0, counts), {}, ANSWER),
        ("post_block", ({"generations": [{"session": "s_1", "number": 0}]}, {("s_1", "g0-e0"): {"ch0": [1]}}), {}, {}),
    ]
    for method, args, kwargs, answer in posts:

        def script(answer: dict[str, Any] = answer) -> Script:
            return Script(
                httpx.ReadError("reset after the server acted"),
                problem(504, "gateway-timeout"),
                httpx.Response(200, json=answer),
            )

        for result, used in both(script, method, *args, **kwargs):
            assert result == answer, method
            assert [r.method for r in used.requests] == ["POST"] * 3
            keys = used.keys
            assert keys[0] and len(keys[0]) == 32 and keys == [keys[0]] * 3, (method, keys)
            assert len({r.content for r in used.requests}) == 1


def test_two_logical_calls_get_two_keys_and_a_given_key_is_sent_as_is() -> None:
    script = Script(httpx.Response(200, json=ANSWER))
    with sync_client(script) as client:
        client.post_responses("s_1", 0, {"g0-e0": {"ch0": [1]}})
        client.post_responses("s_1", 0, {"g0-e0": {"ch0": [1]}})
        client.post_responses("s_1", 0, {"g0-e0": {"ch0": [1]}}, idempotency_key="block-7")
        client.create_session(seed=1, idempotency_key="create-1")
    keys = script.keys
    assert keys[0] != keys[1] and keys[2:] == ["block-7", "create-1"]


def test_an_unkeyed_post_is_never_retried() -> None:
    # No method of the client sends one; the rule itself still refuses to send a post twice without a key.
    script = Script(httpx.ReadError("reset"), httpx.Response(200, json={}))
    unkeyed = calls.Call("POST", "/v1/sessions/s_1/stop")
    assert not unkeyed.retryable and calls.post("/x").retryable and calls.get("/x").retryable
    with pytest.raises(httpx.ReadError), sync_client(script) as client:
        client._send(unkeyed)
    assert len(script.requests) == 1 and script.keys == [None]

    refused = Script(problem(503, "unavailable"), httpx.Response(200, json={}))
    with pytest.raises(errors.ServerError), sync_client(refused) as client:
        client._send(unkeyed)
    assert len(refused.requests) == 1


@pytest.mark.parametrize(
    ("answer", "raised"),
    [
        (problem(409, "generation-closed", open_generation=1), errors.GenerationClosed),
        (problem(409, "idempotency-key-reused"), errors.IdempotencyKeyReused),
        (problem(422, "invalid-responses"), errors.InvalidResponses),
        (problem(404, "session-not-found"), errors.SessionNotFound),
        (problem(500, "state-corrupt"), errors.StateCorrupt),
    ],
)
def test_a_conflict_or_a_refusal_is_never_retried(answer: httpx.Response, raised: type[errors.EvostimError]) -> None:
    for method, args in [("post_responses", ("s_1", 0, {"g0-e0": {"ch0": [1]}})), ("session", ("s_1",))]:
        for result, used in both(lambda: Script(answer, httpx.Response(200, json={})), method, *args):
            assert type(result) is raised and len(used.requests) == 1
            assert not result.retryable and result.status == answer.status_code
            assert result.problem["detail"].endswith("happened")


def test_a_retry_waits_at_least_the_servers_retry_after_but_never_long() -> None:
    assert calls.delay(0.25, 0) == 0.25 and calls.delay(0.25, 3) == 2.0
    later = httpx.Response(503, headers={"Retry-After": "2"})
    assert calls.delay(0.25, 0, later) == 2.0
    assert calls.delay(0.25, 0, httpx.Response(503, headers={"Retry-After": "3600"})) == 30.0
    assert calls.delay(0.25, 1, httpx.Response(503, headers={"Retry-After": "soon"})) == 0.5


# -- bodies from the wire types ---------------------------------------------------------------------------------------
def test_a_bad_body_fails_before_it_is_sent_with_the_servers_rules() -> None:
    script = Script(httpx.Response(200, json=ANSWER))
    with sync_client(script) as client:
        bad_calls: list[Callable[[], Any]] = [
            lambda: client.create_session(population_size=1),
            lambda: client.create_session(channels=["a", "a"]),
            lambda: client.create_session(colour="blue"),
            lambda: client.fork("s_1", best=0),
            lambda: client.post_responses("s_1", 0, {"g0-e0": {"ch0": [-1.0]}}),
            lambda: client.post_responses("s_1", 0, {"g0-e0": {"ch0": [float("nan")]}}),
            lambda: client.post_responses("s_1", 0, {"g0-e0": {"ch0": []}}),
            lambda: client.post_responses("s_1", 0, {}),
            lambda: client.post_responses("s_1", 0, {"g0-e0": {"ch0": [1]}}, baselines={"g0-e1": {"ch0": [1]}}),
            lambda: client.post_block({"generations": []}, {("s_1", "g0-e0"): {"ch0": [1]}}),
        ]
        for bad in bad_calls:
            with pytest.raises(errors.ValidationError) as raised:
                bad()
            assert raised.value.status == 422 and not raised.value.retryable
            assert raised.value.problem["detail"].startswith("not sent")
    assert script.requests == []


BLOCK = {"generations": [{"session": "s_1", "number": 0}]}
# (counts of one channel, what the refusal says): never converted item by item, as float() would
NOT_REPETITIONS = [
    ("12", "not str '12'"),  # a string is not two repetitions [1.0, 2.0]
    (7, "not int 7"),  # a bare number is not a list of repetitions
    ([True, False], "repetition 0 is bool True, not a number"),  # a bool is not a count [1.0, 0.0]
    ([3, "x"], "repetition 1 is str 'x', not a number"),
    ([np.bool_(True)], "repetition 0 is bool"),
    (np.array([1, 0], dtype=bool), "repetition 0 is bool"),
    ([1, None], "repetition 1 is NoneType None, not a number"),
    ([2 + 1j], "not a number"),
    ([10**400], "too large for a number"),
    (np.ones((2, 2)), "not a 2-D numpy array of float64"),
    ({"a": 1}, "not dict"),
    ([], "has no values"),
]


@pytest.mark.parametrize(("values", "fragment"), NOT_REPETITIONS)
def test_counts_and_baselines_that_are_not_sequences_of_numbers_are_refused_before_sending(
    values: Any, fragment: str
) -> None:
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any], str]] = [
        ("post_responses", ("s_1", 0, {"g0-e3": {"ch1": values}}), {}, "counts of stimulus 'g0-e3', channel 'ch1'"),
        (
            "post_responses",
            ("s_1", 0, {"g0-e3": {"ch1": [1.0]}}),
            {"baselines": {"g0-e3": {"ch1": values}}},
            "baseline of stimulus 'g0-e3', channel 'ch1'",
        ),
        (
            "post_block",
            (BLOCK, {("s_1", "g0-e3"): {"ch1": values}}),
            {},
            "counts of stimulus 'g0-e3' of session 's_1', channel 'ch1'",
        ),
    ]
    for method, args, kwargs, where in calls:
        for raised, used in both(lambda: Script(httpx.Response(200, json=ANSWER)), method, *args, **kwargs):
            assert isinstance(raised, errors.ValidationError), (method, raised)
            problem = raised.problem
            assert problem["type"] == "/problems/validation-error" and problem["status"] == 422
            assert problem["detail"].startswith(f"not sent: {where}") and fragment in problem["detail"], problem
            assert problem["stimulus"] == "g0-e3" and problem["channel"] == "ch1" and not raised.retryable
            assert used.requests == []


def test_counts_that_are_not_keyed_as_the_call_says_are_refused_before_sending() -> None:
    calls: list[tuple[str, tuple[Any, ...], str]] = [
        ("post_responses", ("s_1", 0, [("g0-e0", [1])]), "counts ({stimulus id: {channel:"),
        ("post_responses", ("s_1", 0, {"g0-e0": [1, 2]}), "counts of stimulus 'g0-e0' ({channel:"),
        ("post_block", (BLOCK, {"g0-e0": {"ch1": [1]}}), "keyed by (session id, stimulus id), not str 'g0-e0'"),
    ]
    for method, args, fragment in calls:
        for raised, used in both(lambda: Script(httpx.Response(200, json=ANSWER)), method, *args):
            assert isinstance(raised, errors.ValidationError) and fragment in raised.detail, raised
            assert used.requests == []


def test_numpy_numbers_and_arrays_are_sent_as_the_numbers_they_hold() -> None:
    counts = {"g3-e0": {"a": np.array([1, 2], dtype=np.int64), "b": (np.float32(1.5), np.uint8(2))}}
    baselines = {"g3-e0": {"a": [np.float64(0.5), 0], "b": np.array([0.25, 1.0])}}
    for result, used in both(lambda: Script(httpx.Response(200, json=ANSWER)), "post_responses", "s_1", 3, counts,
                             baselines=baselines):  # fmt: skip
        assert result == ANSWER
        sent = json.loads(used.requests[0].content)["responses"][0]
        assert sent["counts"] == {"a": [1.0, 2.0], "b": [1.5, 2.0]}
        assert sent["baseline"] == {"a": [0.5, 0.0], "b": [0.25, 1.0]}


def test_the_body_sent_is_the_wire_types_dump_of_what_the_caller_gave() -> None:
    from evostim.protocol import ResponsesSubmit, SessionCreate

    script = Script(lambda request: httpx.Response(200, json=CREATED if request.url.path == "/v1/sessions" else ANSWER))
    with sync_client(script) as client:
        client.create_session(SessionCreate(seed=4, channels=["a", "b"]), population_size=6)
        client.create_session({"optimizer": {"name": "ga"}})
        client.post_responses("s_1", 3, {"g3-e0": {"a": [1, 2]}}, baselines={"g3-e0": {"a": [0, 1]}})
        submit = ResponsesSubmit.model_validate({"responses": [{"stimulus": "g3-e1", "counts": {"a": [5]}}]})
        client.post_responses("s_1", 3, submit)
        with pytest.raises(TypeError):
            client.post_responses("s_1", 3, submit, baselines={"g3-e1": {"a": [1]}})
    bodies = [json.loads(r.content) for r in script.requests]
    assert bodies[0] == {"seed": 4, "channels": ["a", "b"], "population_size": 6}  # defaults are the server's
    assert bodies[1] == {"optimizer": {"name": "ga"}}
    assert bodies[2] == {
        "responses": [{"stimulus": "g3-e0", "counts": {"a": [1.0, 2.0]}, "baseline": {"a": [0.0, 1.0]}}]
    }
    assert bodies[3] == {"responses": [{"stimulus": "g3-e1", "counts": {"a": [5.0]}}]}
    assert all(r.headers["Content-Type"] == "application/json" for r in script.requests)


# -- the error tree ---------------------------------------------------------------------------------------------------
SLUGS = {
    "unauthorized": (401, errors.Unauthorized),
    "forbidden": (403, errors.Forbidden),
    "not-found": (404, errors.NotFound),
    "session-not-found": (404, errors.SessionNotFound),
    "generation-not-found": (404, errors.GenerationNotFound),
    "stimulus-not-found": (404, errors.StimulusNotFound),
    "conflict": (409, errors.Conflict),
    "generation-closed": (409, errors.GenerationClosed),
    "idempotency-key-reused": (409, errors.IdempotencyKeyReused),
    "session-not-running": (409, errors.SessionNotRunning),
    "invalid-request": (422, errors.InvalidRequest),
    "invalid-session-config": (422, errors.InvalidSessionConfig),
    "invalid-responses": (422, errors.InvalidResponses),
    "validation-error": (422, errors.ValidationError),
    "extra-missing": (422, errors.ExtraMissing),
    "generator-unavailable": (422, errors.GeneratorUnavailable),
    "method-not-allowed": (405, errors.MethodNotAllowed),
    "unstorable-value": (422, errors.UnstorableValue),
    "content-too-large": (413, errors.ContentTooLarge),
    "unsupported-media-type": (415, errors.UnsupportedMediaType),
    "state-corrupt": (500, errors.StateCorrupt),
    "internal-error": (500, errors.InternalError),
    "not-ready": (503, errors.NotReady),
    "too-many-streams": (429, errors.TooManyRequests),
    "event-streams-full": (503, errors.EventStreamsFull),
    "too-many-connections": (503, errors.TooManyConnections),
    "database-unavailable": (503, errors.DatabaseUnavailable),
}


@pytest.mark.parametrize("slug", sorted(SLUGS))
def test_every_problem_type_the_server_answers_has_its_error_class(slug: str) -> None:
    status, cls = SLUGS[slug]
    body = {"type": f"/problems/{slug}", "title": "t", "status": status, "detail": "d"}
    error = errors.error_from_problem(status, body)
    assert type(error) is cls and cls.slug == slug and isinstance(error, evostim.EvostimError)
    assert error.status == status and error.problem == body and error.detail == "d"
    # none of them is transient unless the body says so, or its status does (503 not-ready)
    assert error.retryable == errors.is_transient_status(status)
    assert errors.error_from_problem(status, {**body, "retryable": True}).retryable
    assert getattr(evostim, cls.__name__) is cls


def test_the_tree_groups_problems_by_what_a_caller_does_about_them() -> None:
    groups = {
        errors.NotFound: {errors.SessionNotFound, errors.GenerationNotFound, errors.StimulusNotFound},
        errors.Conflict: {errors.GenerationClosed, errors.IdempotencyKeyReused, errors.SessionNotRunning},
        errors.InvalidRequest: {
            errors.InvalidSessionConfig,
            errors.InvalidResponses,
            errors.ValidationError,
            errors.ExtraMissing,
            errors.GeneratorUnavailable,
            errors.MethodNotAllowed,
            errors.UnstorableValue,
            errors.ContentTooLarge,
            errors.UnsupportedMediaType,
        },
        errors.ServerError: {
            errors.StateCorrupt,
            errors.InternalError,
            errors.NotReady,
            errors.EventStreamsFull,
            errors.TooManyConnections,
            errors.DatabaseUnavailable,
        },
    }
    for parent, children in groups.items():
        assert set(parent.__subclasses__()) == children and parent.__base__ is errors.EvostimError
    tops = {errors.Unauthorized, errors.Forbidden, errors.TooManyRequests, *groups}
    assert set(errors.EvostimError.__subclasses__()) == tops
    for name in errors.__all__:  # the docstring draws every class
        if isinstance(getattr(errors, name), type):
            assert name in (errors.__doc__ or ""), name


def test_the_servers_problem_types_all_have_a_client_class() -> None:
    from evostim.server.api.problems import HTTP_STATUS_PROBLEMS, PROBLEMS

    for problem in [*PROBLEMS.values(), *HTTP_STATUS_PROBLEMS.values()]:
        assert problem.slug in SLUGS, problem.slug
        assert SLUGS[problem.slug][0] == problem.status, problem


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, errors.InvalidRequest, False),
        (401, errors.Unauthorized, False),
        (403, errors.Forbidden, False),
        (404, errors.NotFound, False),
        (409, errors.Conflict, False),
        (415, errors.UnsupportedMediaType, False),
        (422, errors.InvalidRequest, False),
        (500, errors.ServerError, False),
        (502, errors.ServerError, True),
        (503, errors.ServerError, True),
        (504, errors.ServerError, True),
    ],
)
def test_an_unknown_slug_or_a_proxys_page_maps_by_status(status: int, cls: type, retryable: bool) -> None:
    for body in ({"type": "/problems/something-new", "detail": "d"}, {"detail": "<html>gateway</html>"}):
        error = errors.error_from_problem(status, body)
        assert type(error) is cls and error.retryable is retryable


def test_a_proxys_html_error_page_is_read_as_a_problem() -> None:
    script = Script(httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(errors.ServerError) as raised, sync_client(script, retries=0) as client:
        client.session("s_1")
    assert raised.value.retryable and "bad gateway" in raised.value.detail


# -- one surface for both clients -------------------------------------------------------------------------------------
def public_methods(cls: type) -> dict[str, Any]:
    return {name: member for name, member in vars(cls).items() if callable(member) and not name.startswith("_")}


def test_the_async_client_has_the_sync_clients_methods_with_the_same_parameters() -> None:
    sync = public_methods(Client)
    asynchronous = public_methods(AsyncClient)
    asynchronous["close"] = asynchronous.pop("aclose")  # httpx's naming: close() / aclose()
    assert sorted(sync) == sorted(asynchronous)
    for name, method in sync.items():
        twin = asynchronous[name]
        assert inspect.iscoroutinefunction(twin) and not inspect.iscoroutinefunction(method), name
        assert inspect.signature(method) == inspect.signature(twin), name
        assert (method.__doc__ is None) == (twin.__doc__ is None), name
    # The constructors differ only in the transport's kind.
    sync_init = inspect.signature(Client.__init__).parameters
    async_init = inspect.signature(AsyncClient.__init__).parameters
    assert list(sync_init) == list(async_init)
    for name, parameter in sync_init.items():
        twin_parameter = async_init[name]
        if name == "transport":
            twin_parameter = twin_parameter.replace(annotation=str(twin_parameter.annotation).replace("Async", ""))
        assert parameter == twin_parameter, name
    assert hasattr(Client, "__enter__") and hasattr(AsyncClient, "__aenter__")
