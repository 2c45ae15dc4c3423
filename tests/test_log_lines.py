"""The server's log is JSON lines only: a library's warning is a JSON line too, and an event stream's access line is
written when it starts (time to its first byte), with a closing line giving its length."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from evostim.server.ops.observability import AccessLog

_WARN = """
import warnings
from evostim.server.ops.observability import configure_logging
configure_logging("info")
warnings.warn("`torch.jit.script` is deprecated", FutureWarning)  # as torch.func.jvp's decompositions warn
import logging
logging.getLogger("evostim").info("after")
"""


def test_a_warning_is_a_json_line_among_the_others() -> None:
    done = subprocess.run([sys.executable, "-c", _WARN], capture_output=True, text=True, timeout=120, check=True)
    lines = done.stderr.strip().splitlines()
    parsed = [json.loads(line) for line in lines]  # every line is JSON (a raw warning is two lines of text)
    (warning,) = [line for line in parsed if line["logger"] == "py.warnings"]
    assert warning["level"] == "warning" and warning["msg"] == "FutureWarning: `torch.jit.script` is deprecated"
    assert warning["category"] == "FutureWarning" and warning["source"].endswith(":5")
    assert parsed[-1]["msg"] == "after"


def _stream_app(ticks: list[float]) -> Any:
    """An ASGI app that answers an event stream: its headers at t=0.02, two events, closed at t=30."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        ticks.append(0.02)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream; charset=utf-8")]})  # fmt: skip
        for at in (10.0, 20.0):
            ticks.append(at)
            await send({"type": "http.response.body", "body": b"data: {}\n\n", "more_body": True})
        ticks.append(30.0)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def test_an_event_streams_access_line_is_written_as_it_starts(caplog: pytest.LogCaptureFixture) -> None:
    ticks = [0.0]
    middleware = AccessLog(_stream_app(ticks), clock=lambda: ticks[-1])
    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/v1/sessions/s_1/events", "client": ("a", 1)}
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":  # the access line is out before the first byte goes
            assert [r.msg for r in caplog.records if r.name == "evostim.access"] == ["%s %s %d"]
        sent.append(message)

    caplog.set_level(logging.INFO)
    asyncio.run(middleware(scope, receive, send))
    access, closed = [r for r in caplog.records if r.name == "evostim.access"]
    assert access.status == 200 and access.ms == 20.0 and access.stream is True  # type: ignore[attr-defined]
    assert closed.getMessage() == "GET /v1/sessions/s_1/events stream closed" and closed.stream_s == 30.0  # type: ignore[attr-defined]
    assert not hasattr(closed, "ms") and len(sent) == 4
