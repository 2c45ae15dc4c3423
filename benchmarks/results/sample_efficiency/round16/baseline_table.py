"""Round 16: the decision's folder with cholesky-cma's drift-corrected runs added (FOLDER_cholesky_drift): how
much the correction moves the baseline, and C1 / C1+drift4 against either baseline (values / the best any run of
both folders reached on the unit; ratio and misses against the named baseline's final value, pooled 144 pairings).

    python baseline_table.py FOLDER
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from evostim.clients.sweeps.efficiency import sample_efficiency

C1 = "metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
C1 += ":decay_generations=37"
folder = Path(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    for source in (folder, Path(f"{folder}_cholesky_drift")):
        for part in ("runs", "generations"):
            (Path(tmp) / part).mkdir(exist_ok=True)
            for path in (source / part).glob("*.parquet"):
                shutil.copy(path, Path(tmp) / part / f"{source.name}_{path.name}")
    here = Path(__file__).resolve().parent
    subprocess.run([sys.executable, str(here / "paired.py"), tmp, "cholesky-cma"], check=True)
    print("\n| baseline | setting | noise | ratio [95% CI] | misses | value at 1,600 [95% CI] |")
    print("|---|---|---|---|---|---|")
    for baseline in ("cholesky-cma", "cholesky-cma+drift4"):
        efficiency = sample_efficiency(Path(tmp), baseline=baseline, checkpoints=(1600,), echo=lambda line: None)
        for row in efficiency.rows:
            if row.optimizer in (baseline, C1, f"{C1}+drift4") and row.noise == "all":
                name = row.optimizer.replace(C1, "C1")
                misses = round((1 - row.reached) * row.pairings)
                ratio = "{:.3f} [{:.3f}, {:.3f}]".format(*row.ratio)
                value = "{:.3f} [{:.3f}, {:.3f}]".format(*row.normalized[1600])
                print(f"| {baseline} | {name} | {row.noise} | {ratio} | {misses} | {value} |")
