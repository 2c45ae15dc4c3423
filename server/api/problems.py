"""Errors at the edge: one table maps every error type to an RFC 9457 ``application/problem+json`` answer.

Domain code raises errors named by meaning (the service's in ``server/sessions/errors.py``, the store's in
``server/storage/errors.py``, the optimizers' and generators' in their own packages, ``MissingExtra`` for an optional
package, the event streams' limits in ``server/api/event_hub.py``); none of them knows HTTP. ``PROBLEMS`` below says,
for each type, the HTTP status, the problem type (``/problems/<slug>``) and whether sending the same request again
can succeed. An error is looked up by its class's MRO, so a subclass without a row of its own answers as its nearest
mapped base (tests insist every known class has its own row, so a new error type cannot be forgotten).

Every answer is a problem body::

    {"type": "/problems/<slug>", "title": <status phrase>, "status": <status>, "detail": <what to do>,
     "instance": <request path>, "retryable": <bool>, ...the error's own fields}

A 5xx answer also carries ``"incident"``: an id written, with the traceback, to the ``evostim`` log, so an operator
finds the failure a user reports. Anything not in the table (a bug) is ``internal-error``: its detail never shows
internals. An error with a ``retry_after`` field (seconds) sends it as the Retry-After header too. The framework's
own HTTP errors (an unknown route, a method the route does not allow) keep their status and take their problem type
from ``HTTP_STATUS_PROBLEMS``; a malformed or mistyped body is ``validation-error``, a body not sent as JSON
``unsupported-media-type`` (415), one that is not UTF-8 text ``bad-request`` (400).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from evostim.extras import MissingExtra
from evostim.generators.errors import (
    BadLatentCodes,
    GeneratorError,
    GeneratorPackageMissing,
    GeneratorWeightsMismatch,
    GeneratorWeightsMissing,
    MetricNotFound,
    UnknownGenerator,
)
from evostim.optimizers.errors import (
    DuplicateCandidate,
    IncompatibleState,
    InvalidParameter,
    NoPendingPopulation,
    OptimizerError,
    PendingPopulation,
    UnknownCandidate,
    UnknownOptimizer,
)
from evostim.server.api.event_hub import EventStreamsFull, TooManyStreams
from evostim.server.sessions.errors import (
    Conflict,
    DomainError,
    Forbidden,
    GenerationClosed,
    GenerationNotFound,
    IdempotencyKeyReused,
    InvalidRequest,
    InvalidResponses,
    InvalidSessionConfig,
    NotFound,
    NotReady,
    OptimizerFailed,
    SessionNotFound,
    SessionNotRunning,
    StateCorrupt,
    StimulusNotFound,
    Unauthorized,
    UnsupportedMediaType,
)
from evostim.server.storage.errors import (
    ConcurrentUpdate,
    DatabaseUnavailable,
    GenerationAlreadyClosed,
    IdempotencyKeyTaken,
    StoreError,
    UnstorableValue,
)

__all__ = [
    "HTTP_STATUS_PROBLEMS",
    "PROBLEMS",
    "PROBLEM_JSON",
    "Problem",
    "install_problem_handlers",
    "problem_for",
    "problem_response",
]

PROBLEM_JSON: Final = "application/problem+json"

log = logging.getLogger("evostim")


class Problem(NamedTuple):
    """How one error type is answered: HTTP status, problem type slug, and whether the same request may succeed."""

    status: int
    slug: str
    retryable: bool


# The one table. retryable=True only where sending the same request again can succeed without changing it.
PROBLEMS: Final[Mapping[type[Exception], Problem]] = MappingProxyType(
    {
        # -- the session service (server/sessions/errors.py) --------------------------------------------------
        DomainError: Problem(500, "internal-error", True),  # never raised bare; a subclass says what went wrong
        Unauthorized: Problem(401, "unauthorized", False),  # send a valid bearer token
        Forbidden: Problem(403, "forbidden", False),  # a read-only token: use a token of the lab's rigs
        NotFound: Problem(404, "not-found", False),
        SessionNotFound: Problem(404, "session-not-found", False),
        GenerationNotFound: Problem(404, "generation-not-found", False),
        StimulusNotFound: Problem(404, "stimulus-not-found", False),
        Conflict: Problem(409, "conflict", False),  # re-read the session's state first
        GenerationClosed: Problem(409, "generation-closed", False),  # its responses are stored; post the open one
        IdempotencyKeyReused: Problem(409, "idempotency-key-reused", False),  # new data needs a new key
        SessionNotRunning: Problem(409, "session-not-running", False),  # resume (stopped) or fork (finished)
        InvalidRequest: Problem(422, "invalid-request", False),  # fix the request
        InvalidSessionConfig: Problem(422, "invalid-session-config", False),
        InvalidResponses: Problem(422, "invalid-responses", False),
        # the optimizer could not take a generation's scores (an overflow, an outside library's refusal): never a 500
        OptimizerFailed: Problem(422, "invalid-request", False),
        UnsupportedMediaType: Problem(415, "unsupported-media-type", False),  # send the body as application/json
        StateCorrupt: Problem(500, "state-corrupt", False),  # stored state does not replay: a bug, report it
        NotReady: Problem(503, "not-ready", True),  # GET /readyz: the database or a generator is not there yet
        # -- event streams (server/api/event_hub.py): held open for minutes, so each carries a Retry-After ----------
        TooManyStreams: Problem(429, "too-many-streams", True),  # this token's limit: close a stream first
        EventStreamsFull: Problem(503, "event-streams-full", True),  # the server's limit
        # -- the store (server/storage/errors.py): a lost race; the same request then replays or is refused cleanly -
        StoreError: Problem(500, "internal-error", True),  # never raised bare
        ConcurrentUpdate: Problem(409, "conflict", True),
        GenerationAlreadyClosed: Problem(409, "generation-closed", True),  # the same key replays the winner's answer
        IdempotencyKeyTaken: Problem(409, "conflict", True),  # the retry replays the stored answer for that key
        UnstorableValue: Problem(422, "unstorable-value", False),  # NUL in text, a 33-bit integer, NaN in JSON
        # busy, locked or unreachable: the same request may succeed (a keyed one replays if it landed; + Retry-After)
        DatabaseUnavailable: Problem(503, "database-unavailable", True),
        # -- optimizers (optimizers/errors.py) ------------------------------------------------------------------
        OptimizerError: Problem(422, "invalid-request", False),  # an optimizer refused what the request gave it
        InvalidParameter: Problem(422, "invalid-session-config", False),  # parameters come from a session config
        UnknownOptimizer: Problem(422, "invalid-session-config", False),  # GET /v1/optimizers lists the names
        IncompatibleState: Problem(500, "state-corrupt", False),  # a stored state that does not load
        # ask/tell out of order: the service drove its optimizer wrongly (a bug); the cached optimizer is dropped,
        # so a retry reloads it from the store and may succeed
        UnknownCandidate: Problem(500, "internal-error", True),
        DuplicateCandidate: Problem(500, "internal-error", True),
        NoPendingPopulation: Problem(500, "internal-error", True),
        PendingPopulation: Problem(500, "internal-error", True),
        # -- generators (generators/errors.py) ------------------------------------------------------------------
        GeneratorError: Problem(422, "invalid-request", False),
        UnknownGenerator: Problem(422, "invalid-session-config", False),  # GET /v1/generators lists the names
        MetricNotFound: Problem(422, "invalid-session-config", False),  # a basis no file or shipped metric holds
        BadLatentCodes: Problem(422, "invalid-request", False),  # given codes of the wrong shape or not finite
        # the server cannot run that generator until its operator installs or fixes the weights: a 4xx that names
        # the fix (as a missing extra is), not a 503 a client would keep retrying; GET /v1/generators says which run
        GeneratorWeightsMissing: Problem(422, "generator-unavailable", False),
        GeneratorPackageMissing: Problem(422, "generator-unavailable", False),  # + "package": what to install
        GeneratorWeightsMismatch: Problem(422, "generator-unavailable", False),
        # -- optional packages (evostim/extras.py) ----------------------------------------------------------------
        MissingExtra: Problem(422, "extra-missing", False),  # + "extra", "module", "feature": pip install the extra
        # -- the framework ----------------------------------------------------------------------------------------
        RequestValidationError: Problem(422, "validation-error", False),  # malformed JSON or a mistyped field
        # -- anything else is a bug. Nothing was half-written (every write is one transaction), so a read or a
        # keyed post may be retried; if it persists, the incident id finds the traceback in the log
        Exception: Problem(500, "internal-error", True),
    }
)

# The framework's own HTTP errors (routing): status -> problem; other statuses take a slug made from their phrase.
HTTP_STATUS_PROBLEMS: Final[Mapping[int, Problem]] = MappingProxyType(
    {
        404: Problem(404, "not-found", False),  # no such route
        405: Problem(405, "method-not-allowed", False),  # the Allow header lists the methods the route takes
        413: Problem(413, "content-too-large", False),  # a body above EVOSTIM_MAX_BODY_BYTES: send less
    }
)

_TRANSIENT_STATUSES = frozenset({408, 429, 502, 503, 504})
_RESERVED = frozenset({"type", "title", "status", "detail", "instance", "retryable"})


def _mapped_type(error_type: type[BaseException]) -> type[Exception]:
    """The nearest class in ``error_type``'s MRO that has a row in the table (``Exception`` at worst)."""
    for cls in error_type.__mro__:
        if cls in PROBLEMS:
            return cls
    return Exception


