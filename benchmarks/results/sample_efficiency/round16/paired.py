"""Round 16: the paired gain of drift correction, per noise model and pooled: the mean over (unit, noise, seed)
pairings of the value at 1,600 of LABEL+drift4 minus that of LABEL (values / the best any run of the folder reached
on the unit, as in the tables), with a bootstrap 95% CI over pairings (evostim's bootstrap_ci, seed 0).

    python paired.py FOLDER LABEL [LABEL ...]   (S stands for the session setting, as in round 15's diagnose.py)
"""

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from evostim.clients.sweeps.sweep import bootstrap_ci, read_results

S = "metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
folder, labels = Path(sys.argv[1]), [label.replace("S:", f"{S}:") for label in sys.argv[2:]]
runs, _ = read_results(folder)
ceiling: dict[str, float] = defaultdict(float)
for run in runs:
    ceiling[run["unit"]] = max(ceiling[run["unit"]], run["best_clean_seen"])
value = {(r["optimizer"], r["unit"], r["noise"], r["seed"]): r["best_clean"] / ceiling[r["unit"]] for r in runs}
print("| setting | noise | pairings | gain of drift correction at 1,600 [95% CI] | better / worse / same |")
print("|---|---|---|---|---|")
for label in labels:
    for noise in ("recorded", "poisson", "all"):
        keys = [k[1:] for k in value if k[0] == label and noise in ("all", k[2])]
        keys = [k for k in keys if (f"{label}+drift4", *k) in value]
        difference = np.array([value[(f"{label}+drift4", *k)] - value[(label, *k)] for k in sorted(keys)])
        low, high = bootstrap_ci(difference, np.random.default_rng(0))
        counts = f"{(difference > 0).sum()} / {(difference < 0).sum()} / {(difference == 0).sum()}"
        name = label.replace(S, "S")
        gain = f"{difference.mean():+.3f} [{low:+.3f}, {high:+.3f}]"
        print(f"| {name} | {noise} | {len(difference)} | {gain} | {counts} |")
