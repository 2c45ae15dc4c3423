"""The dashboard's views in headless Chromium against a real server: the badge and the open generation of a stopped
or finished session, tiles that survive redraws, the favicon, times with their zone, the sessions list (readable
metadata, sortable columns, a gentle refresh), several sessions on one plot, and one stimulus's details."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest

from evostim.clients.http.client import Client
from evostim.clients.http.local_server import LocalServer
from tests.browser_fixtures import browser_fixture, needs_chromium, post_generations, server_fixture, texts, wait  # noqa: F401
from tests.conftest import counts_for

pytestmark = needs_chromium


def _open(browser: Any, url: str, session_id: str) -> None:
    browser.get(f"{url}/#/sessions/{session_id}")
    wait(browser, lambda d: texts(d, "h1") == [f"Session {session_id}"] and texts(d, "#stat-generation"))


def _badge(browser: Any) -> tuple[str, str]:
    found = browser.execute_script("const b = document.getElementById('live'); return [b.textContent, b.className]")
    return found[0], found[1]


_CURRENT_TITLE = ".card:has(> #current-gallery) h2"  # the title of the generation a rig works on


def test_a_stopped_session_shows_no_live_badge_and_no_open_generation_and_a_finished_one_neither(
    server: LocalServer, browser: Any
) -> None:
    with Client(server.url) as client:
        session_id = client.create_session(seed=3, population_size=4, references={"builtin": 1})["session"]["id"]
        post_generations(client, session_id, 2)
        _open(browser, server.url, session_id)
        wait(browser, lambda d: _badge(d) == ("live", "live on"))
        assert texts(browser, _CURRENT_TITLE) == ["Generation 2 (open: waiting for responses)"]

        client.stop(session_id)  # from elsewhere (a rig, a notebook): the page follows
        wait(browser, lambda d: _badge(d) == ("stopped", "live stopped"))
        (title,) = texts(browser, _CURRENT_TITLE)
        assert "(open" not in title and "stopped" in title and "resume" in title
        client.resume(session_id)
        wait(browser, lambda d: _badge(d) == ("live", "live on"))

        finished = client.create_session(seed=4, population_size=4, max_generations=2)["session"]["id"]
        post_generations(client, finished, 2)
    _open(browser, server.url, finished)
    wait(browser, lambda d: _badge(d) == ("finished", "live finished"))
    assert texts(browser, "#stat-state") == ["finished"] and texts(browser, _CURRENT_TITLE) == []


# Image fetches held back, as on a slow network: the tiles of a new generation are drawn before their images arrive.
_SLOW_IMAGES = """
const original = window.fetch;
window.fetch = async (...args) => {
  if (String(args[0]).includes('/stimuli/')) await new Promise((resolve) => setTimeout(resolve, 4000));
  return original(...args);
};
for (const img of document.querySelectorAll('#best-gallery img')) img.__drawnBefore = true;
"""


def test_a_redraw_keeps_the_loaded_images_and_an_image_not_loaded_yet_shows_no_broken_icon(
    server: LocalServer, browser: Any
) -> None:
    with Client(server.url) as client:
        session_id = client.create_session(seed=5, population_size=6, references={"builtin": 1})["session"]["id"]
        post_generations(client, session_id, 2)
        _open(browser, server.url, session_id)
        loaded = "return [...document.querySelectorAll(arguments[0])].map(i => i.complete && i.naturalWidth > 0)"
        wait(browser, lambda d: d.execute_script(loaded, "#best-gallery img") == [True, True])
        wait(browser, lambda d: _badge(d)[0] == "live")
        browser.execute_script(_SLOW_IMAGES)
        post_generations(client, session_id, 1)
    wait(browser, lambda d: texts(d, "#stat-generation") == ["3"])
    kept = "return [...document.querySelectorAll('#best-gallery img')].map(i => i.__drawnBefore === true)"
    assert browser.execute_script(kept) == [True, True, False]  # the same elements: not reloaded, not re-decoded
    # The new generation's images are on their way: each tile is an empty frame, not a broken-image icon or alt text.
    pending = browser.execute_script(
        "return [...document.querySelectorAll('#current-gallery img')]"
        ".map(i => [i.complete && i.naturalWidth > 0, getComputedStyle(i).visibility, i.alt])"
    )
    assert len(pending) == 7 and all(shown is False and seen == "hidden" and alt == "" for shown, seen, alt in pending)
    wait(browser, lambda d: all(d.execute_script(loaded, "#current-gallery img")), timeout=20)
    seen = "return [...document.querySelectorAll('#current-gallery img')].map(i => getComputedStyle(i).visibility)"
    assert set(browser.execute_script(seen)) == {"visible"}


def test_the_pages_have_a_favicon_served_by_evostim(server: LocalServer, browser: Any) -> None:
    browser.get(f"{server.url}/")
    href = browser.execute_script("const l = document.querySelector('link[rel=icon]'); return l && l.href")
    assert href == f"{server.url}/dashboard/favicon.svg"
    for url in (href, f"{server.url}/favicon.ico"):
        answer = httpx.get(url)
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/svg+xml"
        assert answer.text.startswith("<svg")


def test_times_are_shown_in_the_browsers_zone_and_name_it(server: LocalServer, browser: Any) -> None:
    with Client(server.url) as client:
        session = client.create_session(seed=6, population_size=4, metadata={"animal": "Ringo"})["session"]
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Kolkata"})
    try:
        _open(browser, server.url, session["id"])
        (shown,) = texts(browser, "#stat-created")
        local = datetime.fromisoformat(session["created_at"]).astimezone(ZoneInfo("Asia/Kolkata"))
        assert shown in {f"{local:%Y-%m-%d %H:%M:%S} {zone}" for zone in ("GMT+5:30", "IST")}, shown
        stamp = browser.execute_script("return document.querySelector('#stat-created time').getAttribute('datetime')")
        assert stamp == session["created_at"]
        browser.get(f"{server.url}/")
        wait(browser, lambda d: texts(d, "#sessions tbody tr.row"))
        cells = texts(browser, "#sessions tbody tr.row time")
        assert cells and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (GMT\+5:30|IST)", c) for c in cells), cells
    finally:
        browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ""})


def _list_order(browser: Any) -> tuple[list[str], list[str]]:
    """The rows' session ids in the order shown, and each column's sort state ('best:descending')."""
    found = browser.execute_script(
        "return [[...document.querySelectorAll('#sessions tbody tr.row')].map(r => r.dataset.id),"
        "[...document.querySelectorAll('#sessions th[aria-sort]')]"
        ".map(t => t.dataset.key + ':' + t.getAttribute('aria-sort'))]"
    )
    return found[0], found[1]


def test_the_sessions_list_reads_metadata_as_words_sorts_by_any_column_and_asks_the_server_gently(
    server: LocalServer, browser: Any
) -> None:
    with Client(server.url) as client:
        for seed, animal in enumerate(("Alf", "Bo", "Cy")):
            metadata = {"animal": animal, "array": {"area": "V4", "pins": 32}}
            made = client.create_session(seed=seed, population_size=4, metadata=metadata)
            post_generations(client, made["session"]["id"], seed + 1, seed=10 * seed)
        best = {s["id"]: s["best_score"] for s in client.sessions(limit=500)["items"]}
    browser.get(f"{server.url}/")
    wait(browser, lambda d: len(_list_order(d)[0]) == len(best))
    started = time.monotonic()
    (row,) = [t for t in texts(browser, "#sessions tbody tr.row td.meta") if "Cy" in t]
    assert "{" not in row and "animal Cy" in row and "array area V4, pins 32" in row

    browser.execute_script("document.querySelector('#sessions th[data-key=best]').click()")
    order, sorts = _list_order(browser)
    scores = [best[i] for i in order if best[i] is not None]
    assert scores == sorted(scores, reverse=True) and "best:descending" in sorts
    assert all(best[i] is None for i in order[len(scores) :])  # sessions with no score last
    browser.execute_script("document.querySelector('#sessions th[data-key=best]').click()")
    order, sorts = _list_order(browser)
    scores = [best[i] for i in order if best[i] is not None]
    assert scores == sorted(scores) and "best:ascending" in sorts
    browser.execute_script("document.querySelector('#sessions th[data-key=metadata]').click()")
    animals = [t for t in texts(browser, "#sessions tbody tr.row td.meta") if "array area" in t]
    assert [a.split()[1] for a in animals] == ["Alf", "Bo", "Cy"]

    time.sleep(max(0.0, 6.5 - (time.monotonic() - started)))  # longer than the old 5 s poll
    lists = "return performance.getEntriesByType('resource').filter(e => e.name.includes('/v1/sessions?')).length"
    assert browser.execute_script(lists) == 1, "the list was asked for again within 6 s"


def test_several_sessions_overlay_their_score_curves_on_one_plot(server: LocalServer, browser: Any) -> None:
    with Client(server.url) as client:
        ids = []
        for seed, generations in ((21, 2), (22, 3)):
            made = client.create_session(seed=seed, population_size=4, metadata={"animal": f"A{seed}"})
            ids.append(made["session"]["id"])
            post_generations(client, ids[-1], generations, seed=seed)
        histories = [client.history(i)["generations"] for i in ids]
    means = [[g["optimizer"]["evolved_mean"] for g in generations if g["optimizer"]] for generations in histories]
    browser.get(f"{server.url}/")
    wait(browser, lambda d: all(i in _list_order(d)[0] for i in ids))
    for session_id in ids:
        browser.execute_script("document.querySelector(`tr.row[data-id='${arguments[0]}'] input`).click()", session_id)
    assert texts(browser, "#compare") == ["Compare selected (2)"]
    browser.execute_script("document.getElementById('compare').click()")
    count = "return document.querySelectorAll('#compare-plot circle.pt.' + arguments[0]).length"
    wait(browser, lambda d: d.execute_script(count, "cmp-0") == 2 and d.execute_script(count, "cmp-1") == 3)
    for i, session_id in enumerate(ids):
        titles = texts(browser, f"#compare-plot circle.pt.cmp-{i} title")
        assert [float(t.rsplit(": ", 1)[1]) for t in titles] == pytest.approx(means[i], abs=6e-4)
        assert all(t.startswith(session_id[:10]) and f"A{21 + i}" in t for t in titles)
    (legend,) = texts(browser, "#compare-plot + div .legend")
    assert ids[0][:10] in legend and ids[1][:10] in legend


def test_a_click_on_a_stimulus_shows_its_counts_per_repetition_score_and_code_norm(
    server: LocalServer, browser: Any
) -> None:
    with Client(server.url) as client:
        session_id = client.create_session(seed=8, population_size=4, channels=["a", "b"])["session"]["id"]
        manifest = client.generation(session_id)
        body = counts_for(manifest, seed=3, channels=("a", "b"))
        client.post_responses(session_id, 0, {r["stimulus"]: r["counts"] for r in body["responses"]})
        (generation,) = [g for g in client.history(session_id, codes=True)["generations"] if g["number"] == 0]
    stimulus = generation["stimuli"][2]
    _open(browser, server.url, session_id)
    tile = "return document.querySelector(`#scored-gallery figure[data-stimulus='${arguments[0]}']`)"
    wait(browser, lambda d: d.execute_script(tile, stimulus["id"]) is not None)
    browser.execute_script(tile.replace("return ", "") + ".click()", stimulus["id"])
    wait(browser, lambda d: d.execute_script("return document.getElementById('stimulus-dialog').open"))
    wait(browser, lambda d: texts(d, "#detail-norm") != ["…"])
    assert texts(browser, "#detail-score") == [f"{stimulus['score']:.3f}"]
    assert texts(browser, "#detail-norm") == [f"{np.linalg.norm(stimulus['code']):.3f}"]
    rows = browser.execute_script(
        "return [...document.querySelectorAll('#stimulus-dialog table.counts tbody tr')]"
        ".map(r => [...r.children].map(c => c.textContent))"
    )
    expected = [[ch, *(f"{v:g}" for v in reps), f"{np.mean(reps):.3f}"] for ch, reps in stimulus["counts"].items()]
    assert rows == expected
    browser.execute_script("document.querySelector('#stimulus-dialog .dialog-head button').click()")
    assert not browser.execute_script("return document.getElementById('stimulus-dialog').open")
