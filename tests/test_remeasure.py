"""metric-cma's remeasure (round 42): the best images by mean score shown again, never told to the inner search, and
the sweep engine's best image judged by its mean score over its showings."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from evostim.clients.sweeps.engine import RunResult, RunSpec
from evostim.optimizers import InvalidParameter, Optimizer
from evostim.optimizers.elites import KEPT, MAX_REMEASURE, Elites
from tests.test_api import create, history
from tests.test_optimizers import make, through_json

DIM = 12


def remeasuring(remeasure: int = 1, seed: int = 0) -> Optimizer:
    return make("metric-cma", dim=DIM, population_size=10, seed=seed, remeasure=remeasure)


def test_elites_count_a_code_shown_again_as_one_image_and_keep_the_best_means_first() -> None:
    rng = np.random.default_rng(0)
    codes = rng.standard_normal((KEPT + 2, 4))
    top = KEPT + 1  # the last image, scored highest
    elites = Elites(4)
    elites.add(codes, np.arange(KEPT + 2.0), 0, np.arange(KEPT + 2))  # images 0 and 1 are dropped
    assert len(elites.codes) == KEPT and np.array_equal(elites.leaders(2), codes[[top, top - 1]])
    elites.add(codes[[top, top]], np.array([0.0, 1.0]), 1, np.array([4, 5]))  # measured twice more: (65 + 1) / 3
    np.testing.assert_array_equal(elites.leaders(1), codes[top - 1 : top])
    assert elites.leader == (float(top - 1), 0, top - 1)  # first shown in generation 0, row 64
    mean = (top + 1.0) / 3
    assert elites.counts[elites.means == mean].tolist() == [3.0, 1.0]  # the image kept longer first, at a tie
    assert elites.origins[elites.means == mean].tolist() == [[0, top], [0, int(mean)]]  # where each was first shown
    elites.add(codes[[1]], np.array([5.0]), 2, np.array([0]))  # image 1 was dropped (a 1): it enters anew at 5
    assert elites.means.tolist() == sorted(elites.means.tolist(), reverse=True) and len(elites.codes) == KEPT
    np.testing.assert_array_equal(elites.codes[elites.means == 5.0], codes[[5, 1]])  # the image kept longer first
    restored = Elites.restored(elites.state(), 4)
    for field in ("codes", "sums", "counts", "origins"):
        np.testing.assert_array_equal(getattr(restored, field), getattr(elites, field))
    tie = Elites(2)
    tie.add(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([2.0, 2.0]), 0, np.arange(2))
    np.testing.assert_array_equal(tie.leaders(1), [[1.0, 0.0]])  # the earlier image keeps a tie


def test_the_leaders_are_shown_again_in_the_last_places_and_a_lucky_count_falls_back() -> None:
    optimizer = remeasuring(remeasure=1)
    first = optimizer.ask()
    assert first.codes.shape == (10, DIM)
    np.testing.assert_array_equal(first.codes[-1], first.codes[-2])  # nothing measured yet: the mean's image twice
    scores = np.zeros(10)
    scores[2] = 100.0  # a lucky count
    scores[5] = 60.0
    optimizer.tell(first.ids, scores)
    second = optimizer.ask()
    np.testing.assert_array_equal(second.codes[-1], first.codes[2])
    again = np.zeros(10)
    again[-1] = 0.0  # measured again: (100 + 0) / 2 = 50 < 60
    optimizer.tell(second.ids, again)
    third = optimizer.ask()
    np.testing.assert_array_equal(third.codes[-1], first.codes[5])


@pytest.mark.parametrize("starts", [1, 2])
def test_the_scores_of_images_shown_again_are_never_told_to_the_inner_search(starts: int) -> None:
    """Nor do they choose between starts: the images shown again in one start's turn may be the other's."""
    runs = [
        make("metric-cma", dim=DIM, population_size=10, seed=3, remeasure=2, starts=starts, trial_generations=2)
        for _ in range(2)
    ]
    rng = np.random.default_rng(1)
    for generation in range(8):
        populations = [run.ask() for run in runs]
        np.testing.assert_array_equal(populations[0].codes[:-2], populations[1].codes[:-2])
        scores = rng.standard_normal(10)
        scores[:-2] += 5.0 * (generation % 2)  # the second start's own images score higher
        for index, (run, population) in enumerate(zip(runs, populations, strict=True)):
            told = scores.copy()
            # Only the repeats' scores differ between the two: far higher in the first start's turns of the second.
            told[-2:] += 100.0 * index * (1 - generation % 2)
            run.tell(population.ids, told)


def test_a_shrunk_estimate_ranks_one_lucky_count_below_an_image_that_kept_its_score() -> None:
    """shrink (round 46): one count of 30 in a generation whose mean is 10 is estimated (30 + 10) / 2 = 20, below an
    image counted 24, 26 and 22 in a generation of mean 20 ((72 + 20) / 4 = 23); the plain mean ranks them the
    other way."""
    codes = np.eye(4)
    for shrink, leader in ((0.0, 1), (1.0, 0)):
        elites = Elites(4, shrink)
        elites.add(codes[[0, 2]], np.array([24.0, 16.0]), 0, np.arange(2))  # generation 0: mean 20
        elites.add(codes[[0, 0]], np.array([26.0, 22.0]), 1, np.array([8, 9]))  # image 0 shown again twice
        elites.add(codes[[1, 3]], np.array([30.0, -10.0]), 2, np.arange(2))  # generation 2: mean 10, one lucky 30
        np.testing.assert_array_equal(elites.leaders(1), codes[[leader]])
        assert elites.leader is not None and elites.leader[0] == elites.means[0]  # the score told is the mean
        restored = Elites.restored(elites.state(), 4, shrink)
        for field in ("codes", "sums", "counts", "origins", "estimates"):
            np.testing.assert_array_equal(getattr(restored, field), getattr(elites, field))
    np.testing.assert_array_equal(elites.estimates[:2], [23.0, 20.0])


def test_a_state_stored_before_shrink_existed_restores_with_its_means_as_priors() -> None:
    elites = Elites(2)
    elites.add(np.eye(2), np.array([3.0, 1.0]), 0, np.arange(2))
    assert "priors" not in elites.state()  # states without shrink are as before
    restored = Elites.restored(elites.state(), 2, shrink=2.0)
    np.testing.assert_array_equal(restored.estimates, elites.means)


@pytest.mark.parametrize("shrink", [0.0, 1.5])
def test_a_restored_optimizer_shows_the_same_images_again(shrink: float) -> None:
    optimizer = make("metric-cma", dim=DIM, population_size=10, seed=4, remeasure=2, shrink=shrink)
    rng = np.random.default_rng(2)
    for _ in range(3):
        population = optimizer.ask()
        optimizer.tell(population.ids, rng.standard_normal(10))
    restored = through_json(optimizer)
    for _ in range(3):
        a, b = optimizer.ask(), restored.ask()
        np.testing.assert_array_equal(a.codes, b.codes)
        scores = rng.standard_normal(10)
        optimizer.tell(a.ids, scores)
        restored.tell(b.ids, scores)
    assert optimizer.best_image == restored.best_image


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"remeasure": MAX_REMEASURE + 1}, f"remeasure must be an integer <= {MAX_REMEASURE}"),
        ({"remeasure": 7}, "population_size >= 10"),
        ({"shrink": -1}, "shrink must be in"),
        ({"shrink": 1.0}, "it needs remeasure >= 1"),  # no images shown again: nothing to rank
    ],
)
def test_a_remeasure_beyond_what_is_kept_or_the_population_is_refused(params: dict[str, int], message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        make("metric-cma", dim=DIM, population_size=9, **params)


def _result() -> RunResult:
    return RunResult(RunSpec(unit="u", optimizer="metric-cma", noise="poisson", seed=0, generations=3))


def test_the_engine_judges_an_image_shown_again_by_its_mean_score() -> None:
    codes = np.eye(3)
    result = _result()
    result.record(codes, clean=np.array([1.0, 2.0, 3.0]), observed=np.array([9.0, 5.0, 7.0]))
    assert (result.best_clean[-1], result.best_observed[-1]) == (1.0, 9.0)  # a lucky count leads
    result.record(codes[[0, 2]], clean=np.array([1.0, 3.0]), observed=np.array([1.0, 7.0]))
    # Image 0 falls back to 5, image 2 stays at 7 and leads.
    assert (result.best_clean[-1], result.best_observed[-1]) == (3.0, 7.0)
    np.testing.assert_array_equal(result.best_code, codes[2])
    result.record(codes[[2]], clean=np.array([3.0]), observed=np.array([0.0]))
    # Image 2 falls to 14 / 3 < 5: image 0 leads again, though not shown now.
    assert (result.best_clean[-1], result.best_observed[-1]) == (1.0, 5.0)


@pytest.mark.parametrize("shrink", [0.0, 1.0])
def test_the_engine_and_a_remeasuring_optimizer_name_the_same_best_image_under_a_declining_neuron(
    shrink: float,
) -> None:
    """One rule for both (evostim.optimizers.elites): a session reports the image a sweep's value is read from."""
    optimizer = make("metric-cma", dim=DIM, population_size=10, seed=2, remeasure=2, shrink=shrink)
    params = {"remeasure": 2, "shrink": shrink}
    result = RunResult(RunSpec(unit="u", optimizer="metric-cma", noise="poisson", seed=0, generations=3, params=params))
    rng = np.random.default_rng(5)
    target = rng.standard_normal(DIM)
    shown = []
    for generation in range(40):
        population = optimizer.ask()
        shown.append(population.codes)
        clean = np.maximum(population.codes @ target, 0.0)
        gain = 1.0 - 0.5 * generation / 39  # the neuron's responsiveness halves over the run
        observed = rng.poisson(2.0 + 3.0 * gain * clean).astype(float)
        optimizer.tell(population.ids, observed)
        result.record(population.codes, clean, observed)
        best = optimizer.best_image
        assert best is not None and best[0] == result.best_observed[-1]
        np.testing.assert_array_equal(shown[best[1]][best[2]], result.best_code)


