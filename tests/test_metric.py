"""The generator metric: J^T J products without a dense Jacobian, Lanczos eigenpairs, bases used by sessions."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from evostim.cli import main as evostim
from evostim.extras import MissingExtra
from evostim.generators.metric import (
    MetricBasis,
    dense_metric,
    metric_at_code,
    metric_eigenbasis,
    metric_vector_product,
    packaged_metric,
    pixel_window,
    prior_metric,
    spectrum_coverage,
    with_saved_metric,
)
from tests.test_api import assert_problem, create


class TinyGenerator(nn.Module):
    """12-d codes -> (3, 4, 4) images: small enough for an exact Jacobian."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(12, 32), nn.Tanh(), nn.Linear(32, 48), nn.Sigmoid())

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        images: torch.Tensor = self.net(codes).reshape(-1, 3, 4, 4)
        return images


def explicit_metric(module: nn.Module, codes: torch.Tensor) -> np.ndarray:
    """sum_i J_i^T J_i / N with J from torch.autograd.functional.jacobian (an independent route)."""
    total = np.zeros((codes.shape[1], codes.shape[1]))
    for code in codes:
        jacobian = (
            torch.autograd.functional.jacobian(  # type: ignore[no-untyped-call]  # torch leaves it untyped
                lambda z: module(z[None]).reshape(-1), code
            )
            .double()
            .numpy()
        )
        total += jacobian.T @ jacobian
    return total / len(codes)


def test_metric_vector_products_match_the_explicit_jacobian() -> None:
    module, codes = TinyGenerator().double(), torch.randn(5, 12, dtype=torch.float64)
    metric = explicit_metric(module, codes)
    np.testing.assert_allclose(dense_metric(module, codes), metric, rtol=1e-10, atol=1e-12)
    vector = np.random.default_rng(0).standard_normal(12)
    np.testing.assert_allclose(metric_vector_product(module, codes)(vector), metric @ vector, rtol=1e-10)


def test_a_windowed_metric_weights_each_pixel_by_a_gaussian_at_the_image_centre() -> None:
    weights = pixel_window(4, 4, 0.25).numpy()  # standard deviation: one pixel of four
    np.testing.assert_allclose(weights, weights.T)  # round, and centred between the middle pixels
    np.testing.assert_allclose(weights[1, 1], np.exp(-0.5 * (0.5**2 + 0.5**2)))
    np.testing.assert_allclose(weights[0, 1] / weights[1, 1], np.exp(-0.5 * (1.5**2 - 0.5**2)))
    module, codes = TinyGenerator().double(), torch.randn(3, 12, dtype=torch.float64)
    pixels = np.tile(weights.reshape(-1), 3)  # the same weight in each colour channel
    jacobians = [
        torch.autograd.functional.jacobian(lambda z: module(z[None]).reshape(-1), code).numpy()  # type: ignore[no-untyped-call]
        for code in codes
    ]
    expected = sum(j.T @ (pixels[:, None] * j) for j in jacobians) / len(codes)  # J^T W J, averaged
    np.testing.assert_allclose(dense_metric(module, codes, window=0.25), expected, rtol=1e-10, atol=1e-12)
    product = metric_vector_product(module, codes, window=0.25)
    vector = np.random.default_rng(1).standard_normal(12)
    np.testing.assert_allclose(product(vector), expected @ vector, rtol=1e-10, atol=1e-12)
    at_code = metric_at_code(TinyGenerator())  # what a session or a sweep gives metric-cma: fp32, one code
    np.testing.assert_allclose(at_code(codes[0].numpy(), 0.25), expected_at(codes[0], pixels), rtol=1e-4, atol=1e-6)
    assert not np.allclose(at_code(codes[0].numpy(), None), at_code(codes[0].numpy(), 0.25))


def expected_at(code: torch.Tensor, pixels: np.ndarray) -> np.ndarray:
    module = TinyGenerator().double()
    jacobian = torch.autograd.functional.jacobian(lambda z: module(z[None]).reshape(-1), code)  # type: ignore[no-untyped-call]
    return np.asarray(jacobian.numpy().T @ (pixels[:, None] * jacobian.numpy()))


def test_a_metric_file_keeps_its_window_and_gives_it_to_an_optimizer_that_takes_one(tmp_path: Path) -> None:
    module, codes = TinyGenerator().double(), torch.randn(4, 12, dtype=torch.float64)
    windowed = metric_eigenbasis(module, codes, 6, generator="tiny", window=0.2)
    windowed.save(tmp_path / "windowed.npz")
    loaded = MetricBasis.load(tmp_path / "windowed.npz")
    assert loaded.window == 0.2
    np.testing.assert_array_equal(loaded.basis, windowed.basis)
    assert with_saved_metric({}, loaded, ["basis", "eigenvalues", "window"])["window"] == 0.2
    assert with_saved_metric({"window": 0.5}, loaded, ["basis", "eigenvalues", "window"])["window"] == 0.5  # told
    assert "window" not in with_saved_metric({}, loaded, ["basis"])  # subspace takes no window
    plain = metric_eigenbasis(module, codes, 6, generator="tiny")
    np.savez(tmp_path / "old.npz", generator="tiny", basis=plain.basis, eigenvalues=plain.eigenvalues, trace=1.0,
             samples=4)  # fmt: skip  # a file saved before windows existed
    assert MetricBasis.load(tmp_path / "old.npz").window is None
    assert packaged_metric("dcgan-faces") is not None and packaged_metric("dcgan-faces").window is None  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="window must be a positive fraction"):
        metric_eigenbasis(module, codes, 6, generator="tiny", window=0.0)


