"""Domain errors and their one mapping to RFC 9457 problem+json responses.

DomainError                     (status)  retry helps?
├── Unauthorized                  401      no: send a valid bearer token
├── NotFound                      404      no
│   ├── SessionNotFound
│   ├── GenerationNotFound
│   └── StimulusNotFound
├── Conflict                      409      no: re-read the session's state first
│   ├── GenerationClosed
│   ├── IdempotencyKeyReused
│   └── SessionNotRunning
├── InvalidRequest                422      no: fix the request
│   ├── InvalidSessionConfig
│   └── InvalidResponses
└── StateCorrupt                  500      no: the stored optimizer state does not replay (a bug; report it)
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "PROBLEM_JSON",
    "Conflict",
    "DomainError",
    "GenerationClosed",
    "GenerationNotFound",
    "IdempotencyKeyReused",
    "InvalidRequest",
    "InvalidResponses",
    "InvalidSessionConfig",
    "NotFound",
    "SessionNotFound",
    "SessionNotRunning",
    "StateCorrupt",
    "StimulusNotFound",
    "Unauthorized",
    "install_error_handlers",
    "problem_response",
]

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    status: int = 500
    slug: str = "internal-error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class Unauthorized(DomainError):
    status, slug = 401, "unauthorized"


class NotFound(DomainError):
    status, slug = 404, "not-found"


class SessionNotFound(NotFound):
    slug = "session-not-found"


class GenerationNotFound(NotFound):
    slug = "generation-not-found"


class StimulusNotFound(NotFound):
    slug = "stimulus-not-found"


class Conflict(DomainError):
    status, slug = 409, "conflict"


class GenerationClosed(Conflict):
    slug = "generation-closed"


class IdempotencyKeyReused(Conflict):
    slug = "idempotency-key-reused"


class SessionNotRunning(Conflict):
    slug = "session-not-running"


class InvalidRequest(DomainError):
    status, slug = 422, "invalid-request"


class InvalidSessionConfig(InvalidRequest):
    slug = "invalid-session-config"


class InvalidResponses(InvalidRequest):
    slug = "invalid-responses"


class StateCorrupt(DomainError):
    status, slug = 500, "state-corrupt"


def problem_response(status: int, slug: str, detail: str, instance: str, **extra: Any) -> JSONResponse:
    body = {
        "type": f"/problems/{slug}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_detail(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors[:5]:
        location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        parts.append(f"{location or 'body'}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error as problem+json: domain errors, validation errors, and plain HTTP errors."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, error: DomainError) -> JSONResponse:
        return problem_response(error.status, error.slug, error.detail, request.url.path, **error.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in error.errors()
        ]
        return problem_response(422, "validation-error", _validation_detail(errors), request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        slug = HTTPStatus(error.status_code).phrase.lower().replace(" ", "-")
        return problem_response(error.status_code, slug, str(error.detail), request.url.path)