def test_a_partly_measured_generation_counts_only_what_was_measured() -> None:
    optimizer = remeasuring(remeasure=1)
    first = optimizer.ask()
    scores = np.zeros(10)
    scores[3] = 50.0
    optimizer.tell(first.ids, scores)
    second = optimizer.ask()
    np.testing.assert_array_equal(second.codes[-1], first.codes[3])
    optimizer.tell(second.ids[:5], np.ones(5))  # the image shown again (the last row) was not measured
    assert optimizer.best_image == (50.0, 0, 3)  # still one count, still the best


def test_the_engine_judges_codes_of_any_float_type() -> None:
    result = _result()
    codes = np.eye(3, dtype=np.float32)
    result.record(codes, clean=np.array([1.0, 2.0, 3.0]), observed=np.array([1.0, 5.0, 2.0]))
    result.record(codes[[1]], clean=np.array([2.0]), observed=np.array([1.0]))  # image 1: (5 + 1) / 2 = 3
    assert (result.best_clean[-1], result.best_observed[-1]) == (2.0, 3.0)


def test_without_repeats_the_engine_picks_the_first_highest_count_as_before() -> None:
    rng = np.random.default_rng(4)
    result = _result()
    best_score, best_clean = -np.inf, np.nan
    for _ in range(KEPT):  # past the bound on the images kept
        observed = rng.integers(0, 12, size=10).astype(float)
        clean = rng.random(10)
        result.record(rng.standard_normal((10, 5)), clean, observed)
        top = int(np.argmax(observed))
        if observed[top] > best_score:
            best_score, best_clean = observed[top], clean[top]
        assert (result.best_observed[-1], result.best_clean[-1]) == (best_score, best_clean)


