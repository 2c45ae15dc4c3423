"""Round 15's diagnosis: each miss of a metric-cma setting against cholesky-cma (a pairing where its best-observed
image's clean value never reaches cholesky-cma's final one), by kind:

- selection: the search showed an image at or above the target (best clean value of any image shown), but the image
  with the highest single noisy score, which the analysis credits, is a lower one (a noise-inflated elite);
- near: nothing it showed reached the target, the best within 15% of it;
- far: the best it showed is more than 15% below the target (a search settled on a poorer region).

Also: the misses had both optimizers been credited with the best image they showed (its clean value), not the one
with the highest noisy score.

python diagnose.py FOLDER=LABEL [FOLDER=LABEL ...]   (LABEL: the optimizer's label; S stands for the session setting)
"""

import glob
import sys
from typing import Any

import numpy as np
import pandas as pd

S = "metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"


def load(folder: str) -> tuple[list[dict[str, Any]], dict[str, dict[str, np.ndarray[Any, Any]]]]:
    """The folder's runs, and each run's curves by key (best_clean, best_clean_seen; by generation)."""
    runs = pd.concat(pd.read_parquet(f) for f in glob.glob(f"{folder}/runs/*.parquet")).to_dict("records")
    gens = pd.concat(pd.read_parquet(f) for f in glob.glob(f"{folder}/generations/*.parquet"))
    curves = {}
    for key, group in gens.groupby("key"):
        ordered = group.sort_values("generation")
        curves[str(key)] = {
            name: np.asarray(ordered[name], dtype=np.float64) for name in ("best_clean", "best_clean_seen")
        }
    return [{str(k): v for k, v in run.items()} for run in runs], curves


for folder, label in (a.split("=", 1) for a in sys.argv[1:]):
    runs, curves = load(folder)
    label = label.replace("S", S, 1)
    chol = {(r["unit"], r["noise"], r["seed"]): r for r in runs if r["optimizer"] == "cholesky-cma"}
    kinds: dict[str, list[str]] = {"selection": [], "near": [], "far": []}
    last, shown_misses = [], 0
    for r in runs:
        pairing = (r["unit"], r["noise"], r["seed"])
        if r["optimizer"] != label or pairing not in chol:
            continue
        target = chol[pairing]["best_clean"]
        curve = curves[r["key"]]
        seen = curve["best_clean_seen"]
        shown_misses += bool(seen[-1] < curves[chol[pairing]["key"]]["best_clean_seen"][-1])
        rises = np.flatnonzero(np.diff(seen) > 1e-9)
        last.append(int(rises.max() + 1) if len(rises) else 0)
        if (curve["best_clean"] >= target).any():
            continue
        kind = "selection" if seen[-1] >= target else ("near" if seen[-1] >= 0.85 * target else "far")
        kinds[kind].append(
            f"{r['unit']}/{r['noise']}/{r['seed']} (credited {r['best_clean'] / target:.2f} of the target, best shown "
            f"{seen[-1] / target:.2f}, last rise at generation {last[-1]})"
        )
    misses = sum(len(v) for v in kinds.values())
    print(f"\n{folder} {label.replace(S, 'S')}: misses {misses} of {len(last)}; median generation of the last rise of "
          f"the best clean value shown: {np.median(last):.0f}")  # fmt: skip
    print(f"  misses if both were credited with the best image they showed (not the best-observed one): {shown_misses}")
    for kind, items in kinds.items():
        print(f"  {kind} ({len(items)}): " + "; ".join(items))
