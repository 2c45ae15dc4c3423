"""Running it like a service: JSON log lines, an access log, and Prometheus metrics.

Logs are JSON lines on stderr, one object per line (``ts``, ``level``, ``logger``, ``msg``, then the record's own
fields: ``incident`` on errors, ``method``/``path``/``status``/``ms`` on access lines), for a log shipper to index
without a parsing rule. uvicorn's own loggers and Python's warnings go through the same handler; uvicorn's plain
access log is replaced by ``evostim.access`` (one line per request, the route's template, status, duration and the
incident id of a 5xx; an event stream's line is written as it starts, ``ms`` its time to the first byte, marked
``stream``, and a "stream closed" line with its length ``stream_s`` when it ends).

Metrics (``GET /metrics``, Prometheus text format) live in prometheus-client's process-wide registry. With several
worker processes (``evostim serve --workers N``) the parent sets ``PROMETHEUS_MULTIPROC_DIR`` and each scrape sums
the workers' files (counters and histograms add up; the per-process cache gauges are summed over live workers).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CONTENT_TYPE_LATEST",
    "DECODE_SECONDS",
    "EVENT_STREAMS",
    "GENERATIONS_SERVED",
    "IMAGE_CACHE_BYTES",
    "OPTIMIZER_CACHE_BYTES",
    "OPTIMIZER_CACHE_SESSIONS",
    "OTHER_METHOD",
    "POST_SECONDS",
    "RUNNING_SESSIONS",
    "STANDARD_METHODS",
    "UNMATCHED_ROUTE",
    "AccessLog",
    "JsonFormatter",
    "RateLimit",
    "WarningLine",
    "configure_logging",
    "limit_malloc_arenas",
    "map_large_allocations",
    "method_label",
    "metrics_text",
    "release_free_memory",
    "trimming_free_memory",
]

# -- metrics -----------------------------------------------------------------------------------------------------
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0)
GENERATIONS_SERVED: Final = Counter(
    "evostim_generations_served", "Generations closed by a post of responses (replays not counted)"
)
POST_SECONDS: Final = Histogram(
    "evostim_post_seconds",
    "POST .../responses: the request's time in the server, answer included (replays too)",
    buckets=_LATENCY_BUCKETS,
)
DECODE_SECONDS: Final = Histogram(
    "evostim_decode_seconds", "One batched decode of latent codes into pixels", buckets=_LATENCY_BUCKETS
)
REQUESTS: Final = Counter(
    "evostim_http_requests", "HTTP requests answered, by route template and status", ["method", "route", "status"]
)
RUNNING_SESSIONS: Final = Gauge(
    "evostim_active_sessions",
    "Sessions whose status is running (counted in the database when scraped)",
    multiprocess_mode="mostrecent",
)
IMAGE_CACHE_BYTES: Final = Gauge(
    "evostim_image_cache_bytes", "Bytes held by the image cache (pixels and encoded files)", multiprocess_mode="livesum"
)
OPTIMIZER_CACHE_SESSIONS: Final = Gauge(
    "evostim_optimizer_cache_sessions", "Optimizers kept in memory between posts", multiprocess_mode="livesum"
)
OPTIMIZER_CACHE_BYTES: Final = Gauge(
    "evostim_optimizer_cache_bytes", "Array bytes of the optimizers kept in memory", multiprocess_mode="livesum"
)
EVENT_STREAMS: Final = Gauge(
    "evostim_event_streams", "Open GET .../events streams (server-sent events)", multiprocess_mode="livesum"
)


# The label values a client cannot multiply: HTTP/1.1 lets a request name any token as its method, and every new
# label value is a new series kept for the life of the process (5,000 made-up methods made 10,000 samples, 2.9 MB).
STANDARD_METHODS: Final = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"})
OTHER_METHOD: Final = "other"
UNMATCHED_ROUTE: Final = "unmatched"  # a path no route took: its raw text is in the access log line, not the metric


def method_label(method: str) -> str:
    """The request counter's ``method`` label: a standard method as sent, anything else ``other``."""
    return method if method in STANDARD_METHODS else OTHER_METHOD


