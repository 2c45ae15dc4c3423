"""The session service's domain errors, named by meaning; they know nothing of HTTP.

DomainError                   what went wrong (``detail`` says what to do; ``extra`` holds machine-readable fields)
├── Unauthorized              no bearer token, or an unknown one
├── Forbidden                 a known token that may not do this (a read-only token that posts)
├── NotFound                  no such resource for this token
│   ├── SessionNotFound
│   ├── GenerationNotFound
│   └── StimulusNotFound
├── Conflict                  the request does not fit the session's current state
│   ├── GenerationClosed      the generation's responses are already stored (``open_generation``: the open one)
│   ├── IdempotencyKeyReused  the Idempotency-Key was used for a different request body
│   └── SessionNotRunning     the session is stopped or finished
├── InvalidRequest            the request itself is wrong (fix it; sending it again will not help)
│   ├── InvalidSessionConfig
│   ├── InvalidResponses
│   ├── OptimizerFailed       the optimizer could not take the scores (it overflowed, or its library refused them)
│   └── UnsupportedMediaType  a body not sent as JSON (``content_type``: the Content-Type it came with)
├── StateCorrupt              the stored optimizer state does not replay (a bug; report it)
└── NotReady                  the server cannot serve yet (database unreachable, a generator that does not load)

How each error is answered over HTTP (status, problem type, whether a retry helps) is decided in one place:
the table in ``evostim.server.api.problems``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Conflict",
    "DomainError",
    "Forbidden",
    "GenerationClosed",
    "GenerationNotFound",
    "IdempotencyKeyReused",
    "InvalidRequest",
    "InvalidResponses",
    "InvalidSessionConfig",
    "NotFound",
    "NotReady",
    "OptimizerFailed",
    "SessionNotFound",
    "SessionNotRunning",
    "StateCorrupt",
    "StimulusNotFound",
    "Unauthorized",
    "UnsupportedMediaType",
]


class DomainError(Exception):
    """Base of the service's errors: a ``detail`` a person can act on, plus ``extra`` fields for programs."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class Unauthorized(DomainError):
    """The request has no bearer token, or one the server does not know."""


class Forbidden(DomainError):
    """A known token that may not do this: a read-only token sends anything but GET."""


class NotFound(DomainError):
    """The resource does not exist, or belongs to another token."""


class SessionNotFound(NotFound):
    """No session with that id for this token."""


class GenerationNotFound(NotFound):
    """The session has no generation with that number (yet)."""


class StimulusNotFound(NotFound):
    """No stimulus with that id, or a file name that is not '<stimulus id>.<png|jpg|bmp>'."""


class Conflict(DomainError):
    """The request does not fit the session's current state: re-read the state before sending another."""


class GenerationClosed(Conflict):
    """The generation's responses are already stored; ``open_generation`` names the open one."""


class IdempotencyKeyReused(Conflict):
    """An Idempotency-Key already used for a different request body."""


class SessionNotRunning(Conflict):
    """The session is stopped (resume it) or finished (fork it)."""


class InvalidRequest(DomainError):
    """The request is wrong in itself; the ``detail`` names what to fix."""


class InvalidSessionConfig(InvalidRequest):
    """A session configuration the server cannot run."""


class InvalidResponses(InvalidRequest):
    """Responses that do not fit the generation they are posted for."""


class OptimizerFailed(InvalidRequest):
    """The session's optimizer could not take a generation's scores (its arithmetic overflowed, or an outside
    library refused them): nothing was stored, and the same scores fail again."""


class UnsupportedMediaType(InvalidRequest):
    """A request body sent with a Content-Type other than JSON (or none): it was not read."""


class StateCorrupt(DomainError):
    """The stored optimizer state does not reproduce the stored proposals: a bug, never the client's fault."""


class NotReady(DomainError):
    """The server cannot serve sessions yet: ``checks`` says which of its readiness checks failed and why."""
