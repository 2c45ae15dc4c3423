"""M against C0, pairing by pairing: on how many pairings the two rules chose differently (their curves part), the
paired difference of the final value there and overall (/ the best any run of the folder reached on the unit, 95%
bootstrap CI over pairings), and each one's misses (never reaching cholesky-cma's final value on the pairing).

    python paired.py FOLDER [FOLDER ...]
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from evostim.clients.sweeps.efficiency import _curves

C0 = "metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
M = "metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_by_mean=true:trial_generations=3:window=0.125"


def ci(values: np.ndarray, rng: np.random.Generator) -> str:
    if not len(values):
        return "-"
    means = rng.choice(values, size=(10_000, len(values))).mean(axis=1)
    return f"{values.mean():+.3f} [{np.percentile(means, 2.5):+.3f}, {np.percentile(means, 97.5):+.3f}]"


rng = np.random.default_rng(0)
for folder in sys.argv[1:]:
    curves, ceiling, _ = _curves(Path(folder))
    pairings = sorted(p for o, p in curves if o == M and (C0, p) in curves and ("cholesky-cma", p) in curves)
    final = {o: np.array([curves[(o, p)][-1] / ceiling[p[0]] for p in pairings]) for o in (C0, M)}
    parted = np.array([not np.array_equal(curves[(C0, p)], curves[(M, p)]) for p in pairings])
    misses = {o: sum(not np.any(curves[(o, p)] >= curves[("cholesky-cma", p)][-1]) for p in pairings) for o in (C0, M)}
    difference = final[M] - final[C0]
    print(f"{folder}: {len(pairings)} pairings, the rules chose differently on {parted.sum()}")
    print(f"  value: C0 {final[C0].mean():.3f}, M {final[M].mean():.3f}; M - C0 {ci(difference, rng)}, "
          f"where they chose differently {ci(difference[parted], rng)}")  # fmt: skip
    print(f"  misses: C0 {misses[C0]}, M {misses[M]}")
    for noise in sorted({p[1] for p in pairings}):
        rows = np.array([p[1] == noise for p in pairings])
        print(
            f"  {noise}: chose differently on {parted[rows].sum()} of {rows.sum()}, M - C0 {ci(difference[rows], rng)}"
        )