def metrics_text() -> bytes:
    """The Prometheus exposition: this process's registry, or every worker's when running several."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


_M_ARENA_MAX: Final = -8  # glibc malloc.h
_M_MMAP_THRESHOLD: Final = -3

# -- logs --------------------------------------------------------------------------------------------------------
_STANDARD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update((k, v) for k, v in record.__dict__.items() if k not in _STANDARD_FIELDS and not k.startswith("_"))
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class RateLimit(logging.Filter):
    """Lets a message through at most once every ``every_s`` seconds; the next one let through says how many were
    dropped (``suppressed``). A message is known by its logger and the first line of its text (asyncio puts the
    socket on the lines after); ``prefixes``, when given, limits only the messages that start with one of them.

    Some lines can be written as fast as clients can provoke them: an event loop out of file descriptors reports
    ``socket.accept() out of system resource`` (with a traceback) each time it retries, which wrote 58 MB in 20 s.
    """

    _MAX_KEYS: Final = 1024  # distinct messages remembered (the oldest is forgotten): a bounded filter

    def __init__(
        self,
        every_s: float = 10.0,
        *,
        prefixes: tuple[str, ...] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._every_s = every_s
        self._prefixes = prefixes
        self._clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage().partition("\n")[0][:200]
        if self._prefixes is not None and not text.startswith(self._prefixes):
            return True
        key, now = (record.name, text), self._clock()
        last, dropped = self._seen.pop(key, (float("-inf"), 0))
        if now - last < self._every_s:
            self._seen[key] = (last, dropped + 1)
            return False
        self._seen[key] = (now, 0)
        if len(self._seen) > self._MAX_KEYS:
            del self._seen[next(iter(self._seen))]
        if dropped:
            record.suppressed = dropped
        return True


class WarningLine(logging.Filter):
    """A captured warning (``logging.captureWarnings``: "file:line: Category: text" and the source line) as the line
    "Category: text" with its ``category`` and ``source`` (file:line) as fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        first = record.getMessage().strip().partition("\n")[0]
        source, found, rest = first.partition(": ")
        category, _, text = rest.partition(": ")
        if found and category.isidentifier() and source.rpartition(":")[2].isdigit():
            record.msg, record.args = f"{category}: {text}", ()
            record.category, record.source = category, source
        return True


# The loggers whose lines a client can provoke at will, and which of their lines are limited (None: all of them).
_FLOODABLE: Final[dict[str, tuple[str, ...] | None]] = {
    "asyncio": None,  # the event loop's own errors: accept() out of descriptors, and the like
    "evostim.connections": None,  # slow or over-cap connections closed
    "uvicorn.error": ("Invalid HTTP request received", "Exceeded concurrency limit", "Unsupported upgrade request"),
}


def configure_logging(level: str) -> None:
    """JSON lines on stderr for evostim's and uvicorn's loggers, at ``level`` (debug, info, warning, error); the
    lines a client can provoke at will are written at a bounded rate (``RateLimit``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for name, prefixes in _FLOODABLE.items():
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, RateLimit)]:
            logger.removeFilter(old)
        logger.addFilter(RateLimit(prefixes=prefixes))
    # our access log replaces uvicorn's (which knows neither the route nor the incident)
    logging.getLogger("uvicorn.access").disabled = True
    # Python's warnings (a library's FutureWarning) as JSON lines too, not raw text between them
    logging.captureWarnings(True)
    warnings_log = logging.getLogger("py.warnings")
    for earlier in [f for f in warnings_log.filters if isinstance(f, WarningLine)]:
        warnings_log.removeFilter(earlier)
    warnings_log.addFilter(WarningLine())
    # alembic's INFO lines (a "setup plugin" per plugin, the migration context) would fill every start; the
    # migrations' own line says what changed. Its warnings stay; at debug level everything does.
    logging.getLogger("alembic").setLevel(logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING)


def limit_malloc_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas for the threads this process starts from now on (``mallopt(M_ARENA_MAX)``).

    Returns whether the cap is in force (False on a C library other than glibc, or ``arenas`` 0: the default).
    """
    if arenas <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # musl and others have no mallopt: nothing to cap
        return False


