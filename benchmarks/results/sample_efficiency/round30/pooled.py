"""Round 30's rule reads figures pooled over its two panels (432 pairings): each folder's curves normalized as its
tables normalize them (/ the best any run of the folder reached on the unit), then put together; the ratio, value
and misses as `evostim.clients.sweeps.efficiency` computes them, with a paired bootstrap 95% CI of the ratio.

    python pooled.py FOLDER [FOLDER...]
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from evostim.clients.sweeps.efficiency import _curves, mean_curve_ratio, paired_bootstrap_ci

BASELINE = "cholesky-cma"
normalized: dict[str, list[np.ndarray]] = {}
for folder in sys.argv[1:]:
    curves, ceiling, _ = _curves(Path(folder))
    for (optimizer, pairing), curve in sorted(curves.items()):
        normalized.setdefault(optimizer, []).append(curve / ceiling[pairing[0]])
theirs = np.array(normalized[BASELINE])
for optimizer, rows in normalized.items():
    if len(rows) != len(theirs):  # run on some of the folders only: not paired with the pooled baseline
        continue
    mine = np.array(rows)
    ratio = mean_curve_ratio(mine, theirs)
    low, high = paired_bootstrap_ci(mean_curve_ratio, mine, theirs, rng=np.random.default_rng(0))
    misses = int(sum(not np.any(m >= t[-1]) for m, t in zip(mine, theirs, strict=True)))
    print(
        f"{optimizer}: {len(mine)} pairings, ratio {ratio:.3f} [{low:.3f}, {high:.3f}], misses {misses}, "
        f"value at the end {mine[:, -1].mean():.3f}"
    )
