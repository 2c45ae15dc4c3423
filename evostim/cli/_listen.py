"""``evostim serve``'s address: refused in one line, before anything loads, when it cannot be listened on (a port
another server holds), and announced as "serving on" only once the server answers there (with several workers,
uvicorn says "running" long before any worker has loaded its generator)."""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

__all__ = ["answering", "check_port"]

_POLL_SECONDS = 0.25


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn picks it


def check_port(host: str, port: int) -> None:
    """Bind ``host:port`` as uvicorn will (SO_REUSEADDR: a port in TIME_WAIT is free) and let it go again; a
    SystemExit of one line when that fails."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise SystemExit(
                    f"evostim serve: port {port} on {host} is taken (another server? `ss -ltnp 'sport = :{port}'` "
                    "names it): stop it, or choose another --port"
                ) from None
            reason = error.strerror or type(error).__name__
            raise SystemExit(f"evostim serve: cannot listen on {host}:{port}: {reason}") from None


def _local_url(host: str, port: int) -> str:
    """Where this machine reaches the server: loopback for a wildcard address."""
    reach = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host.strip("[]"), host.strip("[]"))
    return f"http://[{reach}]:{port}" if ":" in reach else f"http://{reach}:{port}"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _announce(host: str, port: int, workers: int, stop: threading.Event) -> None:
    started, url = time.monotonic(), _local_url(host, port)
    while not stop.wait(_POLL_SECONDS):
        if _answers(url):
            seconds = time.monotonic() - started
            logging.getLogger("evostim").info(
                "evostim serving on http://%s:%d (answering %.1f s after the start)",
                host,
                port,
                seconds,
                extra={"address": f"http://{host}:{port}", "workers": workers, "seconds": round(seconds, 1)},
            )
            return


class _QuietRunningLine(logging.Filter):
    """Drop uvicorn's "Uvicorn running on …" line: it comes when the port is bound, before a worker answers."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Uvicorn running on")


@contextlib.contextmanager
def answering(host: str, port: int, workers: int) -> Iterator[None]:
    """While the server runs: "serving on" logged once it answers /healthz (checked every 0.25 s)."""
    quiet = _QuietRunningLine()
    logging.getLogger("uvicorn.error").addFilter(quiet)
    stop = threading.Event()
    watcher = threading.Thread(target=_announce, args=(host, port, workers, stop), name="evostim-answering")
    watcher.daemon = True
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        logging.getLogger("uvicorn.error").removeFilter(quiet)
