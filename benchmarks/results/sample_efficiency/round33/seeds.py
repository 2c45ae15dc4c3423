"""Misses per pair of seeds in a sweep folder: for each optimizer, how many of its pairings on seeds {0, 1} and on
seeds {2, 3} never reach cholesky-cma's final value on the same (unit, noise, seed); the value at the end (/ the
best any run of the folder reached on the unit) and the ratio (evostim.clients.sweeps.efficiency's) on each.

    python seeds.py FOLDER
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from evostim.clients.sweeps.efficiency import _curves, mean_curve_ratio

curves, ceiling, _ = _curves(Path(sys.argv[1]))
targets = {pairing: curve[-1] for (optimizer, pairing), curve in curves.items() if optimizer == "cholesky-cma"}
for optimizer in sorted({optimizer for optimizer, _ in curves} - {"cholesky-cma"}):
    line = []
    for seeds in ((0, 1), (2, 3)):
        mine = [(p, c) for (o, p), c in curves.items() if o == optimizer and p[-1] in seeds and p in targets]
        if mine:
            misses = sum(not np.any(curve >= targets[pairing]) for pairing, curve in mine)
            normalized = np.array([curve / ceiling[pairing[0]] for pairing, curve in mine])
            theirs = np.array([curves[("cholesky-cma", pairing)] / ceiling[pairing[0]] for pairing, _ in mine])
            ratio = mean_curve_ratio(normalized, theirs)
            line.append(
                f"seeds {seeds}: {misses}/{len(mine)} misses, value {normalized[:, -1].mean():.3f}, ratio {ratio:.3f}"
            )
    print(f"{optimizer}: " + "; ".join(line))