def problem_for(error_type: type[BaseException]) -> Problem:
    """The table's row for ``error_type``, looked up by its MRO."""
    return PROBLEMS[_mapped_type(error_type)]


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_response(
    status: int,
    slug: str,
    detail: str,
    instance: str,
    /,
    *,
    retryable: bool = False,
    headers: Mapping[str, str] | None = None,
    members: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """An RFC 9457 answer; the error's own ``members`` follow the standard ones and never replace them."""
    body: dict[str, Any] = {
        "type": f"/problems/{slug}",
        "title": _title(status),
        "status": status,
        "detail": detail,
        "instance": instance,
        "retryable": retryable,
    }
    body.update((name, value) for name, value in (members or {}).items() if name not in _RESERVED)
    all_headers = dict(headers or {})
    if status == 401:
        all_headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(jsonable_encoder(body), status_code=status, media_type=PROBLEM_JSON, headers=all_headers)


# -- what each kind of error contributes ------------------------------------------------------------------------
def _validation_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(e.get("loc", ())), "msg": _validation_message(e), "type": e.get("type", "")}
        for e in error.errors()
    ]


def _validation_message(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "invalid"))
    if error.get("type") != "json_invalid":
        return message
    # say where and why the JSON does not parse, not only that it does not (loc is ("body", <character>))
    where = f" at character {error['loc'][-1]}" if len(error.get("loc", ())) > 1 else ""
    reason = (error.get("ctx") or {}).get("error") or message
    return f"not valid JSON{where}: {reason}"


