"""Round 11 (docs/sample_efficiency.md): metric-cma searching a metric that counts image change where the unit looks.

The pullback metric with its pixels weighted by a Gaussian window at the image centre, H = J^T W J, was tried
as the metric of metric-cma (round 6's setting otherwise: 35 directions, exponent -0.25, 50° -> 2°, mirrored,
refreshed every 5 generations), for the initial averaged basis (32 prior codes, seed 0, as the shipped metric)
and for every refresh. The code that did this inside evostim was taken out again (it did not beat round 6's
setting on the tuning units), so this script builds it from evostim's parts and steps the runs with the sweep
engine (``evolve``): same seeds, noise streams and calibration as the sweep folder it reads.

    cd benchmarks/results/sample_efficiency/round11_window
    python window_probe.py run OUT.json SIGMA ALPHA [--whole-start] UNIT...
    python window_probe.py summary window_0.125.json ...

SIGMA: the window's standard deviation in pixels of the 64x64 image; ALPHA: the share of the whole-image
metric mixed in (each part normalized by its trace); --whole-start: the first generations, until the first
refresh, search the whole-image metric's basis (the window only from the first refresh on). Runs: seeds 0 and 1,
noise 0 and Poisson, fp32, 75 generations of 40, codes on the prior's sphere. ``summary`` compares the saved
runs with the sweep folder's cholesky-cma and round 6's runs on the same pairings (``tuning_fp32/``).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from evostim.clients.sweeps.engine import RunSpec, evolve
from evostim.clients.sweeps.panels import CnnPanel
from evostim.clients.sweeps.sweep import read_results
from evostim.generators import generator_spec, load_generator

ROOT = Path(__file__).resolve().parents[4]
FOLDER = ROOT / "benchmarks/results/sample_efficiency/tuning_fp32"
ROUND6 = "metric-cma:angle_end=2:mirrored=true:refresh_every=5"


def windowed_metric(
    module: torch.nn.Module, sigma: float, alpha: float
) -> Callable[[np.ndarray, float | None], np.ndarray]:
    """code -> the probe's metric there (what metric-cma's refresh asks for; its own window argument is unused)."""
    offsets = np.arange(64) - 31.5
    window = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma**2))
    weights = torch.as_tensor(np.tile(window.reshape(-1), 3))

    def metric(code: np.ndarray, _window: float | None = None) -> np.ndarray:
        z = torch.as_tensor(np.asarray(code), dtype=torch.float32)
        jacobian = torch.func.jacfwd(lambda c: module(c[None]).reshape(-1))(z).detach().double()
        whole = (jacobian.T @ jacobian).numpy()
        centre = (jacobian.T @ (weights[:, None] * jacobian)).numpy()
        return np.asarray(alpha * whole / np.trace(whole) + (1 - alpha) * centre / np.trace(centre))

    return metric


def run(out: str, sigma: float, alpha: float, units: list[str], whole_start: bool = False) -> None:
    """``whole_start``: the first generations (until the first refresh) search the whole-image metric's basis."""
    torch.set_num_threads(1)
    module = load_generator("dcgan-faces", "cpu").module
    metric = windowed_metric(module, sigma, alpha)
    start = windowed_metric(module, sigma, 1.0) if whole_start else metric
    codes = generator_spec("dcgan-faces").sample_prior(np.random.default_rng(0), 32)
    averaged = np.zeros((len(codes[0]), len(codes[0])))
    for code in codes:  # summed in order, as the runs saved here were made
        averaged = averaged + start(code, None)
    values, vectors = np.linalg.eigh(averaged / len(codes))
    order = np.argsort(values)[::-1][:35]
    panel = CnnPanel(units, precision="fp32")
    panel.host = dataclasses.replace(panel.host, metric_at=metric)  # every refresh: the windowed metric at the mean
    params = {"basis": vectors[:, order].T, "eigenvalues": values[order], "angle_end": 2.0, "mirrored": True,
              "refresh_every": 5}  # fmt: skip
    specs = [RunSpec(optimizer="metric-cma", unit=unit, noise=noise, seed=seed, generations=75, params=params,
                     code_norm_constraint=True)
             for unit in units for noise in ("0", "poisson") for seed in (0, 1)]  # fmt: skip
    gains = {unit: gain for unit, (_, gain) in json.loads((FOLDER / "calibration.json").read_text())["units"].items()}
    results = evolve(panel, specs, gains)
    rows = [{"unit": r.spec.unit, "noise": r.spec.noise, "seed": r.spec.seed, "best_clean": r.best_clean}
            for r in results]  # fmt: skip
    Path(out).write_text(json.dumps(rows))


def summary(files: list[str]) -> None:
    runs, generations = read_results(FOLDER)
    curve_of: dict[str, list[tuple[int, float]]] = {}
    for row in generations:
        curve_of.setdefault(row["key"], []).append((row["generation"], row["best_clean"]))
    curves: dict[str, dict[tuple[str, str, int], np.ndarray]] = {}
    for run in runs:
        if run["optimizer"] in ("cholesky-cma", ROUND6):
            curve = np.array([value for _, value in sorted(curve_of[run["key"]])])
            curves.setdefault(run["optimizer"], {})[(run["unit"], run["noise"], run["seed"])] = curve
    for name in files:
        rows = json.loads((Path(__file__).parent / name).read_text())
        curves[name] = {(r["unit"], r["noise"], r["seed"]): np.array(r["best_clean"]) for r in rows}
    pairings = sorted(set.intersection(*(set(c) for c in curves.values())))
    best: dict[str, float] = {}
    for by_pairing in curves.values():
        for (unit, _, _), curve in by_pairing.items():
            best[unit] = max(best.get(unit, -np.inf), float(curve.max()))
    print(f"{len(pairings)} pairings; ratio: where the mean curve reaches cholesky-cma's mean final value / 75")
    for name, by_pairing in curves.items():
        cells = []
        for noise in ("0", "poisson", None):
            chosen = [p for p in pairings if noise is None or p[1] == noise]
            mine = np.mean([by_pairing[p] / best[p[0]] for p in chosen], axis=0)
            target = np.mean([curves["cholesky-cma"][p][-1] / best[p[0]] for p in chosen])
            reached = np.flatnonzero(mine >= target - 1e-12)
            ratio = (reached[0] + 1) / len(mine) if len(reached) else np.inf
            cells.append(f"{noise or 'pooled'} {ratio:.2f} (value at 3,000 {mine[-1]:.3f})")
        print(f"{name}: " + "; ".join(cells))


if __name__ == "__main__":
    if sys.argv[1] == "run":
        whole_start = "--whole-start" in sys.argv
        units = [a for a in sys.argv[5:] if a != "--whole-start"]
        run(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), units, whole_start)
    else:
        summary(sys.argv[2:])
