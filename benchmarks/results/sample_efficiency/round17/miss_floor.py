"""What at most 5% misses would take (issue 33, item 4), from runs already made: per (unit, noise, seed) pairing
the gap d = target - value at the end, where the target is cholesky-cma's final value (the clean activation of its
best-observed image) and the value metric-cma's; both / the best any run of the folder reached on the unit. A
pairing misses when d > 0 (the tables use the whole curve; at the end is what almost every miss is).

Printed per folder and noise model: misses at the end; the 95th percentile of d (the uniform gain metric-cma would
need for 5% misses); the same for cholesky-cma's other seed against this seed's target (an optimizer "against
itself": how noisy the target alone is); the spread of cholesky-cma's final values between seeds; and the misses
against the mean of cholesky-cma's two seeds on the (unit, noise), a target with less of one seed's luck.

    python miss_floor.py FOLDER LABEL   (S stands for the session setting, as in round 15's diagnose.py)
"""

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from evostim.clients.sweeps.sweep import read_results

S = "metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
folder, label = Path(sys.argv[1]), sys.argv[2].replace("S:", f"{S}:")
runs, _ = read_results(folder)
ceiling: dict[str, float] = defaultdict(float)
for run in runs:
    ceiling[run["unit"]] = max(ceiling[run["unit"]], run["best_clean_seen"])
value = {(r["optimizer"], r["unit"], r["noise"], r["seed"]): r["best_clean"] / ceiling[r["unit"]] for r in runs}
print(f"{folder.name}: {label.replace(S, 'S')} against cholesky-cma, values at the end of the run")
print(
    "| noise | pairings | misses at the end | mean gap (target - value) | gap's 95th percentile | "
    "cholesky-cma's other seed: misses, 95th percentile | sd of cholesky-cma's final value between seeds | "
    "misses against cholesky-cma's mean over both seeds |"
)
print("|---|---|---|---|---|---|---|---|")
for noise in ("recorded", "poisson", "negbin:2", "all"):
    keys = sorted(k[1:] for k in value if k[0] == label and noise in ("all", k[2]))
    keys = [k for k in keys if ("cholesky-cma", *k) in value]
    if not keys:
        continue
    gap = np.array([value[("cholesky-cma", *k)] - value[(label, *k)] for k in keys])
    other = [(k, (k[0], k[1], 1 - k[2])) for k in keys if ("cholesky-cma", k[0], k[1], 1 - k[2]) in value]
    self_gap = np.array([value[("cholesky-cma", *k)] - value[("cholesky-cma", *o)] for k, o in other])
    mean_target = np.array([(value[("cholesky-cma", *k)] + value[("cholesky-cma", *o)]) / 2 for k, o in other])
    below_mean = np.array([value[(label, *k)] for k, _ in other]) < mean_target
    spread = np.sqrt(np.mean(self_gap**2) / 2)  # sd of one seed's value, from differences between two
    print(
        f"| {noise} | {len(keys)} | {(gap > 0).sum()} ({(gap > 0).mean():.0%}) | {-gap.mean():+.3f} in metric-cma's "
        f"favour | {np.percentile(gap, 95):+.3f} | {(self_gap > 0).mean():.0%}, {np.percentile(self_gap, 95):+.3f} | "
        f"{spread:.3f} | {below_mean.sum()} ({below_mean.mean():.0%}) |"
    )
