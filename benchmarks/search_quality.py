"""Search quality: which optimizer evolves the strongest stimuli, on an in-silico panel of units.

Defined like the field's benchmark (Wang & Ponce, GECCO 2022): 75 generations x 40 = 3,000 evaluations
per run; units from several layers of the shipped CNNs (MTCNN ONet/RNet) seen through the embedded
generator (dcgan-faces); noise score = activation * max(0, 1 + sigma * N(0, 1)) for sigma in {0, 0.2, 0.5},
and a Poisson spike-count model (baseline 2, the 99th percentile of random images -> 20 spikes). A
second panel of 4,096-d synthetic units (smooth bumps in a random low-dimensional projection; every
other direction irrelevant, as in fc6) measures high-dimensional behaviour without fc6 weights.

The reported value of a run is the *clean* activation of its best image (the one with the highest
observed score; the best noisy score itself flatters an optimizer), normalized two ways:
(a) by the best clean activation of any image any run proposed on that unit (the paper's metric) and
(b) by the unit's maximum over 10,000 random prior codes. Every run of every optimizer goes through one
batched evaluation per generation, so all see the same generator and CNN.

Outside references in the same run: pycma (full CMA-ES), cmaes (full CMA; SepCMA at 4,096 d, where its
eigendecomposition takes seconds per step) and nevergrad's NGOpt.
Writes per-run and per-generation CSVs and a PNG; the last line is
`default NAME vs ga: mean normalized score A vs B (ratio R, 95% CI lo..hi)`.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evostim import optimizers
from evostim.clients.mtcnn import load_mtcnn
from evostim.clients.neurons import UnitSpec
from evostim.generators import generator_spec, load_generator
from evostim.optimizers.recombination import published_cma_sigma
from evostim.server.stimuli import project_to_sphere

FloatArray = np.ndarray

POPULATION = 40
NOISE_LEVELS = ("0", "0.2", "0.5", "poisson")
EVOSTIM = ("cholesky-cma", "sphere-cma", "sep-cma", "ga")
OUTSIDE = ("pycma", "cmaes", "ngopt")
# 24 units over 7 layers of the two shipped CNNs (channels picked to spread over each layer).
CNN_UNITS = (
    "onet.conv2.52", "onet.conv2.7", "onet.conv2.30",
    "onet.conv3.9", "onet.conv3.21", "onet.conv3.40", "onet.conv3.55",
    "onet.conv4.113", "onet.conv4.17", "onet.conv4.64", "onet.conv4.90",
    "onet.dense5.135", "onet.dense5.40", "onet.dense5.77", "onet.dense5.200",
    "rnet.conv2.11", "rnet.conv2.30",
    "rnet.conv3.18", "rnet.conv3.5", "rnet.conv3.44",
    "rnet.dense4.3", "rnet.dense4.60", "rnet.dense4.99", "rnet.dense4.120",
)  # fmt: skip


# -- problems: batched clean activations of many units ---------------------------------------------
class CnnPanel:
    """Units of the shipped CNNs seen through the embedded generator; one decode for all runs."""

    def __init__(self, units: Sequence[str], generator: str = "dcgan-faces") -> None:
        self.units = [UnitSpec.parse(u) for u in units]
        self.names = list(units)
        spec = generator_spec(generator)
        self.dim, self.code_norm = spec.latent_dim, spec.typical_norm
        self._generator = load_generator(generator, "cpu")
        self._networks = {net: load_mtcnn(net) for net in {u.net for u in self.units}}

    def activations(self, unit_of_row: FloatArray, codes: FloatArray, chunk: int = 2000) -> FloatArray:
        """Clean activation of unit ``unit_of_row[i]`` on the image of ``codes[i]``."""
        out = np.empty(len(codes))
        for start in range(0, len(codes), chunk):
            rows = slice(start, start + chunk)
            images = self._generator.decode(codes[rows])
            units = unit_of_row[rows]
            for net, network in self._networks.items():
                mine = np.flatnonzero([self.units[u].net == net for u in units])
                if len(mine) == 0:
                    continue
                with torch.inference_mode():
                    layers = network(images[mine])
                for unit in np.unique(units[mine]):
                    spec = self.units[unit]
                    of_unit = units[mine] == unit
                    values = layers[spec.layer][torch.from_numpy(of_unit), spec.channel]
                    if values.ndim == 3:  # a convolutional map: its centre
                        values = values[:, values.shape[1] // 2, values.shape[2] // 2]
                    out[start + mine[of_unit]] = values.double().numpy()
        return out

    def activation_matrix(self, codes: FloatArray, chunk: int = 1000) -> FloatArray:
        """Clean activations (n, units) of every unit on every code's image (one decode per image)."""
        out = np.empty((len(codes), len(self.units)))
        for start in range(0, len(codes), chunk):
            images = self._generator.decode(codes[start : start + chunk])
            with torch.inference_mode():
                layers = {net: network(images) for net, network in self._networks.items()}
            for index, spec in enumerate(self.units):
                values = layers[spec.net][spec.layer][:, spec.channel]
                if values.ndim == 3:
                    values = values[:, values.shape[1] // 2, values.shape[2] // 2]
                out[start : start + chunk, index] = values.double().numpy()
        return out

    def random_codes(self, count: int, seed: int) -> FloatArray:
        return np.random.default_rng(seed).standard_normal((count, self.dim)) * (self.code_norm / math.sqrt(self.dim))


class SyntheticPanel:
    """4,096-d units with fc6's code scale: a Gaussian bump in a random k-d projection (k in 8..32)."""

    def __init__(self, count: int, seed: int = 0, dim: int = 4096, code_norm: float = 300.0) -> None:
        self.dim, self.code_norm = dim, code_norm
        scale = code_norm / math.sqrt(dim)  # per-coordinate spread of prior codes
        rng = np.random.default_rng(seed)
        self.names, self._projections, self._centers, self._radii = [], [], [], []
        for index in range(count):
            k = (8, 16, 32)[index % 3]
            self.names.append(f"bump{index}.k{k}")
            self._projections.append(np.linalg.qr(rng.standard_normal((dim, k)))[0])
            self._centers.append(rng.standard_normal(k) * 2 * scale)
            self._radii.append(math.sqrt(k) * scale)

    def activations(self, unit_of_row: FloatArray, codes: FloatArray) -> FloatArray:
        out = np.empty(len(codes))
        for unit in np.unique(unit_of_row):
            rows = unit_of_row == unit
            offset = codes[rows] @ self._projections[unit] - self._centers[unit]
            out[rows] = np.exp(-0.5 * np.sum(offset**2, axis=1) / self._radii[unit] ** 2)
        return out

    def activation_matrix(self, codes: FloatArray) -> FloatArray:
        return np.stack([self.activations(np.full(len(codes), u), codes) for u in range(len(self.names))], axis=1)

    def random_codes(self, count: int, seed: int) -> FloatArray:
        return np.random.default_rng(seed).standard_normal((count, self.dim)) * (self.code_norm / math.sqrt(self.dim))


# -- optimizers behind one ask/tell shape -------------------------------------------------------------
class NevergradNGOpt:
    """nevergrad's NGOpt (it picks its algorithm from dimension, budget and workers)."""

    name = "ngopt"

    def __init__(self, dim: int, seed: int, sigma: float, budget: int) -> None:
        import nevergrad as ng

        parametrization = ng.p.Array(init=np.zeros(dim)).set_mutation(sigma=sigma)
        parametrization.random_state = np.random.RandomState(seed % 2**32)
        self._optimizer = ng.optimizers.NGOpt(parametrization=parametrization, budget=budget, num_workers=POPULATION)
        self._pending: list[Any] = []

    def ask(self) -> FloatArray:
        self._pending = [self._optimizer.ask() for _ in range(POPULATION)]
        return np.array([candidate.value for candidate in self._pending])

    def tell(self, scores: FloatArray) -> None:
        for candidate, score in zip(self._pending, scores, strict=True):
            self._optimizer.tell(candidate, -float(score))


class Evostim:
    """A registered evostim optimizer (or adapter) with the space's default parameters."""

    def __init__(
        self, label: str, dim: int, code_norm: float, seed: int, *, optimizer: str | None = None, **extra: Any
    ) -> None:
        # "name" or "name:param=value:param=value" (numbers), e.g. "cholesky-cma:sigma=1.5"; ``optimizer`` and
        # ``extra`` give the name and parameters directly when the label is only a label.
        name, *settings = label.split(":")
        params = {key: float(value) if "." in value else int(value) for key, value in (s.split("=") for s in settings)}
        self.name = label
        self._optimizer = optimizers.create_optimizer(
            optimizer or name, dim, population_size=POPULATION, seed=seed, code_norm=code_norm, **params, **extra
        )
        self._ids: tuple[int, ...] = ()

    def ask(self) -> FloatArray:
        population = self._optimizer.ask()
        self._ids = population.ids
        return population.codes

    def tell(self, scores: FloatArray) -> None:
        self._optimizer.tell(self._ids, scores)


def make_optimizer(name: str, dim: int, code_norm: float, seed: int, budget: int) -> Evostim | NevergradNGOpt:
    if name == "ngopt":
        return NevergradNGOpt(dim, seed, published_cma_sigma(dim, code_norm), budget)
    return Evostim(name, dim, code_norm, seed)


# -- noise ---------------------------------------------------------------------------------------------
@dataclass
class NoiseModel:
    level: str
    gain: float  # Poisson: spikes per unit activation; p99 of random images -> 20 spikes over baseline 2

    def observe(self, clean: FloatArray, rng: np.random.Generator) -> FloatArray:
        if self.level == "poisson":
            counts: FloatArray = rng.poisson(2.0 + self.gain * np.maximum(clean, 0.0)).astype(np.float64)
            return counts
        sigma = float(self.level)
        return clean * np.maximum(0.0, 1.0 + sigma * rng.standard_normal(clean.shape))


# -- the runs -----------------------------------------------------------------------------------------
@dataclass
class Run:
    optimizer_name: str
    unit: int
    noise: str
    seed: int
    optimizer: Any
    rng: np.random.Generator
    best_observed: float = -math.inf
    best_clean: float = math.nan  # clean activation of the image with the best observed score so far
    best_clean_seen: float = -math.inf  # best clean activation of any image proposed (for normalization a)
    curve: list[float] = field(default_factory=list)
    optimizer_seconds: float = 0.0


def evolve(
    panel: CnnPanel | SyntheticPanel,
    names: Sequence[str],
    units: Sequence[int],
    noises: Sequence[str],
    seeds: int,
    generations: int,
    gains: FloatArray,
    progress: Callable[[str], None],
    code_norm: float | None = None,
    factory: Callable[[str, int, float, int, int], Any] | None = None,
) -> list[Run]:
    """All runs in lockstep; with ``code_norm``, images come from the codes projected on that sphere (as a
    session with the code-norm constraint does), while each optimizer keeps its own codes. ``factory`` builds an
    optimizer from (label, dim, code_norm, seed, budget); default: ``make_optimizer``."""
    factory = factory or make_optimizer
    runs = []
    for name in names:
        for unit in units:
            for noise in noises:
                for seed in range(seeds):
                    run_seed = 1000 * unit + 10 * seed + NOISE_LEVELS.index(noise)
                    optimizer = factory(name, panel.dim, panel.code_norm, run_seed, generations * POPULATION)
                    rng = np.random.default_rng(run_seed + 7)
                    runs.append(Run(name, unit, noise, seed, optimizer, rng))
    models = {(u, n): NoiseModel(n, float(gains[u])) for u in units for n in noises}
    started = time.perf_counter()
    for generation in range(generations):
        codes = []
        for run in runs:
            t0 = time.perf_counter()
            codes.append(run.optimizer.ask())
            run.optimizer_seconds += time.perf_counter() - t0
        unit_of_row = np.repeat([run.unit for run in runs], POPULATION)
        shown = project_to_sphere(np.concatenate(codes), code_norm)
        clean = panel.activations(unit_of_row, shown).reshape(len(runs), POPULATION)
        for run, run_clean in zip(runs, clean, strict=True):
            observed = models[(run.unit, run.noise)].observe(run_clean, run.rng)
            t0 = time.perf_counter()
            run.optimizer.tell(observed)
            run.optimizer_seconds += time.perf_counter() - t0
            top = int(np.argmax(observed))
            if observed[top] > run.best_observed:
                run.best_observed, run.best_clean = float(observed[top]), float(run_clean[top])
            run.best_clean_seen = max(run.best_clean_seen, float(run_clean.max()))
            run.curve.append(run.best_clean)
        if generation % 10 == 9 or generation == generations - 1:
            elapsed = time.perf_counter() - started
            progress(f"  generation {generation + 1}/{generations}, {len(runs)} runs, {elapsed:.0f} s")
    return runs


# -- statistics ----------------------------------------------------------------------------------------
def bootstrap_ci(values: FloatArray, rng: np.random.Generator, draws: int = 2000) -> tuple[float, float]:
    if len(values) < 2:
        return float("nan"), float("nan")
    means = rng.choice(values, size=(draws, len(values))).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def ratio_ci(mine: FloatArray, theirs: FloatArray, rng: np.random.Generator, draws: int = 2000) -> tuple[float, float]:
    """95% bootstrap CI of mean(mine) / mean(theirs), resampling paired runs."""
    picks = rng.integers(0, len(mine), size=(draws, len(mine)))
    ratios = mine[picks].mean(axis=1) / theirs[picks].mean(axis=1)
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def summarize(
    panel_name: str, runs: list[Run], unit_names: Sequence[str], random_max: FloatArray, out: Path
) -> dict[tuple[str, str], FloatArray]:
    """Print the table for one panel; write its CSVs; return normalized (a) scores by (optimizer, noise)."""
    ceiling: dict[int, float] = defaultdict(lambda: -math.inf)
    for run in runs:
        ceiling[run.unit] = max(ceiling[run.unit], run.best_clean_seen)
    by_key: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for run in runs:
        by_key[(run.optimizer_name, run.noise)].append(run)

    with (out / f"{panel_name}_runs.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["optimizer", "noise", "unit", "seed", "best_clean", "normalized_best_any_run",
                         "normalized_random_max", "optimizer_seconds"])  # fmt: skip
        for run in runs:
            value = run.best_clean
            writer.writerow([run.optimizer_name, run.noise, unit_names[run.unit], run.seed, f"{value:.6g}",
                             f"{value / ceiling[run.unit]:.4f}", f"{value / random_max[run.unit]:.4f}",
                             f"{run.optimizer_seconds:.3f}"])  # fmt: skip

    rng = np.random.default_rng(0)
    normalized: dict[tuple[str, str], FloatArray] = {}
    print(f"\n{panel_name}: {len(unit_names)} units; value = clean activation of each run's best image")
    print(f"{'optimizer':<13}{'noise':>8}{'runs':>6}{'(a) / best any run':>26}{'(b) / max of 10k random':>26}"
          f"{'wins vs ga':>12}{'optimizer s/run':>17}")  # fmt: skip
    for (name, noise), group in sorted(by_key.items(), key=lambda item: (NOISE_LEVELS.index(item[0][1]), item[0][0])):
        group.sort(key=lambda r: (r.unit, r.seed))
        a = np.array([r.best_clean / ceiling[r.unit] for r in group])
        b = np.array([r.best_clean / random_max[r.unit] for r in group])
        normalized[(name, noise)] = a
        ga = [r.best_clean for r in sorted(by_key.get(("ga", noise), []), key=lambda r: (r.unit, r.seed))]
        wins = f"{np.mean([r.best_clean > g for r, g in zip(group, ga, strict=True)]):.0%}" if ga else "-"
        a_lo, a_hi = bootstrap_ci(a, rng)
        b_lo, b_hi = bootstrap_ci(b, rng)
        seconds = np.mean([r.optimizer_seconds for r in group])
        print(f"{name:<13}{noise:>8}{len(group):>6}{f'{a.mean():.3f} [{a_lo:.3f}, {a_hi:.3f}]':>26}"
              f"{f'{b.mean():.3f} [{b_lo:.3f}, {b_hi:.3f}]':>26}{wins:>12}{seconds:>17.2f}")  # fmt: skip

    # Mean normalized (a) curve per optimizer and noise level, with a 95% band over runs.
    with (out / f"{panel_name}_curves.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["optimizer", "noise", "evaluations", "mean", "lo", "hi"])
        for (name, noise), group in sorted(by_key.items()):
            curves = np.array([np.array(r.curve) / ceiling[r.unit] for r in group])
            for generation in range(curves.shape[1]):
                lo, hi = bootstrap_ci(curves[:, generation], rng, draws=300)
                writer.writerow([name, noise, (generation + 1) * POPULATION, f"{curves[:, generation].mean():.4f}",
                                 f"{lo:.4f}", f"{hi:.4f}"])  # fmt: skip
    plot(panel_name, by_key, ceiling, out)
    return normalized


def plot(panel_name: str, by_key: dict[tuple[str, str], list[Run]], ceiling: dict[int, float], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    noises = [n for n in NOISE_LEVELS if any(key[1] == n for key in by_key)]
    figure, axes = plt.subplots(1, len(noises), figsize=(4.2 * len(noises), 3.6), sharey=True, squeeze=False)
    for axis, noise in zip(axes[0], noises, strict=True):
        for (name, level), group in sorted(by_key.items()):
            if level != noise:
                continue
            curves = np.array([np.array(r.curve) / ceiling[r.unit] for r in group])
            mean = curves.mean(axis=0)
            sem = curves.std(axis=0, ddof=1) / math.sqrt(len(curves)) if len(curves) > 1 else 0 * mean
            evaluations = np.arange(1, len(mean) + 1) * POPULATION
            style = "-" if name in EVOSTIM else "--"
            axis.plot(evaluations, mean, style, label=name, linewidth=2 if name == optimizers.DEFAULT_OPTIMIZER else 1)
            axis.fill_between(evaluations, mean - 1.96 * sem, mean + 1.96 * sem, alpha=0.15)
        axis.set_title(f"noise {noise}")
        axis.set_xlabel("evaluations")
    axes[0][0].set_ylabel("clean score of best image / best of any run")
    axes[0][-1].legend(fontsize=8)
    figure.suptitle(f"{panel_name}: mean over units and seeds, 95% band")
    figure.tight_layout()
    figure.savefig(out / f"{panel_name}.png", dpi=110)
    plt.close(figure)


def calibrate(panel: CnnPanel | SyntheticPanel, count: int) -> tuple[FloatArray, FloatArray]:
    """Per unit: the max over ``count`` random prior codes, and the Poisson gain (p99 -> 20 spikes)."""
    activations = panel.activation_matrix(panel.random_codes(count, seed=12345))
    p99 = np.percentile(np.maximum(activations, 0.0), 99, axis=0)
    if np.any(p99 <= 0):
        silent = [name for name, value in zip(panel.names, p99, strict=True) if value <= 0]
        raise SystemExit(f"units silent on random images, pick others: {silent}")
    return activations.max(axis=0), 18.0 / p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a reduced panel in a few minutes")
    parser.add_argument("--panels", default="cnn,synthetic", help="cnn, synthetic or both (comma-separated)")
    parser.add_argument("--units", type=int, default=len(CNN_UNITS), help="CNN units (from the list of 24)")
    parser.add_argument("--unit-stride", type=int, default=1, help="take every n-th unit of the list")
    parser.add_argument("--synthetic-units", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--synthetic-seeds", type=int, default=2)
    parser.add_argument("--noise", default=",".join(NOISE_LEVELS))
    parser.add_argument("--generations", type=int, default=75)
    parser.add_argument(
        "--optimizers", default=",".join(EVOSTIM + OUTSIDE), help="names, or name:param=value to compare settings"
    )
    parser.add_argument("--random-codes", type=int, default=10_000)
    parser.add_argument(
        "--code-norm-constraint",
        action="store_true",
        help="show the codes projected on the prior's sphere, as sessions do by default for dcgan-faces",
    )
    parser.add_argument("--out", type=Path, default=Path("out/search_quality"))
    args = parser.parse_args()
    if args.quick:
        args.units, args.unit_stride, args.synthetic_units, args.seeds, args.synthetic_seeds = 6, 4, 3, 1, 1
        args.noise, args.generations, args.random_codes = "0.5,poisson", 40, 2000
    args.out.mkdir(parents=True, exist_ok=True)
    names = [n for n in args.optimizers.split(",") if n]
    noises = [n for n in args.noise.split(",") if n]
    torch.manual_seed(0)
    print(f"{args.generations} generations x {POPULATION} = {args.generations * POPULATION} evaluations per run; "
          f"noise {noises}; optimizers {names}", flush=True)  # fmt: skip

    pooled: dict[str, list[float]] = defaultdict(list)
    for panel_name in [p for p in args.panels.split(",") if p]:
        started = time.perf_counter()
        if panel_name == "cnn":
            panel: CnnPanel | SyntheticPanel = CnnPanel(CNN_UNITS[:: args.unit_stride][: args.units])
            seeds, panel_names = args.seeds, names
        else:
            panel = SyntheticPanel(args.synthetic_units)
            seeds = args.synthetic_seeds
            panel_names = ["cmaes-sep" if n == "cmaes" else n for n in names]  # full cmaes: seconds per step here
        random_max, gains = calibrate(panel, args.random_codes)
        print(f"{panel_name}: {len(panel.names)} units, dim {panel.dim}; calibrated in "
              f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
        constraint = panel.code_norm if args.code_norm_constraint else None
        runs = evolve(panel, panel_names, range(len(panel.names)), noises, seeds, args.generations, gains,
                      lambda line: print(line, flush=True), constraint)  # fmt: skip
        normalized = summarize(panel_name, runs, panel.names, random_max, args.out)
        for (name, _), values in normalized.items():
            pooled[name].extend(values)
        print(f"{panel_name}: {time.perf_counter() - started:.0f} s", flush=True)

    print(f"results in {args.out}/")
    default = optimizers.DEFAULT_OPTIMIZER
    if not (pooled.get(default) and pooled.get("ga")):
        print(f"default {default} vs ga: not compared (run both: --optimizers {default},ga,...)")
        return
    mine, theirs = np.array(pooled[default]), np.array(pooled["ga"])
    lo, hi = ratio_ci(mine, theirs, np.random.default_rng(1))
    print(f"default {default} vs ga: mean normalized score {mine.mean():.3f} vs {theirs.mean():.3f} "
          f"(ratio {mine.mean() / theirs.mean():.2f}, 95% CI {lo:.2f}..{hi:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
