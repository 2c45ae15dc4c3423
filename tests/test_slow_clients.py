"""Slow and idle clients cannot hold the server: deadlines on receiving a request, a connection cap, the fd budget,
and log lines a client can provoke written at a bounded rate.

The fast tests run uvicorn in a thread with ``GuardedH11Protocol`` and deadlines of a fraction of a second; the
``reliability`` one starts ``evostim serve`` and holds 1,000 connections that send a byte a second.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from evostim.clients.http.local_server import LocalServer, free_port
from evostim.server.config import Settings
from evostim.server.ops.connections import (
    FD_RESERVE,
    ConnectionLimits,
    GuardedH11Protocol,
    raise_open_files_limit,
)
from evostim.server.ops.observability import RateLimit

HEADER_S = 0.4
BODY_S = 0.6
CAP = 8


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body, then answers its length; /slow answers in ten pieces over a second."""
    if scope["type"] != "http":
        return
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    pieces = 10 if scope["path"] == "/slow" else 1
    for piece in range(pieces):
        if pieces > 1:
            await asyncio.sleep(0.1)
        await send({"type": "http.response.body", "body": f"{size}\n".encode(), "more_body": piece < pieces - 1})


@pytest.fixture(scope="module")
def guarded() -> Iterator[str]:
    """The address of a uvicorn server in a thread, with short deadlines and a cap of CAP connections."""
    before = GuardedH11Protocol.limits
    GuardedH11Protocol.limits = ConnectionLimits(header_timeout_s=HEADER_S, body_timeout_s=BODY_S, max_connections=CAP)
    port = free_port()
    config = uvicorn.Config(_app, port=port, http=GuardedH11Protocol, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        GuardedH11Protocol.limits = before


def _connect(address: str) -> socket.socket:
    host, port = address.split(":")
    sock = socket.create_connection((host, int(port)), timeout=5.0)
    sock.settimeout(5.0)
    return sock


def _closed_after(sock: socket.socket, trickle: bytes = b"", *, every_s: float = 0.1) -> float:
    """Seconds until the server closes ``sock`` while ``trickle`` is sent a byte every ``every_s``."""
    started = time.monotonic()
    sock.setblocking(False)
    sent = 0
    while time.monotonic() - started < 5.0:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - started
        except BlockingIOError:
            pass
        except ConnectionResetError:
            return time.monotonic() - started
        if sent < len(trickle):
            try:
                sock.send(trickle[sent : sent + 1])
                sent += 1
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started
        time.sleep(every_s)
    return float("inf")


_PARTIAL = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Padding: " + b"a" * 200


def test_an_idle_connection_and_headers_sent_a_byte_at_a_time_are_closed_at_the_header_deadline(
    guarded: str,
) -> None:
    with _connect(guarded) as idle:
        assert HEADER_S * 0.8 <= _closed_after(idle) <= HEADER_S + 0.5
    with _connect(guarded) as slow:
        assert HEADER_S * 0.8 <= _closed_after(slow, _PARTIAL) <= HEADER_S + 0.5  # bytes kept arriving, all the same


def test_a_body_sent_a_byte_at_a_time_is_closed_at_the_body_deadline(guarded: str) -> None:
    with _connect(guarded) as slow:
        slow.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        assert BODY_S * 0.8 <= _closed_after(slow, b"x" * 1000) <= BODY_S + 0.5


def test_prompt_requests_long_answers_and_kept_alive_connections_are_not_cut(guarded: str) -> None:
    with httpx.Client(base_url=f"http://{guarded}", timeout=5.0) as client:
        assert client.post("/", content=b"y" * 100_000).text == "100000\n"
        time.sleep(HEADER_S * 2)  # idle between requests: the keep-alive timeout's business, not the header deadline
        assert client.get("/").text == "0\n"
        started = time.monotonic()
        assert client.get("/slow").text == "0\n" * 10  # an answer of a second, longer than both deadlines
        assert time.monotonic() - started >= 0.9


def test_beyond_the_cap_a_connection_is_answered_503_and_closed_then_served_once_others_leave(guarded: str) -> None:
    held = [_connect(guarded) for _ in range(CAP)]
    try:
        time.sleep(0.1)
        answer = httpx.get(f"http://{guarded}/", timeout=5.0)
        assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"] == "/problems/too-many-connections" and answer.json()["retryable"] is True
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.1)
    assert httpx.get(f"http://{guarded}/", timeout=5.0).status_code == 200