def map_large_allocations(kib: int) -> bool:
    """Serve every allocation of at least ``kib`` KiB by its own mapping, returned to the system when freed
    (``mallopt(M_MMAP_THRESHOLD)``): glibc otherwise raises that threshold to 32 MB as large blocks are freed, and the
    tensors and buffers of decodes and metrics (a few MB each) then fragment the heap, whose pages it keeps.

    Returns whether it is in force (False on a C library other than glibc, or ``kib`` 0: glibc's moving threshold).
    """
    if kib <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, kib * 1024))
    except (OSError, AttributeError):
        return False


def release_free_memory() -> bool:
    """Give the pages of freed memory in every malloc arena back to the system (glibc's ``malloc_trim(0)``; a few ms).

    A long-running threaded server's heaps fragment: blocks freed between live ones stay resident, and the resident
    size then swings by hundreds of MB with the order of allocations (benchmarks/load.py on Postgres: +225 MB from one
    round to the next). Returns whether anything was given back (False on a C library other than glibc).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


@contextlib.contextmanager
def trimming_free_memory(every_s: float) -> Iterator[None]:
    """While inside, a daemon thread calls :func:`release_free_memory` every ``every_s`` seconds (0: none)."""
    if every_s <= 0:
        yield
        return
    stop = threading.Event()

    def trim() -> None:
        while not stop.wait(every_s):
            release_free_memory()

    thread = threading.Thread(target=trim, name="malloc-trim", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def _is_event_stream(start: Message) -> bool:
    headers = dict(start.get("headers") or [])
    return bytes(headers.get(b"content-type", b"")).startswith(b"text/event-stream")


class AccessLog:
    """ASGI middleware: one ``evostim.access`` line per HTTP request, and the request counter.

    The path logged is the route's template (``/v1/sessions/{session_id}``, or ``unmatched``) in the metric, and
    its method one of the standard ones or ``other``, to keep its label set small whatever clients send; the real
    method and path are in the log line. A 5xx line carries the incident id its problem answer named.
    """

    def __init__(self, app: ASGIApp, *, clock: Callable[[], float] = time.perf_counter) -> None:
        self._app = app
        self._clock = clock
        self._log = logging.getLogger("evostim.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = self._clock()
        status = 500  # an exception that escapes before the answer starts is answered 500 outside
        streaming = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                streaming = _is_event_stream(message)
                if streaming:  # logged as it starts: ms is the time to its first byte, not the stream's length
                    self._record(scope, status, (self._clock() - started) * 1e3, stream=True)
            await send(message)

        try:
            await self._app(scope, receive, send_wrapper)
        finally:
            elapsed = self._clock() - started
            if streaming:
                self._closed(scope, elapsed)
            else:
                self._record(scope, status, elapsed * 1e3)

    def _closed(self, scope: Scope, seconds: float) -> None:
        fields = {"method": scope["method"], "path": scope["path"], "stream_s": round(seconds, 1)}
        self._log.info("%s %s stream closed", scope["method"], scope["path"], extra=fields)

    def _record(self, scope: Scope, status: int, ms: float, *, stream: bool = False) -> None:
        route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
        REQUESTS.labels(method_label(scope["method"]), route, str(status)).inc()
        if scope["method"] == "POST" and route.endswith("/responses"):
            POST_SECONDS.observe(ms / 1e3)
        fields: dict[str, Any] = {"method": scope["method"], "path": scope["path"], "status": status}
        fields["ms"] = round(ms, 2)
        if stream:
            fields["stream"] = True  # server-sent events: its "stream closed" line follows with its length
        incident = scope.get("state", {}).get("incident")
        if incident is not None:
            fields["incident"] = incident
        client = scope.get("client")
        if client:
            fields["client"] = client[0]
        level = logging.ERROR if status >= 500 else logging.INFO
        self._log.log(level, "%s %s %d", scope["method"], scope["path"], status, extra=fields)
