"""Where the sessions' search (R2) misses cholesky-cma's final value: the misses by unit, and the gap (cholesky-cma's
final value less the best R2's curve ever reached, as a share of the unit's best), per folder.

    python misses.py FOLDER [FOLDER...]
"""

import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from evostim.clients.sweeps.efficiency import _curves

BASELINE = "cholesky-cma"
R2 = "metric-cma:angle_end=2:mirrored=true:refresh_every=5:remeasure=2:starts=2:trial_generations=3:window=0.125"

for folder in sys.argv[1:]:
    curves, ceiling, _ = _curves(Path(folder))
    misses: Counter[str] = Counter()
    pairings = 0
    gaps = []
    for (name, pairing), curve in curves.items():
        if name != R2 or (BASELINE, pairing) not in curves:
            continue
        pairings += 1
        mine, theirs = curve / ceiling[pairing[0]], curves[(BASELINE, pairing)] / ceiling[pairing[0]]
        if not np.any(mine >= theirs[-1]):
            misses[pairing[0]] += 1
            gaps.append(theirs[-1] - mine.max())
    print(f"{folder}: {sum(misses.values())} misses of {pairings}")
    print(f"  by unit: {misses.most_common(12)}")
    median, p75 = np.percentile(gaps, [50, 75])
    print(f"  gap to the target: median {median:.3f}, p75 {p75:.3f}, max {max(gaps):.3f}")
