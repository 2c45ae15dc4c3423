"""Every endpoint fuzzed from the app's own OpenAPI document (schemathesis): no answer is a 5xx, every error is
``application/problem+json``, and every answer is what the document says (status, content type, body schema).

Schemathesis's engine runs all its phases, as its command line does: the schema's examples, boundary values
("coverage": huge integers, empty and NUL-bearing strings, wrong types), random requests valid and invalid
("fuzzing"), and stateful chains that follow the document's links (create a session, read it, post its
generation, fork it). The app is in-process over a real database file; ``fuzz_app`` takes the database from the
``database_url`` fixture, so the same run covers Postgres when that fixture is parametrized by backend.

The default run is quick (a few examples per operation, under a minute); ``pytest -m reliability``
(``make test-reliability``) runs the long one.

One check is left out: ``positive_data_acceptance`` expects every schema-valid request to succeed, but this API
refuses, with a 422 that says why, what a schema cannot express (cross-field rules, the operator's limits, a
generator whose weights are not installed, an optimizer parameter its class refuses).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis import engine
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from evostim.server.api.problems import PROBLEM_JSON
from evostim.server.app import create_app
from evostim.server.config import Settings

# Schemathesis's default statuses of a refused invalid request (a 5xx is caught by its own check).
_REJECTED = [400, 401, 403, 404, 405, 406, 409, 415, 422, 428, 429]
# The events stream never ends by design (tests/test_events.py covers it): a fuzzer's request would wait forever.
_NOT_FUZZED = r"/events$"


@dataclass
class Answers:
    """What the app answered during a run: statuses, and every error answer that was not problem+json."""

    statuses: Counter[int] = field(default_factory=Counter)
    not_problems: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


class Recording:
    """ASGI wrapper that records every answer's status and checks that every error is a problem."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answers = Answers()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def recorded(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                self.answers.statuses[status] += 1
                headers = dict(message.get("headers", []))
                if status >= 400 and headers.get(b"content-type", b"").decode() != PROBLEM_JSON:
                    self.answers.not_problems.append(f"{scope['method']} {scope['path']} -> {status} {headers}")
            await send(message)

        await self.app(scope, receive, recorded)


@pytest.fixture
def fuzz_app(tmp_path: Path, database_url: str) -> Iterator[Recording]:
    """The app over its own empty database, started (its store open), wrapped to record every answer.

    Small operator limits keep each created session cheap to render, and exercise the limits' refusals."""
    settings = Settings(data_dir=tmp_path, database_url=database_url, max_population=8, max_body_bytes=2**20)
    app = create_app(settings)
    with TestClient(app):  # runs the lifespan: the store and service stay up for the whole run
        yield Recording(app)


@dataclass
class Report:
    answers: Answers
    failures: Counter[str]
    examples: dict[str, str]
    errors: list[str]

    def describe(self) -> str:
        lines = [f"{self.answers.total} requests, statuses {dict(sorted(self.answers.statuses.items()))}"]
        lines += [f"{n} x {key}\n    {self.examples[key]}" for key, n in self.failures.items()]
        lines += [f"error: {error}" for error in self.errors]
        lines += [f"not a problem: {answer}" for answer in self.answers.not_problems[:10]]
        return "\n".join(lines)


def _config(max_examples: int, steps: int, seed: int) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": seed,
            "generation": {"max-examples": max_examples, "database": "none"},
            "checks": {
                "positive_data_acceptance": {"enabled": False},
                # a body above the limit is refused unread with 413, whatever it holds
                "negative_data_rejection": {"expected-statuses": [*_REJECTED, 413]},
            },
            "phases": {"stateful": {"max-steps": steps}},
            "continue-on-failure": True,
            "suppress-health-check": ["all"],
        }
    )


def _failures(event: events.ScenarioFinished, report: Report) -> None:
    for checks in event.recorder.checks.values():
        for check in checks:
            if check.failure_info is None:
                continue
            key = f"{event.phase.name} {event.label or 'stateful'}: {check.name}"
            report.failures[key] += 1
            failure = check.failure_info.failure
            report.examples.setdefault(key, f"{failure.title}: {failure.message}\n    {check.failure_info.code_sample}")
    if event.status is Status.ERROR:
        report.errors.append(f"{event.phase.name} {event.label}: error")


def fuzz(app: Recording, *, max_examples: int, steps: int, seed: int = 20260501) -> Report:
    """Run schemathesis's engine over every documented operation of ``app``; what it found, and what was answered."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=_config(max_examples, steps, seed))
    report = Report(app.answers, Counter(), {}, [])
    for event in engine.from_schema(schema.exclude(path_regex=_NOT_FUZZED)).execute():
        if isinstance(event, events.ScenarioFinished):
            _failures(event, report)
        elif isinstance(event, events.NonFatalError):
            report.errors.append(str(event.info))
        elif isinstance(event, events.FatalError):
            report.errors.append(repr(event.exception))
    logging.getLogger("evostim.tests").info("fuzz: %s", report.describe())
    return report


def _assert_clean(report: Report) -> None:
    assert report.answers.total > 100, report.describe()  # it did run
    assert report.answers.server_errors == 0, report.describe()
    assert not report.answers.not_problems, report.describe()
    assert not report.failures and not report.errors, report.describe()


def test_every_endpoint_answers_fuzzed_requests_as_documented_and_never_with_a_5xx(fuzz_app: Recording) -> None:
    _assert_clean(fuzz(fuzz_app, max_examples=4, steps=6))


@pytest.mark.reliability
def test_a_long_fuzzing_run_finds_no_5xx_and_no_answer_off_the_document(
    fuzz_app: Recording, database_backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    report = fuzz(fuzz_app, max_examples=200, steps=20)
    with capsys.disabled():
        print(f"\nfuzz on {database_backend}: {report.answers.total} requests, {report.answers.server_errors} 5xx")
    _assert_clean(report)


def test_the_document_declares_problem_answers_and_links(fuzz_app: Recording) -> None:
    document: dict[str, Any] = create_app(Settings()).openapi()
    responses = document["paths"]["/v1/sessions/{session_id}/generations/{number}/responses"]["post"]["responses"]
    for status in ("400", "404", "409", "413", "415", "422"):
        assert list(responses[status]["content"]) == [PROBLEM_JSON], status
    redirect = document["paths"]["/v1/sessions/{session_id}/generations/current"]["get"]["responses"]["307"]
    assert "content" not in redirect and "Location" in redirect["headers"]
    assert "respond" in document["paths"]["/v1/sessions"]["post"]["responses"]["201"]["links"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
