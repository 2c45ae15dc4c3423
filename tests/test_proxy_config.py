"""docker/nginx.conf, the reverse proxy a lab puts in front of the server, run for real where nginx is installed:
its syntax, an API call and a live event stream through it (unbuffered), and its cap on connections per client."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from evostim.clients.http.client import Client
from evostim.clients.http.local_server import LocalServer, free_port
from tests.test_events import _events

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "proxy-token-aaaaaaaaaaaaaaaa"


def _local_config(server_port: int, proxy_port: int, folder: Path) -> Path:
    """The compose file's nginx.conf, pointed at a local server and writing its logs into ``folder``."""
    text = (ROOT / "docker" / "nginx.conf").read_text()
    text = text.replace("server server:8000;", f"server 127.0.0.1:{server_port};")
    text = text.replace("listen 8000;", f"listen 127.0.0.1:{proxy_port};")
    text = re.sub(r"/var/log/nginx/(\w+)\.log", lambda m: str(folder / f"{m[1]}.log"), text)
    text = text.replace("limit_conn per_client 64;", "limit_conn per_client 8;")  # the cap, small enough to test
    path = folder / "nginx.conf"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    nginx = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    folder = Path(tmp_path_factory.mktemp("proxy"))
    with LocalServer(folder / "data", env={"EVOSTIM_TOKENS": TOKEN}) as server:
        port = free_port()
        config = _local_config(server.port, port, folder)
        command = [nginx, "-c", str(config), "-p", f"{folder}/", "-g", f"pid {folder}/nginx.pid;"]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
        running = subprocess.Popen([*command[:-1], f"pid {folder}/nginx.pid; daemon off;"])
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            running.terminate()
            running.wait(10)


def test_a_session_and_its_live_events_pass_through_the_proxy(proxy: str) -> None:
    with Client(proxy, token=TOKEN) as client:
        created = client.create_session(seed=3, population_size=4, references={"builtin": 0})
        session_id = created["session"]["id"]
        url = f"{proxy}/v1/sessions/{session_id}/events"
        with httpx.stream("GET", url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10.0) as stream:
            events = _events(stream.iter_lines())
            assert next(events) is not None  # the first event arrives at once: not held in the proxy's buffer
            client.stop(session_id)
            stopped = next(e for e in events if e is not None)
            assert stopped["status"] == "stopped"


def test_the_proxy_caps_connections_per_client_address(proxy: str) -> None:
    with Client(proxy, token=TOKEN) as client:
        session_id = client.create_session(seed=4, population_size=4, references={"builtin": 0})["session"]["id"]
    host, port = proxy.removeprefix("http://").split(":")
    request = f"GET /v1/sessions/{session_id}/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    held = []
    try:
        for _ in range(8):  # eight event streams open: the cap of this address's requests in progress
            sock = socket.create_connection((host, int(port)), timeout=5.0)
            sock.sendall(request.encode())
            assert b" 200 " in sock.recv(4096).split(b"\r\n")[0]
            held.append(sock)
        assert httpx.get(f"{proxy}/healthz", timeout=5.0).status_code == 429
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert httpx.get(f"{proxy}/healthz", timeout=5.0).status_code == 200
