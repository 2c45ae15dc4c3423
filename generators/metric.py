"""The generator's metric: which latent directions change the image, and which barely do.

H(z) = J(z)^T J(z), the pullback of the pixel L2 distance through the generator G (J = dG/dz), averaged over
sample codes. With a ``window`` the pixels are weighted by a Gaussian at the image centre (standard deviation
``window`` x the image side), H = J^T W J: the image change where a lab centres its images, on the neuron's
receptive field, rather than over the whole frame.

Its top eigenvectors are the directions that matter; most of the spectrum is near zero (a large
null space), and searching only the top-k eigen-directions is much more efficient (Wang & Ponce, ICLR 2021).

H is never formed from a dense Jacobian at scale: H v = J^T (J v) is one Jacobian-vector product and one
vector-Jacobian product (torch.func), and the top eigenpairs come from Lanczos (scipy's ARPACK eigsh) on that
operator. For small latent spaces ``dense_metric`` builds H exactly (used by the tests and the spectrum report).

scipy comes with the ``metric`` extra and is imported only for Lanczos: loading a saved basis
(``MetricBasis.load``, what a ``subspace`` session does) needs numpy alone.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from evostim.extras import require

__all__ = [
    "DENSE_METRIC_DIMENSIONS",
    "MetricBasis",
    "dense_metric",
    "metric_at_code",
    "metric_eigenbasis",
    "metric_vector_product",
    "packaged_metric",
    "pixel_window",
    "prior_metric",
    "spectrum_coverage",
    "with_saved_metric",
]

# torch's forward-mode AD loads its JVP decompositions through torch.jit.script at its first use, which warns that
# torch.jit.script is deprecated: torch's own call, nothing a user can act on, and it otherwise lands in the server's
# log at every start (pyproject's pytest settings ignore it likewise).
warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning, module="torch")

FloatArray = NDArray[np.float64]
DENSE_METRIC_DIMENSIONS = 512  # up to here the metric is built exactly from full Jacobians (seconds); above, Lanczos


@dataclass(frozen=True)
class MetricBasis:
    """Top eigenvectors (rows, orthonormal) and eigenvalues of the averaged metric, largest first."""

    generator: str
    basis: FloatArray  # (k, d)
    eigenvalues: FloatArray  # (k,)
    trace: float  # of the averaged metric (exact or estimated), to say what share the top-k hold
    samples: int
    window: float | None = None  # the pixel window it was computed with (None: every pixel alike)

    def save(self, path: Path) -> None:
        np.savez(
            path,
            generator=self.generator,
            basis=self.basis,
            eigenvalues=self.eigenvalues,
            trace=self.trace,
            samples=self.samples,
            window=np.nan if self.window is None else self.window,
        )

    @classmethod
    def load(cls, path: Path) -> MetricBasis:
        with np.load(path) as data:
            return cls(
                generator=str(data["generator"]),
                basis=np.asarray(data["basis"], dtype=np.float64),
                eigenvalues=np.asarray(data["eigenvalues"], dtype=np.float64),
                trace=float(data["trace"]),
                samples=int(data["samples"]),
                window=_saved_window(data),
            )


def _saved_window(data: Any) -> float | None:
    """A file's window; files saved before windows existed hold none (every pixel alike)."""
    if "window" not in data.files or np.isnan(data["window"]):
        return None
    return float(data["window"])


def pixel_window(height: int, width: int, window: float) -> torch.Tensor:
    """Pixel weights (height, width), 1 at the centre: a Gaussian whose standard deviation is ``window`` x each side."""
    rows = (torch.arange(height, dtype=torch.float64) - (height - 1) / 2) / (window * height)
    columns = (torch.arange(width, dtype=torch.float64) - (width - 1) / 2) / (window * width)
    return torch.exp(-0.5 * (rows[:, None] ** 2 + columns[None, :] ** 2))


# torch's forward-mode AD levels (jvp, jacfwd) are global to the process: two threads inside at once corrupt each
# other's tangents, with a RuntimeError or with wrong numbers (a server refreshes many sessions' metrics at once).
_FORWARD_AD = threading.Lock()