def test_a_session_that_shows_images_again_names_the_image_with_the_best_mean_count_its_best(make_api: Any) -> None:
    """Over HTTP, and after the optimizer was forgotten (a restart's replay): a lucky count falls back when its image
    is measured again, and the session's best moves to the image whose counts are best on average."""
    api = make_api(snapshot_every=50)  # no snapshot after creation: a forgotten optimizer is replayed
    created = create(api, population_size=10, optimizer={"name": "metric-cma", "params": {"remeasure": 1}})
    session_id, manifest = created["session"]["id"], created["generation"]

    def post(counts: dict[str, float]) -> dict[str, Any]:
        responses = [{"stimulus": s["id"], "counts": {"ch0": [counts.get(s["id"], 0.0)]}} for s in manifest["stimuli"]]
        answer = api.post(manifest["responses_url"], json={"responses": responses})
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    answer = post({"g0-e2": 100.0, "g0-e5": 60.0})
    assert (answer["session"]["best_score"], answer["session"]["best_stimulus"]) == (100.0, "g0-e2")
    api.app.state.service.forget_optimizers()  # the next post replays the optimizer from the store
    manifest = answer["next"]
    answer = post({})  # g0-e2's image, shown again last, counts 0: (100 + 0) / 2 = 50 < 60
    session = answer["session"]
    assert (session["best_score"], session["best_stimulus"]) == (60.0, "g0-e5")
    assert session["best_image_url"].endswith("/stimuli/g0-e5.png")
    generations = history(api, session_id)["generations"]
    codes = {s["id"]: s["code"] for g in generations for s in g["stimuli"]}
    assert codes["g1-e9"] == codes["g0-e2"]
    manifest = answer["next"]
    session = post({"g2-e8": 30.0})["session"]  # g0-e5's image shown again, counts 0: (60 + 0) / 2 = 30 < 50
    assert (session["best_score"], session["best_stimulus"]) == (50.0, "g0-e2")  # the image measured twice
