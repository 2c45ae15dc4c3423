"""Optimizer step time: ask + tell at d = 4,096 (the fc6 space), λ = 40, on this CPU, for every optimizer.

Side by side in the same run with the references: pycma's full CMA-ES (eigendecomposition of a
4,096 x 4,096 covariance) and cmaes' SepCMA. Prints median, p99 and max over the generations, and the
size of each optimizer's serialized state at the end (what a session stores per snapshot).
Target (DESIGN.md): the default's median <= 10 ms, p99 <= 30 ms, no multi-second spikes, state <= 10 MB.
The last line reads `default NAME: median X ms, pycma full: Y ms, speed-up Z x`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evostim import optimizers

DIM, POPULATION, CODE_NORM = 4096, 40, 300.0
TARGET_MEDIAN_MS, TARGET_P99_MS, TARGET_STATE_MB = 10.0, 30.0, 10.0
ROWS = ("cholesky-cma", "sphere-cma", "sep-cma", "ga", "cmaes-sep", "pycma")


def step_times(name: str, generations: int) -> tuple[np.ndarray, int]:
    """Milliseconds per ask + tell, and the serialized state's size in bytes after the last one."""
    optimizer = optimizers.create_optimizer(name, DIM, population_size=POPULATION, seed=0, code_norm=CODE_NORM)
    target = np.random.default_rng(1).standard_normal(DIM) * 4.0
    times = []
    for _ in range(generations):
        started = time.perf_counter()
        population = optimizer.ask()
        scores = -np.sum((population.codes - target) ** 2, axis=1)  # a cheap objective, outside the timing
        optimizer.tell(population.ids, scores)
        times.append((time.perf_counter() - started) * 1e3)
    state_bytes = len(json.dumps(optimizer.state_dict()).encode())
    return np.array(times), state_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generations", type=int, default=200)
    parser.add_argument("--pycma-generations", type=int, default=200, help="pycma takes most of a second per step")
    parser.add_argument("--quick", action="store_true", help="100 generations (pycma 30): under a minute")
    args = parser.parse_args()
    if args.quick:
        args.generations, args.pycma_generations = 100, 30
    default = optimizers.DEFAULT_OPTIMIZER
    print(f"ask + tell at d = {DIM}, λ = {POPULATION}; default optimizer: {default}")
    print(
        f"{'optimizer':<14}{'generations':>12}{'median ms':>11}{'mean ms':>9}{'p99 ms':>9}{'max ms':>9}{'state MB':>10}"
    )
    medians = {}
    for name in ROWS:
        generations = args.pycma_generations if name == "pycma" else args.generations
        times, state_bytes = step_times(name, generations)
        medians[name] = float(np.median(times))
        p99, worst = float(np.percentile(times, 99)), float(times.max())
        print(
            f"{name:<14}{generations:>12}{medians[name]:>11.2f}{times.mean():>9.2f}{p99:>9.2f}{worst:>9.1f}"
            f"{state_bytes / 1e6:>10.2f}"
        )
        if name == default:
            met = medians[name] <= TARGET_MEDIAN_MS and p99 <= TARGET_P99_MS and state_bytes / 1e6 <= TARGET_STATE_MB
            targets = f"median <= {TARGET_MEDIAN_MS:g} ms, p99 <= {TARGET_P99_MS:g} ms, state <= {TARGET_STATE_MB:g} MB"
            default_line = f"  target ({targets}): {'met' if met else 'NOT met'}"
        sys.stdout.flush()
    print(default_line)
    print(
        f"default {default}: median {medians[default]:.2f} ms, pycma full: {medians['pycma']:.0f} ms, "
        f"speed-up {medians['pycma'] / medians[default]:.0f} x"
    )


if __name__ == "__main__":
    main()