def test_the_connection_cap_fits_the_open_files_limit() -> None:
    settings = Settings(max_connections=4096, request_header_timeout_s=7, request_body_timeout_s=30)
    roomy = ConnectionLimits.from_settings(settings, open_files=1_000_000)
    assert (roomy.max_connections, roomy.header_timeout_s, roomy.body_timeout_s) == (4096, 7, 30)
    assert ConnectionLimits.from_settings(settings, open_files=1024).max_connections == 1024 - FD_RESERVE


def test_the_soft_open_files_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard < 64:
        pytest.skip(f"the hard limit ({hard}) leaves nothing to test")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard // 2), hard))
        assert raise_open_files_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_message_repeated_a_thousand_times_is_written_once_per_period_saying_how_many_were_dropped() -> None:
    now = [0.0]
    limit = RateLimit(10.0, clock=lambda: now[0])

    def record(message: str, name: str = "asyncio") -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, __file__, 1, message, (), None)

    accept = "socket.accept() out of system resource\nsocket: <socket fd=7 laddr=('0.0.0.0', 8000)>"
    passed = [limit.filter(record(accept)) for _ in range(1000)]
    assert passed.count(True) == 1
    assert limit.filter(record("another message"))  # each message has its own budget
    now[0] = 10.5
    later = record(accept)
    assert limit.filter(later) and later.suppressed == 999  # type: ignore[attr-defined]
    only = RateLimit(10.0, prefixes=("Invalid HTTP",), clock=lambda: now[0])
    assert all(only.filter(record("Started server process", "uvicorn.error")) for _ in range(5))
    assert [only.filter(record("Invalid HTTP request received.", "uvicorn.error")) for _ in range(5)].count(True) == 1


# -- 1,000 slow clients against `evostim serve` ------------------------------------------------------------------
SLOW_CLIENTS = 1000
TIMEOUT_S = 3.0


@dataclass
class SlowClients:
    """Connections that send a request a byte a second, reconnecting when the server closes them (in a thread)."""

    address: tuple[str, int]
    count: int
    lifetimes: list[float] = field(default_factory=list)
    open_now: int = 0
    failures: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    async def _run(self) -> None:
        await asyncio.gather(*(self._one(n) for n in range(self.count)))

    async def _one(self, number: int) -> None:
        await asyncio.sleep(number * 0.002)  # 500 connections a second
        while not self._stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(*self.address)
            except OSError:
                self.failures += 1
                await asyncio.sleep(1.0)
                continue
            self.open_now += 1
            self.lifetimes.append(await self._trickle(reader, writer))
            self.open_now -= 1
            writer.close()

    async def _trickle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> float:
        started = time.monotonic()
        for byte in _PARTIAL * 10:
            if self._stop.is_set():
                return -1.0  # closed by us, not the server
            try:
                writer.write(bytes([byte]))
                await writer.drain()
                if await asyncio.wait_for(reader.read(1024), 1.0) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        return time.monotonic() - started


def _get_latencies(url: str, seconds: float) -> list[float]:
    latencies = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        answer = httpx.get(url, timeout=30.0)  # a new connection each time, as a rig after a pause makes one
        latencies.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text
        time.sleep(0.05)
    return sorted(latencies)


@pytest.mark.reliability
def test_with_a_thousand_slow_clients_an_ordinary_get_stays_fast_and_the_slow_ones_are_closed(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2 * SLOW_CLIENTS + 200:
        pytest.skip(f"the hard open-files limit ({hard}) is too low for {SLOW_CLIENTS} client and server sockets")
    env = {"EVOSTIM_REQUEST_HEADER_TIMEOUT_S": str(TIMEOUT_S)}
    try:  # the server starts under the common 1,024-descriptor soft limit; it raises its own to the hard limit
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 1024), hard))
        server = LocalServer(tmp_path, env=env).start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    slow = SlowClients(("127.0.0.1", server.port), SLOW_CLIENTS)
    try:
        slow.start()
        while slow.open_now < SLOW_CLIENTS * 0.95 and not slow.lifetimes:
            time.sleep(0.1)
        latencies = _get_latencies(f"{server.url}/v1/sessions", 15.0)
        at_most = max(slow.open_now, SLOW_CLIENTS - 1)
    finally:
        slow.stop()
        code = server.stop()
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    closed = [life for life in slow.lifetimes if life >= 0]
    print(
        f"{at_most} slow connections: GET p50 {statistics.median(latencies) * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms "
        f"({len(latencies)} GETs); {len(closed)} slow connections closed by the server after "
        f"{min(closed, default=0):.1f}..{max(closed, default=0):.1f} s"
    )
    assert p99 < 1.0
    assert len(closed) >= SLOW_CLIENTS  # every one of them at least once (they reconnect)
    assert max(closed) <= TIMEOUT_S + 2.0  # the deadline, give or take a byte's wait and a busy loop
    assert code in (0, -15)
