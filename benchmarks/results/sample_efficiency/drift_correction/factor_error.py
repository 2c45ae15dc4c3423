"""How well each candidate rule estimates a simulated neuron's drift from its reference images (numpy only, no search).

    python benchmarks/results/sample_efficiency/drift_correction/factor_error.py > factor_error.txt

The neurons are the 18 tuning units of the sweeps here (expected counts 2 + gain x relu(activation), the gains of
round14/tuning_g40/calibration.json) shown the sweep engine's reference images (the prior's codes from
REFERENCE_SEED); their gain follows evostim.clients.simulation.neurons' Drift over 40 generations (or a step down to
0.6 at a random generation 10..29, a drift that is not log-linear), their counts the `recorded` (negbin:1.5) or
Poisson noise. Per rule, two numbers over 40 seeds x 18 units:

- RMS error of the log factor between generations (the told scores of two generations compare right when the error
  is 0; no correction has the drift itself as its error);
- a best-image proxy: 40 generations of 40 images whose clean counts rise with the generation (a search making
  progress), each observed with the noise and the drift; the clean value of the image with the best told score,
  / the best clean value: what the sweeps' value measures, without an optimizer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from evostim.clients.simulation.neurons import DRIFT
from evostim.clients.sweeps.engine import REFERENCE_SEED
from evostim.clients.sweeps.panels import make_panel
from evostim.clients.sweeps.unit_pool import responsive_units
from evostim.drift import DriftRule, drift_factors

HERE = Path(__file__).resolve().parent
G, P, SEEDS = 40, 40, 40
Rule = Callable[[np.ndarray], np.ndarray]


def reference_counts(units: list[str]) -> dict[str, np.ndarray]:
    """Expected counts (10,) of the first 10 reference images on each unit, as a sweep shows them."""
    calibration = json.loads((HERE.parent / "round14/tuning_g40/calibration.json").read_text())["units"]
    panel = make_panel("cnn", units, "bf16")
    codes = panel.random_codes(10, REFERENCE_SEED)
    out = {}
    for index, unit in enumerate(units):
        activations = panel.activations(np.full(10, index, dtype=np.int64), codes)
        out[unit] = 2.0 + calibration[unit][1] * np.maximum(activations, 0.0)
    return out


def observe(rng: np.random.Generator, mean: np.ndarray, fano: float) -> np.ndarray:
    if fano == 1.0:
        return rng.poisson(mean).astype(np.float64)
    return rng.poisson(rng.gamma(mean / (fano - 1.0), fano - 1.0)).astype(np.float64)


def per_generation(r: np.ndarray) -> np.ndarray:
    """The sweep engine's rule before this round: each generation's mean / generation 0's, floored at 0.05."""
    factors: np.ndarray = np.maximum(r, 0.05) / max(r[0], 0.05)
    return factors


def ema(half_life: float) -> Rule:
    def rule(r: np.ndarray) -> np.ndarray:
        alpha, level = 1 - 2 ** (-1 / half_life), np.empty_like(r)
        level[0] = r[0]
        for t in range(1, len(r)):
            level[t] = level[t - 1] + alpha * (r[t] - level[t - 1])
        factors: np.ndarray = level / level[0]
        return factors

    return rule


def ridge(value: float) -> Rule:
    return lambda r: np.array(drift_factors(list(r), DriftRule(ridge=value)))


RULES: dict[str, Rule] = {
    "none": lambda r: np.ones(len(r)),
    "per generation (the engine's rule before)": per_generation,
    "exponential mean, half-life 5": ema(5),
    "log-linear, unshrunk (ridge 0)": ridge(0.0),
    "log-linear, ridge 300": ridge(300.0),
    "log-linear, ridge 1,000 (chosen)": ridge(1000.0),
    "log-linear, ridge 3,000": ridge(3000.0),
}


def step_down(rng: np.random.Generator) -> np.ndarray:
    gains = np.ones(G)
    gains[rng.integers(10, 30) :] = 0.6
    return gains


def measure(counts: dict[str, np.ndarray], references: int, fano: float, drift: str) -> dict[str, tuple[float, float]]:
    totals = {name: [0.0, 0.0] for name in RULES}
    pairs = np.triu_indices(G, 1)
    for seed in range(SEEDS):
        for number, expected in enumerate(counts.values()):
            rng = np.random.default_rng([seed, number])
            gains = {"none": np.ones(G), "Drift": DRIFT.gains(G, rng), "step": step_down(rng)}[drift]
            r = np.array([observe(rng, expected[:references] * g, fano).mean() for g in gains])
            progress = 0.35 + 0.65 * (1 - np.exp(-np.arange(G)[:, None] / 12))
            clean = 2 + 23.4 * progress * rng.beta(4, 3, size=(G, P))
            observed = observe(rng, (clean * gains[:, None]).ravel(), fano).reshape(G, P)
            for name, rule in RULES.items():
                factors = rule(r)
                error = np.log(factors) - np.log(gains)
                totals[name][0] += float(np.mean((error[:, None] - error[None, :])[pairs] ** 2))
                totals[name][1] += float(clean.ravel()[np.argmax(observed / factors[:, None])] / clean.max())
    n = SEEDS * len(counts)
    return {name: (math.sqrt(a / n), b / n) for name, (a, b) in totals.items()}


def main() -> None:
    counts = reference_counts(responsive_units("tuning", 18))
    for drift, fano in (("Drift", 1.5), ("none", 1.0), ("step", 1.5)):
        for references in (4, 10):
            noise = {"Drift": "recorded", "none": "poisson", "step": "negbin:1.5, a step down to 0.6"}[drift]
            print(f"\n{noise}, {references} references: rule | RMS log error between generations | best image")
            for name, (error, best) in measure(counts, references, fano, drift).items():
                print(f"| {name} | {error:.3f} | {best:.4f} |")


if __name__ == "__main__":
    main()