def _validation_detail(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors[:5]:
        location = ".".join(str(part) for part in error["loc"] if part != "body")
        if error["type"] == "json_invalid":
            location = ""  # the message says where
        parts.append(f"{location or 'body'}: {error['msg']}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def _members(error: BaseException) -> dict[str, Any]:
    """The error's own machine-readable fields, added to its problem body."""
    if isinstance(error, DomainError | StoreError):
        return dict(error.extra)
    if isinstance(error, MissingExtra):
        return {"extra": error.extra, "module": error.module, "feature": error.feature}
    if isinstance(error, GeneratorPackageMissing):
        return {"package": error.package}
    if isinstance(error, RequestValidationError):
        return {"errors": _validation_errors(error)}
    return {}


def _headers(members: Mapping[str, Any]) -> dict[str, str]:
    """An error that says when to come back (``retry_after``, seconds) says it in the Retry-After header too."""
    retry_after = members.get("retry_after")
    return {"Retry-After": str(int(retry_after))} if isinstance(retry_after, int | float) else {}


def _detail(error: BaseException, members: Mapping[str, Any]) -> str:
    if isinstance(error, DomainError | StoreError):
        return error.detail
    if isinstance(error, RequestValidationError):
        return _validation_detail(members["errors"])
    if isinstance(error, MissingExtra):  # the client may be on another machine: say where to install it
        return error.message(where="the server")
    return str(error) or type(error).__name__


def _incident(request: Request, error: BaseException) -> str:
    """Log ``error`` with its traceback under a new incident id, and return the id."""
    incident = secrets.token_hex(8)
    request.state.incident = incident  # for the access log line of this request
    log.error(
        "incident %s: %s %s failed: %s: %s",
        incident,
        request.method,
        request.url.path,
        type(error).__name__,
        error,
        exc_info=(type(error), error, error.__traceback__),
        extra={"incident": incident, "method": request.method, "path": request.url.path},
    )
    return incident


# -- handlers ----------------------------------------------------------------------------------------------------
def _error_answer(request: Request, error: Exception) -> JSONResponse:
    mapped = _mapped_type(type(error))
    problem = PROBLEMS[mapped]
    members = _members(error)
    detail = _detail(error, members)
    if problem.status >= 500:
        members["incident"] = incident = _incident(request, error)
        if mapped is Exception:  # a bug: its message may show internals, the log has them
            detail = f"the server failed unexpectedly (incident {incident}); the operator's log has the details"
    return problem_response(
        problem.status,
        problem.slug,
        detail,
        request.url.path,
        retryable=problem.retryable,
        headers=_headers(members),
        members=members,
    )


def _http_detail(request: Request, error: StarletteHTTPException) -> str:
    if error.detail != _title(error.status_code):  # a detail someone wrote: keep it
        return str(error.detail)
    if error.status_code == 404:
        return f"no endpoint at {request.url.path}; the API is listed at /docs"
    if error.status_code == 405:
        allowed = (error.headers or {}).get("Allow", "")
        return f"{request.method} is not allowed on {request.url.path}; it takes {allowed or 'other methods'}"
    return str(error.detail)


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method the requested path takes: Starlette's 405 names only those of the first route that matched."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


def _http_answer(request: Request, error: StarletteHTTPException) -> Response:
    status = error.status_code
    if status < 400:  # not an error (a 304 raised as an exception): no body, as Starlette answers it
        return Response(status_code=status, headers=error.headers)
    if status == 405:
        error.headers = {**(error.headers or {}), "Allow": _allowed_methods(request)}
    default = Problem(status, _title(status).lower().replace(" ", "-"), status in _TRANSIENT_STATUSES)
    problem = HTTP_STATUS_PROBLEMS.get(status, default)
    return problem_response(
        status,
        problem.slug,
        _http_detail(request, error),
        request.url.path,
        retryable=problem.retryable,
        headers=error.headers,
    )


def _unread_body(request: Request, error: Exception) -> Exception:
    """The framework's refusals of a body it did not read as JSON, said in words. A body sent as another content type
    (or none) reaches the model as raw bytes, which it refuses as "not a dictionary"; a body that is not UTF-8 text
    fails to decode with a bare "error parsing the body"."""
    if isinstance(error, RequestValidationError) and isinstance(error.body, bytes | bytearray):
        sent = request.headers.get("content-type")
        return UnsupportedMediaType(
            "the request body must be JSON sent with Content-Type: application/json; it was sent "
            + (f"as {sent!r}" if sent else "without a Content-Type"),
            content_type=sent,
        )
    cause = error.__cause__
    if isinstance(error, StarletteHTTPException) and error.status_code == 400 and isinstance(cause, UnicodeDecodeError):
        return StarletteHTTPException(
            400,
            f"the request body is not valid UTF-8 JSON (byte {cause.start}: {cause.reason}); "
            "send the JSON text encoded as UTF-8",
        )
    return error


async def _answer(request: Request, error: Exception) -> Response:
    error = _unread_body(request, error)
    if isinstance(error, StarletteHTTPException):
        return _http_answer(request, error)
    return _error_answer(request, error)


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error as problem+json, wherever it is raised.

    Each table type (and the framework's HTTP errors) is handled by the exception middleware around the routes
    and their dependencies; ``Exception`` goes to Starlette's outermost ServerErrorMiddleware, so an error from a
    middleware, or one no row names, is answered as problem+json too (that middleware then re-raises it for the
    server's own log, as Starlette always does).
    """
    for error_type in PROBLEMS:
        if error_type is not Exception:
            app.add_exception_handler(error_type, _answer)
    app.add_exception_handler(StarletteHTTPException, _answer)
    app.add_exception_handler(Exception, _answer)
