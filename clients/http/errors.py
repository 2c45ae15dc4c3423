"""The client's errors: one class per problem type the server answers (RFC 9457), each saying whether a retry helps.

EvostimError                    status   problem type (/problems/<slug>)     retry helps?
├── Unauthorized                 401      unauthorized                        no: send a valid bearer token
├── Forbidden                    403      forbidden                           no: a read-only token cannot post
├── NotFound                     404      not-found                           no
│   ├── SessionNotFound                   session-not-found
│   ├── GenerationNotFound                generation-not-found
│   └── StimulusNotFound                  stimulus-not-found
├── Conflict                     409      conflict                            no: re-read the session's state first
│   ├── GenerationClosed                  generation-closed
│   ├── IdempotencyKeyReused              idempotency-key-reused
│   └── SessionNotRunning                 session-not-running
├── InvalidRequest               422      invalid-request                     no: fix the request
│   ├── InvalidSessionConfig              invalid-session-config
│   ├── InvalidResponses                  invalid-responses
│   ├── ValidationError                   validation-error (also raised by the client before sending a bad body)
│   ├── ExtraMissing                      extra-missing (install the optional part it names)
│   ├── GeneratorUnavailable              generator-unavailable (its weights file or package is not in place)
│   ├── UnstorableValue                   unstorable-value (NUL in text, an integer beyond 32 bits, NaN)
│   ├── MethodNotAllowed         405      method-not-allowed
│   ├── ContentTooLarge          413      content-too-large (a body above the server's limit: send less)
│   └── UnsupportedMediaType     415      unsupported-media-type (send the body as application/json)
├── TooManyRequests              429      too-many-streams (this token's event streams) yes: after Retry-After
└── ServerError                  5xx      (any other 5xx)                     502/503/504: yes; 500: no
    ├── StateCorrupt             500      state-corrupt                       no: a bug; report it
    ├── InternalError            500      internal-error                      as the answer says
    ├── NotReady                 503      not-ready (GET /readyz)             yes: the server is starting or degraded
    ├── EventStreamsFull         503      event-streams-full                  yes: after Retry-After
    ├── TooManyConnections       503      too-many-connections                yes: after Retry-After
    └── DatabaseUnavailable      503      database-unavailable                yes: after Retry-After (busy or down)

``retryable`` is the problem body's ``"retryable"`` member when it has one, else it follows the status: a gateway
error (502, 503, 504) is transient, anything else is not. A slug this client does not know maps by its
status (401, 404, 405, 409, 413, 415, 429, 400/422, 5xx), so a newer server's finer problem types still land on the
right branch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pydantic

__all__ = [
    "Conflict",
    "ContentTooLarge",
    "DatabaseUnavailable",
    "EventStreamsFull",
    "EvostimError",
    "ExtraMissing",
    "Forbidden",
    "GenerationClosed",
    "GenerationNotFound",
    "GeneratorUnavailable",
    "IdempotencyKeyReused",
    "InternalError",
    "InvalidRequest",
    "InvalidResponses",
    "InvalidSessionConfig",
    "MethodNotAllowed",
    "NotFound",
    "NotReady",
    "ServerError",
    "SessionNotFound",
    "SessionNotRunning",
    "StateCorrupt",
    "StimulusNotFound",
    "TooManyConnections",
    "TooManyRequests",
    "Unauthorized",
    "UnstorableValue",
    "UnsupportedMediaType",
    "ValidationError",
    "error_from_problem",
    "is_transient_status",
]

_TRANSIENT_STATUSES = frozenset({502, 503, 504})


def is_transient_status(status: int) -> bool:
    """Whether an answer with this status (and no ``retryable`` member) is worth retrying: gateway errors only."""
    return status in _TRANSIENT_STATUSES


class EvostimError(Exception):
    """The server answered with a problem (RFC 9457); ``problem`` holds its body, ``status`` its HTTP status."""

    slug = ""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', problem)}")
        self.status = status
        self.problem = problem

    @property
    def retryable(self) -> bool:
        """Whether sending the same request again may succeed (the body's ``retryable``, else the status's)."""
        stated = self.problem.get("retryable")
        return stated if isinstance(stated, bool) else is_transient_status(self.status)

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail", ""))


class Unauthorized(EvostimError):
    slug = "unauthorized"


class Forbidden(EvostimError):
    slug = "forbidden"


class NotFound(EvostimError):
    slug = "not-found"


class SessionNotFound(NotFound):
    slug = "session-not-found"


class GenerationNotFound(NotFound):
    slug = "generation-not-found"


class StimulusNotFound(NotFound):
    slug = "stimulus-not-found"


class Conflict(EvostimError):
    slug = "conflict"


class GenerationClosed(Conflict):
    slug = "generation-closed"


class IdempotencyKeyReused(Conflict):
    slug = "idempotency-key-reused"


class SessionNotRunning(Conflict):
    slug = "session-not-running"


class InvalidRequest(EvostimError):
    slug = "invalid-request"


class InvalidSessionConfig(InvalidRequest):
    slug = "invalid-session-config"


class InvalidResponses(InvalidRequest):
    slug = "invalid-responses"


class ValidationError(InvalidRequest):
    slug = "validation-error"

    @classmethod
    def before_sending(cls, error: pydantic.ValidationError) -> ValidationError:
        """The problem the server would answer for a body that failed the wire types, raised without sending it."""
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()]
        parts = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in errors[:5]]
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        detail = f"not sent: the {error.title} body is invalid: " + "; ".join(parts) + more
        problem = {
            "type": f"/problems/{cls.slug}",
            "title": "Unprocessable Content",
            "status": 422,
            "detail": detail,
            "errors": errors,
            "retryable": False,
        }
        return cls(422, problem)


class ExtraMissing(InvalidRequest):
    slug = "extra-missing"


class GeneratorUnavailable(InvalidRequest):
    slug = "generator-unavailable"


class UnstorableValue(InvalidRequest):
    slug = "unstorable-value"


class MethodNotAllowed(InvalidRequest):
    slug = "method-not-allowed"


class ContentTooLarge(InvalidRequest):
    slug = "content-too-large"


class UnsupportedMediaType(InvalidRequest):
    slug = "unsupported-media-type"


class TooManyRequests(EvostimError):
    """A limit of this token's (429): its event streams; the answer's Retry-After says when to try again."""

    slug = "too-many-streams"


class ServerError(EvostimError):
    """Any 5xx answer; its own slug is whatever the server or a proxy in front of it said."""


class StateCorrupt(ServerError):
    slug = "state-corrupt"


class InternalError(ServerError):
    slug = "internal-error"


class NotReady(ServerError):
    slug = "not-ready"


class EventStreamsFull(ServerError):
    slug = "event-streams-full"


class TooManyConnections(ServerError):
    slug = "too-many-connections"


class DatabaseUnavailable(ServerError):
    slug = "database-unavailable"


def _subclasses(cls: type[EvostimError]) -> list[type[EvostimError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found


_BY_SLUG: dict[str, type[EvostimError]] = {cls.slug: cls for cls in _subclasses(EvostimError) if cls.slug}
_BY_STATUS: dict[int, type[EvostimError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    413: ContentTooLarge,
    415: UnsupportedMediaType,
    409: Conflict,
    429: TooManyRequests,
    422: InvalidRequest,
}


def _slug(problem: dict[str, Any]) -> str:
    kind = problem.get("type")
    return kind.rsplit("/", 1)[-1] if isinstance(kind, str) else ""


def error_from_problem(status: int, problem: dict[str, Any]) -> EvostimError:
    """The error for a problem answer: by its slug (the last part of ``type``), else by its status."""
    cls = _BY_SLUG.get(_slug(problem)) or _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else EvostimError
    return cls(status, problem)
