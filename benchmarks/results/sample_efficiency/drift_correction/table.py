"""The drift correction tables: every folder's runs against one baseline, today's (cholesky-cma, no correction).

    python benchmarks/results/sample_efficiency/drift_correction/table.py [FOLDER...]

Values are normalized per unit by the best clean activation any run of any folder reached on it (so folders
compare); ``ratio`` is where the mean curve reaches the mean final value of cholesky-cma without correction, / its
1,600 evaluations, with a paired bootstrap 95% CI over (unit, noise, seed) pairings; ``misses``: pairings whose run
never reaches that pairing's uncorrected cholesky-cma final value; ``gain``: the paired mean difference of the value
at 1,600 from the same optimizer without correction, 95% CI.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from evostim.clients.sweeps.efficiency import mean_curve_ratio, paired_bootstrap_ci
from evostim.clients.sweeps.sweep import bootstrap_ci, read_results

HERE = Path(__file__).resolve().parent
BASELINE = ("off", "cholesky-cma")
Key = tuple[str, str, str, tuple[str, str, int]]  # folder, optimizer, noise, pairing


def _curves(folders: list[str]) -> tuple[dict[Key, np.ndarray], dict[str, float]]:
    curves: dict[Key, np.ndarray] = {}
    ceiling: dict[str, float] = defaultdict(lambda: -math.inf)
    for folder in folders:
        runs, generations = read_results(HERE / folder)
        points = defaultdict(list)
        for row in generations:
            points[row["key"]].append((row["generation"], row["best_clean"]))
        for run in runs:
            pairing = (run["unit"], run["noise"], run["seed"])
            name = "cholesky-cma" if run["optimizer"] == "cholesky-cma" else "metric-cma (session)"
            curves[(folder, name, run["noise"], pairing)] = np.array([v for _, v in sorted(points[run["key"]])])
            ceiling[run["unit"]] = max(ceiling[run["unit"]], run["best_clean_seen"])
    return curves, ceiling


def _gain(
    curves: dict[Key, np.ndarray],
    ceiling: dict[str, float],
    key: tuple[str, str, str],
    mine: np.ndarray,
    rng: np.random.Generator,
) -> str:
    """The paired mean difference of the value at 1,600 from the same optimizer without correction, 95% CI."""
    folder, name, noise = key
    pairings = sorted(p for f, n, z, p in curves if (f, n, z) == key and (*BASELINE, noise, p) in curves)
    if folder == "off" or not all(("off", name, noise, p) in curves for p in pairings):
        return ""
    plain = np.array([curves[("off", name, noise, p)][-1] / ceiling[p[0]] for p in pairings])
    difference = mine[:, -1] - plain
    low, high = bootstrap_ci(difference, rng)
    return f"{difference.mean():+.3f} [{low:+.3f}, {high:+.3f}]"


def _row(curves: dict[Key, np.ndarray], ceiling: dict[str, float], folder: str, name: str, noise: str) -> str:
    rng = np.random.default_rng(0)
    pairings = sorted(p for f, n, z, p in curves if (f, n, z) == (folder, name, noise))
    pairings = [p for p in pairings if (*BASELINE, noise, p) in curves]
    mine = np.array([curves[(folder, name, noise, p)] / ceiling[p[0]] for p in pairings])
    theirs = np.array([curves[(*BASELINE, noise, p)] / ceiling[p[0]] for p in pairings])
    ratio = mean_curve_ratio(mine, theirs)
    low, high = paired_bootstrap_ci(mean_curve_ratio, mine, theirs, rng=rng)
    value, (v_low, v_high) = float(mine[:, -1].mean()), bootstrap_ci(mine[:, -1], rng)
    misses = int(sum(not np.any(m >= t[-1]) for m, t in zip(mine, theirs, strict=True)))
    gain = _gain(curves, ceiling, (folder, name, noise), mine, rng)
    return (
        f"| {folder} | {name} | {noise} | {len(pairings)} | {ratio:.2f} [{low:.2f}, {high:.2f}] | "
        f"{value:.3f} [{v_low:.3f}, {v_high:.3f}] | {misses} | {gain} |"
    )


def main(folders: list[str]) -> None:
    curves, ceiling = _curves(folders)
    columns = "ratio [95% CI] | value at 1,600 [95% CI] | misses | gain at 1,600"
    print(f"| folder | optimizer | noise | pairings | {columns} |")
    print("|---|---|---|---|---|---|---|---|")
    for noise in ("recorded", "poisson"):
        for name in ("cholesky-cma", "metric-cma (session)"):
            for folder in folders:
                if any(k[:3] == (folder, name, noise) for k in curves):
                    print(_row(curves, ceiling, folder, name, noise))


if __name__ == "__main__":
    main(sys.argv[1:] or ["off", "on_r4", "on_r10"])