def test_lanczos_finds_the_top_eigenpairs_with_orthonormal_vectors() -> None:
    module, codes = TinyGenerator().double(), torch.randn(5, 12, dtype=torch.float64)
    values, vectors = np.linalg.eigh(explicit_metric(module, codes))
    lanczos = metric_eigenbasis(module, codes, 4, generator="tiny", dense_below=0)
    np.testing.assert_allclose(lanczos.eigenvalues, values[::-1][:4], rtol=1e-8)
    np.testing.assert_allclose(lanczos.basis @ lanczos.basis.T, np.eye(4), atol=1e-10)
    overlaps = np.abs(lanczos.basis @ vectors[:, ::-1][:, :4])  # same directions up to sign
    np.testing.assert_allclose(np.diag(overlaps), 1.0, atol=1e-6)
    exact = metric_eigenbasis(module, codes, 4, generator="tiny")
    np.testing.assert_allclose(exact.eigenvalues, lanczos.eigenvalues, rtol=1e-8)
    assert exact.trace == pytest.approx(np.trace(explicit_metric(module, codes)))


def test_spectrum_coverage_counts_the_directions_that_hold_a_share_of_the_trace() -> None:
    assert spectrum_coverage(np.array([8.0, 1.0, 0.5, 0.5]), 10.0, (0.8, 0.9, 0.99)) == [1, 2, 4]


