"""The dashboard in headless Chromium against a real server: curve, gallery, live updates; /docs offline.

Set EVOSTIM_UPDATE_SCREENSHOT=1 to also save the session page as docs/dashboard.png.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from evostim.clients.http.client import Client
from evostim.clients.http.local_server import LocalServer
from tests.browser_fixtures import REPO, browser_fixture, needs_chromium, server_fixture, texts, wait  # noqa: F401
from tests.browser_fixtures import post_generations as _post_generations
from tests.conftest import counts_for

pytestmark = needs_chromium


def _points(driver: Any) -> int:
    count: int = driver.execute_script("return document.querySelectorAll('#score-plot circle.pt.mean').length")
    return count


def _gallery_loaded(driver: Any, expected: int) -> bool:
    loaded: bool = driver.execute_script(
        "const imgs = [...document.querySelectorAll('#best-gallery img')];"
        "return imgs.length === arguments[0] && imgs.every(i => i.complete && i.naturalWidth > 0);",
        expected,
    )
    return loaded


def test_session_page_draws_and_follows_the_session_live(server: LocalServer, browser: Any, tmp_path: Path) -> None:
    with Client(server.url) as client:
        created = client.create_session(
            seed=7,
            population_size=8,
            references={"builtin": 2},
            metadata={"animal": "Ringo", "array": "V4-left", "notes": "browser test"},
        )
        session_id = created["session"]["id"]
        _post_generations(client, session_id, 3)

        browser.get(f"{server.url}/#/sessions/{session_id}")
        wait(browser, lambda d: _points(d) == 3)
        wait(browser, lambda d: _gallery_loaded(d, 3))
        wait(browser, lambda d: texts(d, "#live") == ["live"])
        browser.execute_script("window.__samePage = true")
        time.sleep(1.0)  # the stream's first event (sent at once) has come: it repeats what is drawn
        history_loads = (
            "return performance.getEntriesByType('resource')"
            ".filter(e => e.name.includes('/v1/sessions/' + arguments[0] + '/history')).length"
        )
        assert browser.execute_script(history_loads, session_id) == 1, "the page loaded the history again for nothing"

        _post_generations(client, session_id, 2)
        wait(browser, lambda d: _points(d) == 5)
        assert browser.execute_script("return window.__samePage === true"), "the page reloaded"
        wait(browser, lambda d: _gallery_loaded(d, 5))
        assert texts(browser, "#stat-generation") == ["5"]

    shot = tmp_path / "dashboard.png"
    browser.save_screenshot(str(shot))
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 20, "the screenshot is (nearly) blank"
    if os.environ.get("EVOSTIM_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, REPO / "docs" / "dashboard.png")


def test_a_multi_channel_session_shows_each_channels_curve_and_the_last_generation_best_first(
    server: LocalServer, browser: Any
) -> None:
    channels = ("V4-a", "V4-b")
    with Client(server.url) as client:
        created = client.create_session(seed=9, channels=list(channels), population_size=6, references={"builtin": 1})
        session_id = created["session"]["id"]
        for _ in range(2):
            manifest = client.generation(session_id)
            body = counts_for(manifest, seed=manifest["number"], channels=channels)
            client.post_responses(
                session_id, manifest["number"], {r["stimulus"]: r["counts"] for r in body["responses"]}
            )
        scores = [s["score"] for s in client.history(session_id)["generations"][1]["stimuli"]]

    browser.get(f"{server.url}/#/sessions/{session_id}")
    count = "return document.querySelectorAll('#channel-plot circle.pt.' + arguments[0]).length"
    wait(browser, lambda d: d.execute_script(count, "ch-0") == 2 and d.execute_script(count, "ch-1") == 2)
    legend = texts(browser, "#channel-card .legend")
    assert len(legend) == 1 and all(channel in legend[0] for channel in channels)
    # The full-width channel plot's text is drawn the size of the score plot's (its view box is wider, not scaled up).
    text_height = "return document.querySelector(arguments[0] + ' svg text').getBoundingClientRect().height"
    ratio = browser.execute_script(text_height, "#channel-plot") / browser.execute_script(text_height, "#score-plot")
    assert 0.85 < ratio < 1.18, f"the channel plot's text is {ratio:.2f} times the score plot's"
    captions = texts(browser, "#scored-gallery figcaption")
    shown = [float(caption.rsplit("· ", 1)[1]) for caption in captions]
    assert len(shown) == len(scores) == 7 and shown == sorted(shown, reverse=True)
    assert shown == sorted((round(score, 2) for score in scores), reverse=True)


@pytest.mark.parametrize(
    ("optimizer", "key", "label"), [("cholesky-cma", "sigma", "sigma"), ("sphere-cma", "angle_deg", "angle, degrees")]
)
def test_the_step_size_card_plots_what_the_optimizer_reports(
    server: LocalServer, browser: Any, optimizer: str, key: str, label: str
) -> None:
    with Client(server.url) as client:
        created = client.create_session(
            seed=4, population_size=6, references={"builtin": 0}, optimizer={"name": optimizer}
        )
        session_id = created["session"]["id"]
        _post_generations(client, session_id, 2)
        reported = [generation["optimizer"][key] for generation in client.history(session_id)["generations"][:2]]
    assert all(value > 0 for value in reported)
    browser.get(f"{server.url}/#/sessions/{session_id}")  # a new hash on the page the last test left: wait for it
    wait(browser, lambda d: texts(d, "h1") == [f"Session {session_id}"])
    points = "return document.querySelectorAll('#step-card circle.pt').length"
    wait(browser, lambda d: d.execute_script(points) == len(reported))
    assert texts(browser, "#step-card h2") == [f"Optimizer step size ({label})"]
    assert label in texts(browser, "#step-card svg text")


# The page's fetch, wrapped: every history it loads has its stored summaries shifted, so what the page draws can only
# have come from them (a page recomputing the summary from the scores would draw the unshifted numbers).
_SHIFTED_HISTORY = """
const original = window.fetch;
window.fetch = async (...args) => {
  const answer = await original(...args);
  if (!String(args[0]).includes('/history')) return answer;
  const history = await answer.json();
  for (const g of history.generations) {
    if (g.optimizer) for (const key of ['evolved_mean', 'evolved_max']) g.optimizer[key] += 1000;
  }
  return new Response(JSON.stringify(history), { status: 200, headers: { 'Content-Type': 'application/json' } });
};
location.hash = '#/sessions/' + arguments[0];
"""


def test_the_score_plot_draws_the_servers_stored_summaries_and_recomputes_nothing(
    server: LocalServer, browser: Any
) -> None:
    with Client(server.url) as client:
        created = client.create_session(seed=9, population_size=6, references={"builtin": 2})
        session_id = created["session"]["id"]
        _post_generations(client, session_id, 3)
        summaries = [g["optimizer"] for g in client.history(session_id)["generations"][:3]]
    assert all({"evolved_mean", "evolved_sd", "evolved_max", "reference_mean"} <= set(s) for s in summaries)
    browser.get(f"{server.url}/#/")
    wait(browser, lambda d: texts(d, "h1") == ["Sessions"])
    browser.execute_script(_SHIFTED_HISTORY, session_id)
    wait(browser, lambda d: _points(d) == 3)
    titles = {name: texts(browser, f"#score-plot circle.pt.{name} title") for name in ("mean", "max", "ref")}
    expected = {
        "mean": [f"generation {g}: {s['evolved_mean'] + 1000:.3f}" for g, s in enumerate(summaries)],
        "max": [f"generation {g}: {s['evolved_max'] + 1000:.3f}" for g, s in enumerate(summaries)],
        "ref": [f"generation {g}: {s['reference_mean']:.3f}" for g, s in enumerate(summaries)],
    }
    assert titles == expected
    assert browser.execute_script("return document.querySelectorAll('#score-plot polygon').length") == 1  # ± 1 SD
    browser.get("about:blank")  # the page with the wrapped fetch is gone: the next test loads a fresh one


def test_sessions_list_shows_and_filters(server: LocalServer, browser: Any) -> None:
    with Client(server.url) as client:
        client.create_session(seed=8, population_size=4, references={"builtin": 0}, metadata={"animal": "Zelda"})
    browser.get(f"{server.url}/")
    wait(browser, lambda d: len(d.find_elements("css selector", "tbody tr.row")) >= 1)
    search = browser.find_element("css selector", ".filters input")
    search.send_keys("zelda")
    wait(browser, lambda d: len(d.find_elements("css selector", "tbody tr.row")) == 1)
    rows = texts(browser, "tbody tr.row")
    assert len(rows) == 1 and "Zelda" in rows[0]


def test_docs_render_swagger_ui_with_no_external_requests(server: LocalServer, browser: Any) -> None:
    browser.get(f"{server.url}/docs")
    wait(browser, lambda d: d.find_elements("css selector", ".swagger-ui .opblock"))
    names: list[str] = browser.execute_script(
        "return [location.href, ...performance.getEntries().map(e => e.name).filter(n => /^https?:/.test(n))]"
    )
    origin = server.url.rstrip("/") + "/"
    assert names and all(name.startswith(origin) for name in names), names
    assert any(name.endswith("/docs-assets/swagger-ui-bundle.js") for name in names)
