"""Round 38's rule, read pooled over folders: each candidate against C0 and cholesky-cma on the pairings all three
ran (a folder may hold more noise models or seeds for some optimizers than for others). Curves normalized as the
tables normalize them (/ the best any run of the folder reached on the unit); ratio, misses and value as
`evostim.clients.sweeps.efficiency` computes them, with a paired bootstrap 95% CI of the ratio.

    python pooled_rule.py CANDIDATE_LABEL FOLDER [FOLDER...]
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from evostim.clients.sweeps.efficiency import _curves, mean_curve_ratio, paired_bootstrap_ci

BASELINE = "cholesky-cma"
C0 = "metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
candidate, folders = sys.argv[1], sys.argv[2:]
rows: dict[str, list[np.ndarray]] = {BASELINE: [], C0: [], candidate: []}
for folder in folders:
    curves, ceiling, _ = _curves(Path(folder))
    pairings = sorted(p for (name, p) in curves if name == candidate)
    shared = [p for p in pairings if (BASELINE, p) in curves and (C0, p) in curves]
    print(f"{folder}: {len(shared)} pairings shared of the candidate's {len(pairings)}")
    for name in rows:
        rows[name] += [curves[(name, p)] / ceiling[p[0]] for p in shared]
theirs = np.array(rows[BASELINE])
for name in (C0, candidate):
    mine = np.array(rows[name])
    ratio = mean_curve_ratio(mine, theirs)
    low, high = paired_bootstrap_ci(mean_curve_ratio, mine, theirs, rng=np.random.default_rng(0))
    misses = int(sum(not np.any(m >= t[-1]) for m, t in zip(mine, theirs, strict=True)))
    label = "C0" if name == C0 else name
    print(
        f"{label}: {len(mine)} pairings, ratio {ratio:.3f} [{low:.3f}, {high:.3f}], misses {misses}, "
        f"value at the end {mine[:, -1].mean():.3f}"
    )
print(f"cholesky-cma: value at the end {theirs[:, -1].mean():.3f}")
