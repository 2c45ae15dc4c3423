"""Round 39: misses and value of C0 and T2 on foreign panel A, by pair of seeds (0-1: round 32, 2-3: this round).

python seeds_split.py FOLDER
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from evostim.clients.sweeps.efficiency import _curves

C0 = "metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
T2 = "metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=2:window=0.125"
curves, ceiling, _ = _curves(Path(sys.argv[1]))
for seeds in ((0, 1), (2, 3)):
    out = []
    for name in (C0, T2):
        ps = sorted(p for (n, p) in curves if n == name and p[2] in seeds)
        misses = sum(not np.any(curves[(name, p)] >= curves[("cholesky-cma", p)][-1]) for p in ps)
        value = np.mean([curves[(name, p)][-1] / ceiling[p[0]] for p in ps])
        out.append(f"{'C0' if name == C0 else 'T2'} {misses}/{len(ps)} misses, value {value:.3f}")
    print(f"seeds {seeds}: " + "; ".join(out))
