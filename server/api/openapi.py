"""The OpenAPI document, made true to what the app answers (schemathesis checks every answer against it).

FastAPI documents a validation error as ``application/json`` with its own schema; this app answers every error as
``application/problem+json`` (``server/api/problems.py``). ``install_openapi`` rewrites the generated document once:
every 4xx/5xx answer is a ``ProblemDetails``; every operation may answer 413 (a body above the limit, refused
before it is read) and 422 (a malformed request); one with a body may answer 400 (a body that is not UTF-8 text)
and 415 (a body not sent as application/json); and the links a client follows (create -> session, generation,
responses; post -> next generation) are declared, so stateful testing chains real ids.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from evostim.protocol import ProblemDetails
from evostim.server.api.problems import PROBLEM_JSON

__all__ = ["install_openapi"]

_PROBLEM_REF = {"$ref": "#/components/schemas/ProblemDetails"}
_EVERY_OPERATION = {413: "the request body is larger than the server takes", 422: "a malformed or invalid request"}
_WITH_BODY = {400: "the request body is not UTF-8 text", 415: "the request body is not sent as application/json"}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

# Where a created session's ids are found, for the operations that take them (OpenAPI runtime expressions).
_SESSION_LINKS = {
    "session": ("GET", "/v1/sessions/{session_id}", {"session_id": "$response.body#/session/id"}),
    "history": ("GET", "/v1/sessions/{session_id}/history", {"session_id": "$response.body#/session/id"}),
    "generation": (
        "GET",
        "/v1/sessions/{session_id}/generations/{number}",
        {"session_id": "$response.body#/session/id", "number": "$response.body#/generation/number"},
    ),
    "respond": (
        "POST",
        "/v1/sessions/{session_id}/generations/{number}/responses",
        {"session_id": "$response.body#/session/id", "number": "$response.body#/generation/number"},
    ),
    "update": ("PATCH", "/v1/sessions/{session_id}", {"session_id": "$response.body#/session/id"}),
    "stop": ("POST", "/v1/sessions/{session_id}/stop", {"session_id": "$response.body#/session/id"}),
    "resume": ("POST", "/v1/sessions/{session_id}/resume", {"session_id": "$response.body#/session/id"}),
    "fork": ("POST", "/v1/sessions/{session_id}/fork", {"session_id": "$response.body#/session/id"}),
}
_NEXT_LINKS = {
    "next_generation": (
        "POST",
        "/v1/sessions/{session_id}/generations/{number}/responses",
        {"session_id": "$response.body#/session/id", "number": "$response.body#/next/number"},
    ),
}
_LINKS = {
    ("post", "/v1/sessions", "201"): _SESSION_LINKS,
    ("post", "/v1/sessions/{session_id}/fork", "201"): _SESSION_LINKS,
    ("post", "/v1/sessions/{session_id}/generations/{number}/responses", "200"): _NEXT_LINKS,
}


def install_openapi(app: FastAPI) -> None:
    """Have ``app.openapi()`` return the generated document with the problem answers and links made true."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            _document_problems(document)
            _document_links(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if method in _METHODS
    ]


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}}}


def _document_problems(document: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["ProblemDetails"] = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    for _, _, operation in _operations(document):
        responses = operation.setdefault("responses", {})
        extra = {**_EVERY_OPERATION, **(_WITH_BODY if "requestBody" in operation else {})}
        for status, description in extra.items():
            responses.setdefault(str(status), _problem(description))
        for status, response in responses.items():
            if status[0] == "3":  # a redirect has no body
                response.pop("content", None)
            if status[0] in "45":  # every error is a problem, whatever the route declared
                response["content"] = {PROBLEM_JSON: {"schema": _PROBLEM_REF}}
                if response.get("description") in ("Validation Error", "problem details (RFC 9457)", None):
                    response["description"] = extra.get(int(status), "problem details (RFC 9457)")
    # FastAPI's own validation-error schemas are referenced by nothing now
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def _document_links(document: dict[str, Any]) -> None:
    paths = document.get("paths", {})
    for (method, path, status), links in _LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        response["links"] = {
            name: {"operationId": paths[target][verb.lower()]["operationId"], "parameters": parameters}
            for name, (verb, target, parameters) in links.items()
            if verb.lower() in paths.get(target, {})
        }
