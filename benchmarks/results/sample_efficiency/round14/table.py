"""Round 14's tables: per optimizer and noise model, from a sweep folder (evostim.clients.sweeps.efficiency).

python table.py FOLDER [FOLDER...]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from evostim.clients.sweeps.efficiency import sample_efficiency

SESSION = "metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"


def short(label: str) -> str:
    return label.replace(SESSION, "session").replace("metric-cma:angle_end=2:mirrored=true:refresh_every=5:", "mc:")


def ci(values: tuple[float, float, float], digits: int = 2) -> str:
    return f"{values[0]:.{digits}f} [{values[1]:.{digits}f}, {values[2]:.{digits}f}]"


for folder in sys.argv[1:]:
    efficiency = sample_efficiency(Path(folder), echo=lambda line: None)
    budget = efficiency.budget
    points = sorted({min(1600, budget), budget})
    print(f"\n{folder}: budget {budget} evaluations")
    print(
        "| optimizer | noise | pairings | ratio [95% CI] | misses | ERT ratio | median ratio | "
        + " | ".join(f"value at {n:,} [95% CI]" for n in points)
        + " |"
    )
    print("|---" * (7 + len(points)) + "|")
    for row in efficiency.rows:
        misses = round((1 - row.reached) * row.pairings)
        values = " | ".join(ci(row.normalized[n], 3) for n in points)
        print(
            f"| {short(row.optimizer)} | {row.noise} | {row.pairings} | {ci(row.ratio)} | {misses} "
            f"({1 - row.reached:.0%}) | {ci(row.ert_ratio)} | {ci(row.median_ratio)} | {values} |"
        )
