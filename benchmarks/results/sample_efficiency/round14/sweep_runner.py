"""Round 14's runner: benchmarks/sample_efficiency.py's sweep, for noise models the sweep file did not yet accept
when round 14 ran (SweepConfig checked noise names against the four published levels; the engine runs any model of
evostim.clients.simulation.neurons). Same units, optimizer entries, basis, precision and calibration.

    python sweep_runner.py SPLIT SKIP UNITS SEEDS NOISE GENERATIONS OUT OPTIMIZERS
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from benchmarks.sample_efficiency import BASELINE, _checkpoints, optimizer_entries
from evostim.clients.sweeps.efficiency import sample_efficiency
from evostim.clients.sweeps.sweep import SweepConfig, run_sweep
from evostim.clients.sweeps.unit_pool import responsive_units

split, skip, count, seeds, noise, generations, out, labels = sys.argv[1:9]
out_dir = Path(out)
out_dir.mkdir(parents=True, exist_ok=True)
names = [n for n in labels.split(",") if n]
units = responsive_units(split, int(skip) + int(count))[int(skip) :]  # type: ignore[arg-type]
print(f"{split} units: {', '.join(units)}", flush=True)
config = SweepConfig.model_validate(
    {
        "units": units,
        "optimizers": optimizer_entries(names, Path("generators/metrics/dcgan-faces.metric.npz").resolve()),
        "seeds": int(seeds),
        "noise": ["poisson"],
        "generations": int(generations),
        "code_norm_constraint": True,
        "precision": "bf16",
        "random_codes": 10_000,
    }
).model_copy(update={"noise": noise.split(",")})
run_sweep(config, out_dir, workers=2, progress=False)
efficiency = sample_efficiency(out_dir, baseline=BASELINE, checkpoints=_checkpoints(int(generations)))
print(efficiency.table() if hasattr(efficiency, "table") else efficiency)
for name in reversed(names):
    if name != BASELINE:
        mid, lo, hi = efficiency.row(name).ratio
        ratio = f"ratio {mid:.2f} (95% CI {lo:.2f}..{hi:.2f})"
        print(f"{name} vs {BASELINE}: evaluations to reach its final score: {ratio}")