def test_the_metric_command_saves_a_basis_that_a_subspace_session_uses_by_name(
    tmp_path: Path, make_api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    evostim(["metric", "--samples", "2", "--top", "12", "--device", "cpu", "--weights-dir", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "dcgan-faces: metric over 2 codes; top 12 of 100 directions hold" in printed
    saved = MetricBasis.load(tmp_path / "dcgan-faces.metric.npz")
    assert saved.basis.shape == (12, 100) and np.all(np.diff(saved.eigenvalues) <= 0)
    np.testing.assert_allclose(saved.basis @ saved.basis.T, np.eye(12), atol=1e-8)

    api = make_api(weights_dir=tmp_path)
    optimizer = {"name": "subspace", "params": {"basis": "dcgan-faces.metric", "dimensions": 5}}
    created = create(api, optimizer=optimizer, population_size=6, references={"builtin": 0})
    codes = np.array([s["code"] for s in api.get(f"/v1/sessions/{created['session']['id']}/history?codes=true").json()
                      ["generations"][0]["stimuli"]])  # fmt: skip
    top5 = saved.basis[:5]
    directions = codes / np.linalg.norm(codes, axis=1, keepdims=True)  # norm projection keeps the span
    np.testing.assert_allclose(directions - directions @ top5.T @ top5, 0.0, atol=1e-6)

    evostim(["metric", "--samples", "2", "--top", "12", "--device", "cpu", "--weights-dir", str(tmp_path),
             "--window", "0.2", "--out", str(tmp_path / "centre.metric.npz")])  # fmt: skip
    assert MetricBasis.load(tmp_path / "centre.metric.npz").window == 0.2
    centre = create(api, optimizer={"name": "metric-cma", "params": {"basis": "centre.metric"}}, population_size=6)
    assert centre["session"]["config"]["optimizer"]["params"]["basis"] == "centre.metric"  # by name; it refreshes
    live, _ = api.app.state.service._stepper._cache[centre["session"]["id"]]  # the session's optimizer
    assert live._window == 0.2  # the file's window (not the sessions' default): refreshes weigh pixels as it did
    with pytest.raises(SystemExit, match="window must be a positive fraction"):
        evostim(["metric", "--samples", "2", "--window", "0", "--weights-dir", str(tmp_path)])
    assert_problem(api.post("/v1/sessions", json={"optimizer": {"name": "subspace", "params": {"basis": "nope"}}}),
                   422, "evostim metric")  # fmt: skip
    MetricBasis("deepsim-fc6", saved.basis, saved.eigenvalues, 1.0, 1).save(tmp_path / "other.npz")
    assert_problem(api.post("/v1/sessions", json={"optimizer": {"name": "subspace", "params": {"basis": "other"}}}),
                   422, "deepsim-fc6")  # fmt: skip


def test_without_scipy_the_metric_command_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy", None)  # import scipy now fails, as where it is not installed
    with pytest.raises(SystemExit) as exited:
        evostim(["metric", "--samples", "2", "--top", "4", "--device", "cpu"])
    message = str(exited.value.code)
    assert "pip install 'evostim[metric]'" in message and "\n" not in message


def test_without_scipy_a_saved_basis_still_serves_a_subspace_session(
    tmp_path: Path, make_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    basis = np.linalg.qr(np.random.default_rng(0).standard_normal((100, 6)))[0].T
    MetricBasis("dcgan-faces", basis, np.arange(6.0)[::-1], 10.0, 2).save(tmp_path / "saved.npz")
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.sparse.linalg", None)
    api = make_api(weights_dir=tmp_path)
    optimizer = {"name": "subspace", "params": {"basis": "saved", "dimensions": 4}}
    create(api, optimizer=optimizer, population_size=6, references={"builtin": 0})
    with pytest.raises(MissingExtra, match=r"evostim\[metric\]"):  # Lanczos is what needs it
        metric_eigenbasis(TinyGenerator(), torch.randn(2, 12), 3, generator="tiny", dense_below=0)


def test_a_metric_cma_session_without_a_basis_searches_along_the_metric_that_ships_with_evostim(
    tmp_path: Path, make_api: Any
) -> None:
    api = make_api(weights_dir=tmp_path)
    created = create(api, optimizer={"name": "metric-cma"}, population_size=6, references={"builtin": 0})
    shipped = packaged_metric("dcgan-faces")
    assert shipped is not None and shipped.basis.shape == (100, 100) and not list(tmp_path.glob("*.metric.npz"))
    session = created["session"]["id"]
    settings = api.get(f"/v1/sessions/{session}").json()["config"]["optimizer"]["params"]
    assert settings["inner"] == "sphere-cma" and settings["exponent"] == -0.25  # its defaults, and its metric by
    assert settings["basis"] == "dcgan-faces.metric" and settings["dimensions"] == 20  # name: the config stays small
    codes = np.array([s["code"] for s in api.get(f"/v1/sessions/{session}/history?codes=true").json()
                      ["generations"][0]["stimuli"]])  # fmt: skip
    np.testing.assert_allclose(np.linalg.norm(codes, axis=1), 10.0)  # on the prior's sphere
    top = shipped.basis[:20]
    np.testing.assert_allclose(codes - codes @ top.T @ top, 0.0, atol=1e-6)  # in the top 20 directions (round 47)


def test_the_shipped_metric_is_what_evostim_metric_computes_today(tmp_path: Path) -> None:
    """A stale file (another version of the weights, or of the metric code) would silently search the wrong space."""
    shipped = packaged_metric("dcgan-faces")
    assert shipped is not None
    fresh = prior_metric("dcgan-faces", samples=shipped.samples)
    # rtol 1e-4: CPUs' vector widths change the float sums (1.9e-5 between the machine that made it and another);
    # other weights or metric code change them by far more
    np.testing.assert_allclose(fresh.eigenvalues, shipped.eigenvalues, rtol=1e-4)
    np.testing.assert_allclose(np.abs(np.sum(fresh.basis[:35] * shipped.basis[:35], axis=1)), 1.0, atol=1e-4)


def test_without_a_shipped_metric_a_metric_cma_session_computes_it_once_and_keeps_it(
    tmp_path: Path, make_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("evostim.generators.metric_lookup.packaged_metric", lambda name: None)
    api = make_api(weights_dir=tmp_path)
    create(api, optimizer={"name": "metric-cma"}, population_size=6, references={"builtin": 0})
    saved = MetricBasis.load(tmp_path / "dcgan-faces.metric.npz")  # computed by the first session, exactly
    assert saved.basis.shape == (100, 100) and saved.samples == 32 and not list(tmp_path.glob(".*partial*"))
    modified = (tmp_path / "dcgan-faces.metric.npz").stat().st_mtime_ns
    create(api, optimizer={"name": "metric-cma"}, population_size=6, references={"builtin": 0})
    assert (tmp_path / "dcgan-faces.metric.npz").stat().st_mtime_ns == modified  # read, not computed again


def test_metrics_computed_at_once_in_several_threads_are_each_exact(dcgan: Any) -> None:
    """A server refreshes many sessions' metrics at once; torch's forward-mode AD levels are global to the process."""
    metric = metric_at_code(dcgan.module)
    codes = np.random.default_rng(0).standard_normal((6, 100)).astype(np.float32)
    alone = [metric(code, 0.125) for code in codes]
    together: dict[int, Any] = {}

    def compute(row: int) -> None:
        try:
            together[row] = metric(codes[row], 0.125)
        except RuntimeError as error:  # without the lock: "a forward AD level with an invalid index"
            together[row] = error

    threads = [threading.Thread(target=compute, args=(row,)) for row in range(len(codes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for row, expected in enumerate(alone):
        assert isinstance(together[row], np.ndarray), together[row]
        np.testing.assert_array_equal(together[row], expected)