def _flat_images(module: nn.Module, window: float | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """codes -> flattened images, weighted by the square root of the window's weights (so J^T J = J^T W J)."""
    if window is None:
        return lambda codes: module(codes).reshape(codes.shape[0], -1)

    def weighted(codes: torch.Tensor) -> torch.Tensor:
        images: torch.Tensor = module(codes)
        weights = pixel_window(images.shape[-2], images.shape[-1], window).sqrt().to(images.dtype)
        return (images * weights.to(images.device)).reshape(codes.shape[0], -1)

    return weighted


def metric_vector_product(
    module: nn.Module, codes: torch.Tensor, window: float | None = None
) -> Callable[[FloatArray], FloatArray]:
    """v -> (1/N) sum_i J(z_i)^T W J(z_i) v for the N codes (N, d); one JVP and one VJP per product."""
    decode = _flat_images(module, window)

    def product(vector: FloatArray) -> FloatArray:
        tangent = torch.as_tensor(vector, dtype=codes.dtype, device=codes.device).expand_as(codes).contiguous()
        with _FORWARD_AD:
            jv = torch.func.jvp(decode, (codes,), (tangent,))[1]
        pullback = torch.func.vjp(decode, codes)[1]
        (jtjv,) = pullback(jv)
        return np.asarray(jtjv.detach().sum(0).double().cpu().numpy() / len(codes), dtype=np.float64)

    return product


def dense_metric(module: nn.Module, codes: torch.Tensor, window: float | None = None) -> FloatArray:
    """The averaged metric (d, d) from full Jacobians: for small d only (d JVPs per code)."""
    decode = _flat_images(module, window)
    total = np.zeros((codes.shape[1], codes.shape[1]))
    for code in codes:
        with _FORWARD_AD:
            jacobian = torch.func.jacfwd(lambda z: decode(z[None])[0])(code)  # (pixels, d)
        jacobian64 = jacobian.detach().double().cpu()
        total += (jacobian64.T @ jacobian64).numpy()
    return total / len(codes)


def metric_at_code(module: nn.Module) -> Callable[[FloatArray, float | None], FloatArray]:
    """(code (d,), window) -> the metric (d, d) at that one code, exact, in fp32 on the CPU (a copy of the module if
    it is on a GPU, whose convolution algorithms need not give the same numbers twice: a replayed session must).
    The copy is made at the first call, so a host that never needs the metric never pays for it."""

    @functools.cache
    def on_cpu() -> nn.Module:
        return module if all(p.device.type == "cpu" for p in module.parameters()) else copy.deepcopy(module).cpu()

    def metric(code: FloatArray, window: float | None = None) -> FloatArray:
        return dense_metric(on_cpu(), torch.as_tensor(np.asarray(code), dtype=torch.float32)[None], window)

    return metric


def metric_eigenbasis(
    module: nn.Module,
    codes: torch.Tensor,
    top: int,
    *,
    generator: str,
    dense_below: int = DENSE_METRIC_DIMENSIONS,
    seed: int = 0,
    window: float | None = None,
) -> MetricBasis:
    """Top-``top`` eigenpairs of the metric averaged over ``codes``; exact below ``dense_below`` dimensions."""
    dim = codes.shape[1]
    if not 1 <= top <= dim:
        raise ValueError(f"top must be in 1..{dim}, got {top}")
    if window is not None and not window > 0:
        raise ValueError(f"window must be a positive fraction of the image side, got {window}")
    if dim <= dense_below:
        metric = dense_metric(module, codes, window)
        values, vectors = np.linalg.eigh(metric)
        order = np.argsort(values)[::-1][:top]
        basis, trace = vectors[:, order].T.copy(), float(np.trace(metric))
        return MetricBasis(generator, basis, values[order], trace, len(codes), window)
    return _lanczos_eigenbasis(module, codes, top, generator=generator, seed=seed, window=window)


def _lanczos_eigenbasis(
    module: nn.Module, codes: torch.Tensor, top: int, *, generator: str, seed: int, window: float | None
) -> MetricBasis:
    linalg = require("scipy.sparse.linalg", extra="metric", feature="the metric's Lanczos eigensolver")
    dim = codes.shape[1]
    product = metric_vector_product(module, codes, window)
    operator = linalg.LinearOperator((dim, dim), matvec=product, dtype=np.float64)
    start = np.random.default_rng(seed).standard_normal(dim)
    values, vectors = linalg.eigsh(operator, k=top, which="LA", v0=start)  # Lanczos (implicitly restarted)
    order = np.argsort(values)[::-1]
    # Hutchinson's estimate of the trace: E[v^T H v] for Rademacher v.
    probes = np.random.default_rng(seed + 1).choice([-1.0, 1.0], size=(16, dim))
    trace = float(np.mean([probe @ product(probe) for probe in probes]))
    return MetricBasis(generator, vectors[:, order].T.copy(), values[order], trace, len(codes), window)


def packaged_metric(name: str) -> MetricBasis | None:
    """The metric of generator ``name`` that ships with evostim (``generators/metrics/<name>.metric.npz``: made by
    ``prior_metric(name)``, for generators whose weights ship in a package), or None."""
    resource = importlib.resources.files("evostim.generators").joinpath("metrics", f"{name}.metric.npz")
    if not resource.is_file():
        return None
    with importlib.resources.as_file(resource) as path:
        return MetricBasis.load(path)


def prior_metric(
    name: str,
    *,
    samples: int = 32,
    top: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    weights_dir: Path | None = None,
    window: float | None = None,
) -> MetricBasis:
    """The metric of registered generator ``name`` averaged over ``samples`` codes drawn from its prior: its top
    ``top`` eigenpairs (default: all of them), what ``evostim metric`` saves; ``window``: see the module's doc."""
    from evostim.generators import generator_spec, load_generator

    spec = generator_spec(name)
    generator = load_generator(spec.name, device, weights_dir)
    codes = torch.as_tensor(spec.sample_prior(np.random.default_rng(seed), samples)).float().to(generator.device)
    top = top or spec.latent_dim
    return metric_eigenbasis(generator.module, codes, top, generator=spec.name, seed=seed, window=window)


def with_saved_metric(params: dict[str, Any], metric: MetricBasis, parameters: list[str]) -> dict[str, Any]:
    """An optimizer's ``params`` with a saved metric filled in: its basis, and its eigenvalues and pixel window when
    the optimizer takes them (``parameters``: its parameter names) and they were not given."""
    filled = {**params, "basis": metric.basis}
    if "eigenvalues" in parameters and filled.get("eigenvalues") is None:
        filled["eigenvalues"] = metric.eigenvalues
    if "window" in parameters and filled.get("window") is None:
        filled["window"] = metric.window
    return filled


def spectrum_coverage(eigenvalues: FloatArray, trace: float, shares: tuple[float, ...] = (0.9, 0.99)) -> list[int]:
    """For each share, how many top eigen-directions hold that share of the trace (len+1 if they don't)."""
    cumulative = np.cumsum(np.sort(eigenvalues)[::-1]) / trace
    return [int(np.searchsorted(cumulative, share) + 1) for share in shares]
