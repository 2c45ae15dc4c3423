"""Round 16's runner: round 14's (``../round14/sweep_runner.py``) with the sweep's drift correction as an option, so
that runs with and without it go into one folder and are read against one baseline.

    python sweep_runner.py SPLIT SKIP UNITS SEEDS NOISE GENERATIONS OUT OPTIMIZERS [REFERENCES]

REFERENCES (default 0): with R > 0 every run of this call shows R reference images a generation and its scores are
divided by evostim.drift's factor of their mean responses so far (the engine's ``drift_correction``), and each
optimizer's label gets ``+drift<R>`` (the tables' row name; the run keys differ anyway). With 0 the call is round
14's runner: the same labels and keys, so the runs already in the folder are skipped.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from benchmarks.sample_efficiency import BASELINE, _checkpoints, optimizer_entries
from evostim.clients.sweeps.efficiency import sample_efficiency
from evostim.clients.sweeps.sweep import SweepConfig, run_sweep
from evostim.clients.sweeps.unit_pool import responsive_units

split, skip, count, seeds, noise, generations, out, labels = sys.argv[1:9]
references = int(sys.argv[9]) if len(sys.argv) > 9 else 0
out_dir = Path(out)
out_dir.mkdir(parents=True, exist_ok=True)
names = [n for n in labels.split(",") if n]
units = responsive_units(split, int(skip) + int(count))[int(skip) :]  # type: ignore[arg-type]
print(f"{split} units: {', '.join(units)}; references {references}, drift correction {references > 0}", flush=True)
entries = optimizer_entries(names, Path("generators/metrics/dcgan-faces.metric.npz").resolve())
if references:
    entries = [{**entry, "label": f"{entry['label']}+drift{references}"} for entry in entries]
config = SweepConfig.model_validate(
    {
        "units": units,
        "optimizers": entries,
        "seeds": int(seeds),
        "noise": ["poisson"],
        "generations": int(generations),
        "code_norm_constraint": True,
        "precision": "bf16",
        "random_codes": 10_000,
        "references": references,
        "drift_correction": references > 0,
    }
).model_copy(update={"noise": noise.split(",")})
run_sweep(config, out_dir, workers=2, progress=False)
efficiency = sample_efficiency(out_dir, baseline=BASELINE, checkpoints=_checkpoints(int(generations)))
for row in efficiency.rows:
    if row.noise == "all" and row.optimizer != BASELINE:
        mid, lo, hi = row.ratio
        misses = round((1 - row.reached) * row.pairings)
        print(f"{row.optimizer}: {row.pairings} pairings, ratio {mid:.2f} [{lo:.2f}, {hi:.2f}], misses {misses}")
