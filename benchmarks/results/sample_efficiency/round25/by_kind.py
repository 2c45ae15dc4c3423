"""Round 25's figures by kind of unit: PNet's trunk, PNet's heads, ONet's and RNet's heads (or any grouping of a
folder's units by the prefix before the channel). Per optimizer and kind: pairings, mean final value / the best any
run of the folder reached on the unit, and misses at the end (final value below cholesky-cma's on the pairing).

    python by_kind.py FOLDER
"""

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from evostim.clients.sweeps.sweep import read_results

HEADS = ("dense6_", "dense5_", "conv4_")


def kind(unit: str) -> str:
    net, layer, _ = unit.split(".")
    return f"{net} {'head' if layer.startswith(HEADS) else 'trunk'}"


runs, _ = read_results(Path(sys.argv[1]))
ceiling: dict[str, float] = defaultdict(float)
for run in runs:
    ceiling[run["unit"]] = max(ceiling[run["unit"]], run["best_clean_seen"])
value = {(r["optimizer"], r["unit"], r["noise"], r["seed"]): r["best_clean"] / ceiling[r["unit"]] for r in runs}
groups: dict[tuple[str, str], list[tuple[float, bool]]] = defaultdict(list)
for (optimizer, unit, noise, seed), v in value.items():
    target = value[("cholesky-cma", unit, noise, seed)]
    groups[(optimizer, kind(unit))].append((v, v < target))
print("| optimizer | units | pairings | value at the end | misses at the end |\n|---|---|---|---|---|")
for (optimizer, name), rows in sorted(groups.items()):
    values, misses = np.array([v for v, _ in rows]), sum(m for _, m in rows)
    print(f"| {optimizer} | {name} | {len(rows)} | {values.mean():.3f} | {misses} |")
