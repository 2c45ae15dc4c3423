"""Analyses of an evolution: known answers on hand-made histories and simulated random walks, a real history."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from evostim.clients.analysis.evolution import (
    AnalysisError,
    CodesMissing,
    Evolution,
    TooFewGenerations,
    best_per_generation,
    mean_code_images,
    mean_codes,
    montage,
    random_walk_spectrum,
    score_trajectory,
    trajectory_pca,
    trajectory_signature,
)
from tests.conftest import counts_for


def random_walk(steps: int, dim: int, seed: int) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).standard_normal((steps, dim)), axis=0)


def straight_drift(steps: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 0.3 * np.outer(np.arange(steps), rng.standard_normal(dim)) + rng.standard_normal((steps, dim))


def synthetic_history(
    centres: np.ndarray, *, population: int = 4, references: int = 2, seed: int = 0, codes: bool = True
) -> dict[str, Any]:
    """A history as the server answers it: evolved codes scattered around (G, d) centres, scores rising."""
    rng = np.random.default_rng(seed)
    generations = []
    for g, centre in enumerate(centres):
        stimuli = []
        for kind, count in (("evolved", population), ("reference", references)):
            for i in range(count):
                values = {"ch0": rng.poisson(5 + g, 3).astype(float).tolist(), "ch1": [float(rng.poisson(3))]}
                code = centre + 0.05 * rng.standard_normal(len(centre))
                stimuli.append({
                    "id": f"g{g}-{kind[0]}{i}", "kind": kind, "index": i, "code": code.tolist() if codes else None,
                    "counts": values, "baseline": None, "score": float(np.mean(values["ch0"])),
                })  # fmt: skip
        generations.append({"number": g, "status": "closed", "stimuli": stimuli, "optimizer": {"sigma": 1 / (g + 1)}})
    config = {"generator": "dcgan-faces", "optimizer": {"name": "cholesky-cma", "params": {"sigma": 1.0}},
              "population_size": population, "channels": ["ch0", "ch1"], "code_norm": None, "metadata": {}}  # fmt: skip
    return {"session": {"id": "s_synthetic", "status": "running", "config": config}, "generations": generations}


def stimulus(sid: str, kind: str, counts: dict[str, list[float]] | None, score: float | None) -> dict[str, Any]:
    return {"id": sid, "kind": kind, "index": int(sid[-1]), "code": None, "counts": counts, "score": score}


@pytest.fixture
def hand_made() -> Evolution:
    """Three generations: a missing evolved stimulus, a missing reference, an open generation without scores."""
    g0 = [
        stimulus("g0-e0", "evolved", {"a": [1.0, 1.0], "b": [0.0]}, 1.0),
        stimulus("g0-e1", "evolved", {"a": [2.0, 4.0], "b": [2.0]}, 3.0),
        stimulus("g0-e2", "evolved", None, None),
        stimulus("g0-r0", "reference", {"a": [2.0], "b": [4.0]}, 2.0),
    ]
    g1 = [
        stimulus("g1-e0", "evolved", {"a": [4.0], "b": [1.0]}, 4.0),
        stimulus("g1-e1", "evolved", {"a": [6.0], "b": [1.0]}, 6.0),
        stimulus("g1-e2", "evolved", {"a": [8.0], "b": [4.0]}, 8.0),
        stimulus("g1-r0", "reference", None, None),
        stimulus("g1-r1", "reference", {"a": [5.0], "b": [2.0]}, 5.0),
    ]
    g2 = [stimulus("g2-e0", "evolved", None, None), stimulus("g2-r0", "reference", None, None)]
    history = {
        "session": {"id": "s_hand", "config": {"channels": ["a", "b"]}},
        "generations": [
            {"number": 1, "status": "closed", "stimuli": g1, "optimizer": {"evolved_mean": 6.0, "sigma": 0.5}},
            {"number": 0, "status": "closed", "stimuli": g0, "optimizer": {"evolved_mean": 2.0, "sigma": 1.0}},
            {"number": 2, "status": "open", "stimuli": g2, "optimizer": None},
        ],
    }
    return Evolution.from_history(history)


# -- scores ---------------------------------------------------------------------------------------------------
def test_the_score_trajectory_equals_the_hand_computed_numbers(hand_made: Evolution) -> None:
    scores = score_trajectory(hand_made)
    nan = math.nan
    np.testing.assert_array_equal(scores.numbers, [0, 1, 2])
    np.testing.assert_array_equal(scores.evolved_n, [2, 3, 0])
    np.testing.assert_allclose(scores.evolved_mean, [2.0, 6.0, nan])
    np.testing.assert_allclose(scores.evolved_std, [math.sqrt(2), 2.0, nan])
    np.testing.assert_allclose(scores.evolved_sem, [1.0, 2 / math.sqrt(3), nan])
    np.testing.assert_allclose(scores.evolved_max, [3.0, 8.0, nan])
    np.testing.assert_array_equal(scores.reference_n, [1, 1, 0])
    np.testing.assert_allclose(scores.reference_mean, [2.0, 5.0, nan])
    np.testing.assert_allclose(scores.reference_sem, [nan, nan, nan])
    assert scores.channels == ("a", "b")
    # Channel a: per stimulus means 1, 3 | 4, 6, 8; channel b: 0, 2 | 1, 1, 4 (std sqrt(3), SEM 1).
    np.testing.assert_allclose(scores.channel_evolved_mean, [[2.0, 1.0], [6.0, 2.0], [nan, nan]])
    np.testing.assert_allclose(scores.channel_evolved_sem, [[1.0, 1.0], [2 / math.sqrt(3), 1.0], [nan] * 2])
    np.testing.assert_allclose(scores.channel_reference_mean, [[2.0, 4.0], [5.0, 2.0], [nan, nan]])


def test_from_history_orders_generations_and_marks_missing_values(hand_made: Evolution) -> None:
    assert hand_made.ids[:4] == ("g0-e0", "g0-e1", "g0-e2", "g0-r0")
    np.testing.assert_array_equal(hand_made.closed, [True, True, False])
    np.testing.assert_allclose(hand_made.optimizer["sigma"], [1.0, 0.5, math.nan])
    assert math.isnan(hand_made.score[2]) and np.isnan(hand_made.responses[2]).all()
    np.testing.assert_allclose(hand_made.responses[1], [3.0, 2.0])
    assert hand_made.codes is None


def test_the_best_stimulus_of_each_generation_skips_missing_and_references(hand_made: Evolution) -> None:
    best = best_per_generation(hand_made)
    assert best.ids == ("g0-e1", "g1-e2", None)
    np.testing.assert_allclose(best.scores, [3.0, 8.0, math.nan])


def test_if_codes_are_absent_the_trajectory_analyses_say_so(hand_made: Evolution) -> None:
    with pytest.raises(CodesMissing, match="no latent codes"):
        mean_codes(hand_made)
    with pytest.raises(CodesMissing):
        trajectory_signature(hand_made)


# -- mean codes and images --------------------------------------------------------------------------------------
def test_mean_codes_average_the_evolved_codes_of_each_generation() -> None:
    centres = random_walk(5, 8, seed=1)
    evolution = Evolution.from_history(synthetic_history(centres, population=400, references=3))
    assert evolution.codes is not None and evolution.codes.shape == (5 * 403, 8)
    np.testing.assert_allclose(mean_codes(evolution), centres, atol=0.02)


def test_mean_code_images_decode_the_mean_codes_rescaled_to_the_norm() -> None:
    evolution = Evolution.from_history(synthetic_history(random_walk(4, 6, seed=2)))
    seen: list[np.ndarray] = []

    def decode(codes: np.ndarray) -> np.ndarray:
        seen.append(codes)
        return np.zeros((len(codes), 8, 8, 3), dtype=np.uint8)

    assert mean_code_images(evolution, decode, norm=10.0).shape == (4, 8, 8, 3)
    np.testing.assert_allclose(np.linalg.norm(seen[0], axis=1), 10.0)
    with pytest.raises(AnalysisError, match="uint8"):
        mean_code_images(evolution, lambda codes: np.zeros((len(codes), 8, 8, 3)).astype(object))


def test_a_montage_enlarges_64_pixel_tiles_and_writes_each_label_under_its_image() -> None:
    images = np.zeros((5, 64, 64, 3), dtype=np.uint8)
    images[:, :, :, 0] = np.arange(5)[:, None, None] * 50
    sheet = montage(images, [f"g{i}  {10 * i:.1f}" for i in range(5)], columns=3)
    assert sheet.dtype == np.uint8 and sheet.shape[1] == 3 * 128
    strip = (sheet.shape[0] - 2 * 128) // 2
    assert strip >= 16 and sheet.shape[0] == 2 * (128 + strip)
    assert (sheet[:128, 128:256, 0] == 50).all()  # the second tile, whole and at twice the size
    label = sheet[128 : 128 + strip, :128]
    assert (label < 100).any() and (label == 255).mean() > 0.5  # dark text on white
    with pytest.raises(AnalysisError):
        montage(images, ["too few labels"])


# -- the random-walk signature ------------------------------------------------------------------------------------
def test_the_random_walk_spectrum_tends_to_six_over_pi_squared_k_squared() -> None:
    k = np.arange(1, 6)
    np.testing.assert_allclose(random_walk_spectrum(2000)[:5], 6 / (np.pi**2 * k**2), rtol=1e-3)
    assert random_walk_spectrum(60).sum() == pytest.approx(1.0)


def test_a_gaussian_random_walk_has_the_random_walk_signature() -> None:
    signature = trajectory_pca(random_walk(60, 200, seed=0))
    # As d -> infinity the components are exactly the cosines; at d = 200 seeded walks give PC1 |r| >= 0.99.
    assert signature.correlation[0] > 0.95
    assert signature.random_walk_similarity > 0.85  # seeds 0..39 give 0.90..0.98
    k = np.arange(1, 4)
    # Each eigenvalue fluctuates by ~sqrt(2/d) = 10% across walks: 30% is three standard deviations.
    np.testing.assert_allclose(signature.variance_ratio[:3], 6 / (np.pi**2 * k**2), rtol=0.3)
    assert signature.projections.shape == signature.cosines.shape == (60, 4)


def test_ten_random_walks_average_to_the_theoretical_variance_spectrum() -> None:
    ratios = np.mean([trajectory_pca(random_walk(60, 200, seed=s)).variance_ratio[:4] for s in range(10)], axis=0)
    np.testing.assert_allclose(ratios, random_walk_spectrum(60)[:4], rtol=0.1)


def test_a_straight_drift_and_unrelated_points_are_not_random_walks() -> None:
    drift = trajectory_pca(straight_drift(60, 200, seed=0))
    assert drift.correlation[0] > 0.9  # a ramp looks like the half cosine: one component alone cannot tell
    assert drift.variance_ratio[0] > 0.9
    assert drift.random_walk_similarity < 0.4  # seeds 0..39 give 0.19..0.31
    noise = trajectory_pca(np.random.default_rng(0).standard_normal((60, 200)))
    assert noise.random_walk_similarity < 0.25  # seeds 0..39 give 0.02..0.10


def test_the_signature_ignores_rotation_scale_and_offset_of_the_latent_space() -> None:
    walk = random_walk(30, 40, seed=3)
    rotation, _ = np.linalg.qr(np.random.default_rng(4).standard_normal((40, 40)))
    moved = 7.0 * walk @ rotation + 3.0
    assert trajectory_pca(moved).random_walk_similarity == pytest.approx(trajectory_pca(walk).random_walk_similarity)


def test_if_there_are_too_few_generations_or_no_movement_the_pca_refuses() -> None:
    with pytest.raises(TooFewGenerations, match="at least 3"):
        trajectory_pca(random_walk(2, 10, seed=0))
    with pytest.raises(AnalysisError, match="never moved"):
        trajectory_pca(np.ones((5, 10)))


def test_the_signature_of_an_evolution_uses_its_mean_codes() -> None:
    evolution = Evolution.from_history(synthetic_history(random_walk(40, 100, seed=5), population=3))
    assert trajectory_signature(evolution).random_walk_similarity > 0.85


# -- a real history from the in-process API ----------------------------------------------------------------------
def test_from_history_holds_exactly_what_the_server_answered(api: TestClient) -> None:
    created = api.post(
        "/v1/sessions",
        json={"seed": 5, "population_size": 5, "references": {"builtin": 2}, "channels": ["a", "b"],
              "objective": {"weights": {"a": 1.0}}, "optimizer": {"name": "cholesky-cma"}},  # its summary: sigma
    ).json()  # fmt: skip
    manifest = created["generation"]
    for g in range(3):
        body = counts_for(manifest, seed=g, channels=("a", "b"))
        if g == 1:
            body["responses"] = body["responses"][1:]  # an aborted trial
        manifest = api.post(manifest["responses_url"], json=body).json()["next"]
    history = api.get(f"/v1/sessions/{created['session']['id']}/history", params={"codes": True}).json()
    evolution = Evolution.from_history(history)

    stimuli = [(g["number"], s) for g in history["generations"] for s in g["stimuli"]]
    assert evolution.id == history["session"]["id"] and evolution.channels == ("a", "b")
    assert evolution.ids == tuple(s["id"] for _, s in stimuli)
    np.testing.assert_array_equal(evolution.generation, [n for n, _ in stimuli])
    assert list(evolution.kind) == [s["kind"] for _, s in stimuli]
    np.testing.assert_array_equal(evolution.index, [s["index"] for _, s in stimuli])
    np.testing.assert_array_equal(evolution.score, [math.nan if s["score"] is None else s["score"] for _, s in stimuli])
    assert evolution.codes is not None
    np.testing.assert_array_equal(evolution.codes, [s["code"] for _, s in stimuli])
    for row, (_, s) in enumerate(stimuli):
        expected = [np.mean(s["counts"][c]) if s["counts"] else math.nan for c in ("a", "b")]
        np.testing.assert_allclose(evolution.responses[row], expected)
    np.testing.assert_array_equal(evolution.numbers, [0, 1, 2, 3])
    np.testing.assert_array_equal(evolution.closed, [True, True, True, False])
    assert int(np.isnan(evolution.score).sum()) == 1 + 7  # the aborted trial and the open generation

    # The analyses agree with the server's own per-generation summaries and best stimulus.
    closed = [g["optimizer"] for g in history["generations"][:3]]
    scores = score_trajectory(evolution)
    np.testing.assert_allclose(scores.evolved_mean[:3], [s["evolved_mean"] for s in closed])
    np.testing.assert_allclose(scores.evolved_max[:3], [s["evolved_max"] for s in closed])
    np.testing.assert_allclose(scores.reference_mean[:3], [s["reference_mean"] for s in closed])
    np.testing.assert_allclose(evolution.optimizer["sigma"][:3], [s["sigma"] for s in closed])
    assert math.isnan(evolution.optimizer["sigma"][3])
    best = best_per_generation(evolution)
    assert np.nanmax(best.scores) == history["session"]["best_score"]
    assert evolution.score[evolution.ids.index(history["session"]["best_stimulus"])] == np.nanmax(best.scores)
    assert mean_codes(evolution).shape == (4, 100)
