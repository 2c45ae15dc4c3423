"""What the dashboard lets a person do, in headless Chromium against a real server with tokens: stop, resume and
fork a session, write its notes, download its history as CSV; a read-only token is offered none of the changes."""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evostim.clients.http.client import Client
from evostim.clients.http.local_server import LocalServer
from tests.browser_fixtures import browser_fixture, needs_chromium, post_generations, texts, wait  # noqa: F401

pytestmark = needs_chromium

RIG, VIEWER = "rig-token-for-tests", "viewer-token-for-tests"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    env = {"EVOSTIM_TOKENS": RIG, "EVOSTIM_READ_TOKENS": VIEWER}
    with LocalServer(Path(tmp_path_factory.mktemp("dashboard-actions")), env=env) as running:
        yield running


def _open_as(browser: Any, server: LocalServer, token: str, session_id: str) -> None:
    """The session's page for a person whose token is ``token`` (as the page keeps it after asking once)."""
    browser.get(f"{server.url}/dashboard/favicon.svg")  # this origin, without running the page
    browser.execute_script("localStorage.setItem('evostim.token', arguments[0])", token)
    browser.get(f"{server.url}/#/sessions/{session_id}")
    wait(browser, lambda d: texts(d, "h1") == [f"Session {session_id}"] and texts(d, "#stat-state"))


def _shown(browser: Any, *ids: str) -> list[bool]:
    script = "return arguments[0].map(id => { const e = document.getElementById(id); return !!e && !e.hidden; })"
    found: list[bool] = browser.execute_script(script, list(ids))
    return found


def _click(browser: Any, selector: str) -> None:
    browser.execute_script("document.querySelector(arguments[0]).click()", selector)


def test_stop_resume_and_fork_from_the_page(server: LocalServer, browser: Any) -> None:
    with Client(server.url, token=RIG) as client:
        session_id = client.create_session(seed=1, population_size=4, metadata={"animal": "Ringo"})["session"]["id"]
        post_generations(client, session_id, 2)
        _open_as(browser, server, RIG, session_id)
        wait(browser, lambda d: _shown(d, "stop", "resume", "fork") == [True, False, True])
        _click(browser, "#stop")
        wait(browser, lambda d: _shown(d, "stop", "resume") == [False, True] and texts(d, "#stat-state") == ["stopped"])
        assert client.session(session_id)["status"] == "stopped"
        _click(browser, "#resume")
        wait(browser, lambda d: _shown(d, "stop", "resume") == [True, False] and texts(d, "#stat-state") == ["running"])
        assert client.session(session_id)["status"] == "running"

        _click(browser, "#fork")
        wait(browser, lambda d: "cholesky-cma" in texts(d, "#fork-form select option"))
        browser.execute_script(
            "const f = document.getElementById('fork-form'); f.optimizer.value = 'cholesky-cma'; f.best.value = '2';"
            "f.requestSubmit(); f.requestSubmit();"  # sent twice (a double click): one fork
        )
        wait(browser, lambda d: texts(d, "h1") != [f"Session {session_id}"])
        fork_id = browser.execute_script("return location.hash").rsplit("/", 1)[1]
        fork = client.session(fork_id)
        assert fork["config"]["optimizer"]["name"] == "cholesky-cma"
        assert fork["config"]["metadata"]["forked_from"]["session"] == session_id
        assert fork["config"]["init"]["best"] == 2
        assert client.sessions()["total"] == 2  # the page sent one key: the second submit answered the same fork


def test_a_read_only_token_is_offered_downloads_but_no_change(server: LocalServer, browser: Any) -> None:
    with Client(server.url, token=RIG) as client:
        made = client.create_session(seed=2, population_size=4, metadata={"notes": "seen by the viewer"})
        session_id = made["session"]["id"]
    _open_as(browser, server, VIEWER, session_id)
    wait(browser, lambda d: texts(d, "#role") == ["read-only"] and _shown(d, "role") == [True])
    assert _shown(browser, "stop", "resume", "fork", "save-notes") == [False, False, False, False]
    assert browser.execute_script("return document.getElementById('notes').tagName") == "P"
    assert texts(browser, "#notes") == ["seen by the viewer"]
    formats = browser.execute_script(
        "return [...document.querySelectorAll('.downloads button')].map(b => b.dataset.format)"
    )
    assert formats == ["csv", "npz", "parquet", "nwb"]


def test_notes_are_saved_and_a_live_redraw_keeps_what_is_being_typed(server: LocalServer, browser: Any) -> None:
    with Client(server.url, token=RIG) as client:
        session_id = client.create_session(seed=3, population_size=4, metadata={"animal": "Ringo"})["session"]["id"]
        _open_as(browser, server, RIG, session_id)
        wait(browser, lambda d: texts(d, "#live") == ["live"])
        notes = browser.find_element("id", "notes")
        notes.send_keys("good isolation on ch 12")
        _click(browser, "#save-notes")
        wait(browser, lambda d: texts(d, "#notes-status")[0].startswith("saved"))
        assert client.session(session_id)["config"]["metadata"] == {
            "animal": "Ringo",
            "notes": "good isolation on ch 12",
        }

        notes.send_keys("; lost after gen 3")  # not saved yet when the session moves on
        post_generations(client, session_id, 1)
        wait(browser, lambda d: texts(d, "#stat-generation") == ["1"])
        value = browser.execute_script("return document.getElementById('notes').value")
        assert value == "good isolation on ch 12; lost after gen 3" and texts(browser, "#notes-status") == ["not saved"]
        assert client.session(session_id)["config"]["metadata"]["notes"] == "good isolation on ch 12"


def test_the_history_downloads_as_csv(server: LocalServer, browser: Any, tmp_path: Path) -> None:
    with Client(server.url, token=RIG) as client:
        session_id = client.create_session(seed=4, population_size=4, references={"builtin": 1})["session"]["id"]
        post_generations(client, session_id, 2)
        stimuli = [s for g in client.history(session_id)["generations"] for s in g["stimuli"]]
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    _open_as(browser, server, VIEWER, session_id)  # a read-only token may download
    _click(browser, ".downloads button[data-format=csv]")
    saved = tmp_path / f"{session_id}.csv"
    deadline = time.monotonic() + 15
    while not saved.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    wait(browser, lambda d: texts(d, "#action-status") == [f"saved {session_id}.csv"])
    with saved.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["stimulus_id"] for r in rows] == [s["id"] for s in stimuli]
    assert [r["score"] for r in rows] == ["" if s["score"] is None else repr(s["score"]) for s in stimuli]
