"""``evostim serve`` starting: a taken port is one line before anything loads; "serving on" is said once the server
answers (with two workers, uvicorn's "running" came long before any worker could answer)."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from evostim import cli
from evostim.cli._listen import answering
from evostim.clients.http.local_server import free_port


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.startswith("EVOSTIM_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


@pytest.mark.usefixtures("clean_environment")
def test_a_taken_port_is_refused_in_one_line_before_anything_loads(
    taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def loaded(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the server was started on a taken port")

    monkeypatch.setattr("uvicorn.run", loaded)
    monkeypatch.setattr("evostim.server.app.create_app", loaded)
    started = time.monotonic()
    with pytest.raises(SystemExit) as refused:
        cli.main(["serve", "--port", str(taken_port)])
    line = str(refused.value.code)
    assert line.startswith(f"evostim serve: port {taken_port} on 127.0.0.1 is taken") and "\n" not in line
    assert "--port" in line and time.monotonic() - started < 5


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_serving_on_is_said_once_the_server_answers_and_uvicorns_running_line_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    caplog.set_level(logging.INFO)
    with answering("127.0.0.1", port, 2):
        logging.getLogger("uvicorn.error").info("Uvicorn running on http://127.0.0.1:%d (Press CTRL+C to quit)", port)
        time.sleep(1.0)  # the workers load: nothing answers yet
        assert not [r for r in caplog.records if "serving on" in r.getMessage()]
        server = ThreadingHTTPServer(("127.0.0.1", port), _Health)
        answered = time.monotonic()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            deadline = time.monotonic() + 10
            while not [r for r in caplog.records if "serving on" in r.getMessage()] and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            server.shutdown()
            server.server_close()
    (serving,) = [r for r in caplog.records if "serving on" in r.getMessage()]
    assert serving.created >= answered - 0.01 and serving.getMessage().startswith(
        f"evostim serving on http://127.0.0.1:{port}"
    )
    assert not [r for r in caplog.records if "Uvicorn running" in r.getMessage()]


def test_two_workers_say_serving_on_only_after_a_worker_answers(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVOSTIM_")}
    command = [sys.executable, "-m", "evostim", "serve", "--port", str(port), "--workers", "2"]
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen([*command, "--data-dir", str(tmp_path / "data")], stdout=out, stderr=out, env=env)
    try:
        deadline = time.monotonic() + 120
        while "evostim serving on" not in log.read_text() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=60)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    messages = [line["msg"] for line in lines]
    starting = next(i for i, m in enumerate(messages) if "starting on" in m)
    serving = next(i for i, m in enumerate(messages) if m.startswith("evostim serving on"))
    first_ready = next(i for i, m in enumerate(messages) if m == "Application startup complete.")
    assert starting < first_ready < serving and lines[serving]["workers"] == 2
    assert not any(m.startswith("Uvicorn running on") for m in messages)
