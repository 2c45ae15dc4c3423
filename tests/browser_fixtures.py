"""What the dashboard's browser tests share: a real server, headless Chromium, and helpers that read the page in one
script (the page redraws itself whenever a session's event stream speaks, so an element found in one WebDriver call
may be gone by the next)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from evostim.clients.http.client import Client
from evostim.clients.http.local_server import LocalServer
from tests.conftest import counts_for

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install 'evostim[test]')")
from selenium.webdriver.chrome.service import Service as ChromeService  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

# The fixtures are named server and browser; a test module imports them under these names (pytest finds them there).
__all__ = [
    "REPO",
    "browser_fixture",
    "needs_chromium",
    "post_generations",
    "server_fixture",
    "start_browser",
    "texts",
    "wait",
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[1]

needs_chromium = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason=f"needs {CHROMIUM} and {CHROMEDRIVER} (Debian packages chromium and chromium-driver)",
)


@pytest.fixture(scope="module", name="server")
def server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(Path(tmp_path_factory.mktemp("dashboard-data"))) as running:
        yield running


def start_browser() -> Any:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1360,1500"):
        options.add_argument(argument)
    return webdriver.Chrome(service=ChromeService(executable_path=str(CHROMEDRIVER)), options=options)


@pytest.fixture(scope="module", name="browser")
def browser_fixture() -> Iterator[Any]:
    driver = start_browser()
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: Any, condition: Callable[[Any], Any], timeout: float = 15.0) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def texts(driver: Any, selector: str) -> list[str]:
    """The text of every element matching selector, read in one script."""
    found: list[str] = driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)", selector
    )
    return found


def post_generations(client: Client, session_id: str, count: int, *, seed: int = 0) -> None:
    for _ in range(count):
        manifest = client.generation(session_id)
        body = counts_for(manifest, seed=seed + manifest["number"])
        client.post_responses(session_id, manifest["number"], {r["stimulus"]: r["counts"] for r in body["responses"]})
