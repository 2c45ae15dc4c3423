"""Round 42's stricter reading of misses: a pairing misses when the image it holds at the end (its final value) is
below cholesky-cma's final value, not only when its curve never reached it. A run's curve (the clean value of the
image it holds) can fall: a higher count on a poorer image takes the lead, and with `remeasure` a lucky count
measured again may hand the lead to a poorer image; "curves that fell" counts the runs whose curve fell at least
once. Pairings and normalization as `../round38/pooled_rule.py`.

    python final_misses.py CANDIDATE_LABEL FOLDER [FOLDER...]
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from evostim.clients.sweeps.efficiency import _curves

BASELINE = "cholesky-cma"
C0 = "metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
candidate, folders = sys.argv[1], sys.argv[2:]
rows: dict[str, list[np.ndarray]] = {BASELINE: [], C0: [], candidate: []}
for folder in folders:
    curves, ceiling, _ = _curves(Path(folder))
    shared = [p for (name, p) in curves if name == candidate and (BASELINE, p) in curves and (C0, p) in curves]
    for name in rows:
        rows[name] += [curves[(name, p)] / ceiling[p[0]] for p in sorted(shared)]
theirs = np.array(rows[BASELINE])
for name in (C0, candidate):
    mine = np.array(rows[name])
    ever = int(sum(not np.any(m >= t[-1]) for m, t in zip(mine, theirs, strict=True)))
    final = int(np.sum(mine[:, -1] < theirs[:, -1]))
    fell = int(np.sum(np.any(np.diff(mine, axis=1) < 0, axis=1)))
    label = "C0" if name == C0 else name
    print(f"{label}: {len(mine)} pairings, misses never reached {ever}, below at the end {final}; fell {fell}")
