"""Sample efficiency on held-out units: evaluations each optimizer needs to reach cholesky-cma's final score.

One `evostim sweep` over units the optimizers were not tuned on (the held-out half of the fixed split of every
channel of both shipped CNNs, evostim.clients.sweeps.unit_pool), through the embedded generator (dcgan-faces), at every
noise level (0, 0.2, 0.5 and Poisson spiking; ``--noise`` takes any model of evostim.clients.simulation.neurons,
e.g. ``negbin:1.5``, ``drift`` or ``recorded``, a drifting, over-dispersed neuron), 3,000 evaluations a run, codes
shown on the prior's sphere as sessions show them. ``--references R`` shows R reference images a generation (never
told), ``--drift-correction`` divides each generation's scores by the trend of their mean responses so far (the
rule a session with ``objective.drift_correction`` applies: evostim.drift).
For each (unit, noise, seed) the target is cholesky-cma's final value (the clean activation of its best-observed
image at 3,000 evaluations); an optimizer's cost is the evaluations it needed to reach it. The table gives the
median cost / 3,000 with a bootstrap CI over units x seeds, and the normalized value (/ the best any run reached on
the unit) at 800, 1,600 and 3,000 evaluations (evostim.clients.sweeps.efficiency). It writes a montage of each
optimizer's best image on a few held-out units (Poisson noise, or the first noise named; seed 0) to OUT/montage.png.
``--quick``: 4 units x 2 seeds, 40 generations (1,600 evaluations) of the ``recorded`` neuron.

A bare name (``metric-cma``) runs as a session that names it runs, planned to ``--generations``: with the defaults its
optimizer declares for a session on dcgan-faces (two starts, refreshes of the metric at the mean, the schedule of
that length: ``session_defaults``), its basis the metric file this benchmark uses; ``name:param=value`` runs with
exactly the parameters given (the sweep engine adds no defaults), as the rounds under benchmarks/results/ did.

The last line reads `NAME vs cholesky-cma: evaluations to reach its final score: ratio R (95% CI lo..hi)`, for the
first optimizer named after the baseline (the candidate); the lines above it, the same for the others.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.search_quality import optimizer_entry
from evostim.clients.simulation.neurons import NOISE_LEVELS
from evostim.clients.sweeps.efficiency import sample_efficiency
from evostim.clients.sweeps.sweep import SweepConfig, read_results, run_sweep
from evostim.clients.sweeps.unit_pool import SPLITS, responsive_units
from evostim.generators import generator_spec
from evostim.generators.host import generator_host, session_parameters
from evostim.optimizers import Host

BASELINE = "cholesky-cma"
GENERATOR = "dcgan-faces"
NEEDS_METRIC = ("metric-cma", "subspace")


def optimizer_entries(labels: list[str], basis_file: Path, generations: int | None = None) -> list[dict[str, Any]]:
    """The sweep's optimizers (``name`` or ``name:param=value:...``); those that search along the generator's
    metric get the saved metric file as their basis. ``generations``: a bare name gets the parameters of a session
    planned to that many generations (None: none, as the rounds' runners ask)."""
    entries = [optimizer_entry(label) for label in labels]
    for entry in entries:
        if generations is not None and entry["name"] == entry["label"]:
            entry["params"] = session_parameters(entry["name"], {}, _host(), generations=generations)
        if entry["name"] in NEEDS_METRIC and entry["params"].get("basis") in (None, f"{GENERATOR}.metric"):
            entry["params"]["basis"] = str(basis_file)
    return entries


def _host() -> Host:
    """The sweep's generator as a session's host (its network is only loaded if a metric is asked for)."""
    from evostim.generators import load_generator

    return generator_host(generator_spec(GENERATOR), lambda: load_generator(GENERATOR, "cpu").module)


def _best_runs(
    out: Path, units: list[str], noise: str, seed: int
) -> tuple[dict[str, float], dict[tuple[str, str], dict[str, Any]]]:
    """(the best clean value any run reached, per unit; the run of each (optimizer, unit) at ``noise`` and ``seed``)."""
    runs, _ = read_results(out)
    ceiling = {u: max(r["best_clean_seen"] for r in runs if r["unit"] == u) for u in units}
    chosen = {(r["optimizer"], r["unit"]): r for r in runs if r["noise"] == noise and r["seed"] == seed}
    return ceiling, chosen


def montage(out: Path, units: list[str], names: list[str], noise: str = "poisson", seed: int = 0) -> Path:
    """A grid of each optimizer's best image (rows) on each unit (columns), labelled with its normalized value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evostim.generators import load_generator

    ceiling, chosen = _best_runs(out, units, noise, seed)
    generator = load_generator("dcgan-faces", "cpu")
    figure, axes = plt.subplots(len(names), len(units), figsize=(1.6 * len(units), 1.95 * len(names)), squeeze=False)
    for row, name in enumerate(names):
        codes = np.array([chosen[(name, unit)]["best_code"] for unit in units])
        images = generator.decode(codes).permute(0, 2, 3, 1).numpy()
        for column, unit in enumerate(units):
            axis = axes[row][column]
            axis.imshow(images[column])
            axis.set(xticks=[], yticks=[])
            axis.set_title(f"{chosen[(name, unit)]['best_clean'] / ceiling[unit]:.2f}", fontsize=8)
        axes[row][0].set_ylabel(name.replace(":", "\n"), fontsize=8)  # a label with settings: one per line
    for column, unit in enumerate(units):
        axes[-1][column].set_xlabel(unit, fontsize=7)
    figure.suptitle(f"best image per optimizer\n{noise} noise, seed {seed}; value / best of any run", fontsize=9)
    figure.tight_layout()
    path = out / "montage.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--optimizers",
        default="cholesky-cma,metric-cma,sphere-cma",
        help="comma-separated names, or name:param=value to compare settings",
    )
    parser.add_argument("--units", type=int, default=18, help="held-out units (round-robin over the 9 layers)")
    parser.add_argument(
        "--skip-units",
        type=int,
        default=0,
        help="leave out the split's first N responsive units (--units 36 --skip-units 36: a fresh panel of 36 "
        "held-out units that no earlier round looked at)",
    )
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument(
        "--noise",
        default=",".join(NOISE_LEVELS),
        help="comma-separated noise models: 0, 0.2, 0.5, poisson, negbin:F, drift, negbin:F+drift, recorded",
    )
    parser.add_argument("--references", type=int, default=0, help="reference images a generation (never told)")
    parser.add_argument(
        "--drift-correction", action="store_true", help="scores / the trend of the reference responses (evostim.drift)"
    )
    parser.add_argument("--generations", type=int, default=75)
    parser.add_argument(
        "--split",
        default="held-out",
        choices=SPLITS,
        help="held-out (default), tuning, or foreign: PNet and the detection heads, outside both (unit_pool.py)",
    )
    parser.add_argument("--basis", type=Path, help="a saved metric file (default: compute it into OUT)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--random-codes", type=int, default=10_000)
    parser.add_argument("--workers", type=int, help="Ray workers (default: every core; 0: in this process)")
    parser.add_argument(
        "--quick", action="store_true", help="4 units, 2 seeds, the recorded neuron, 40 generations (1,600 evaluations)"
    )
    parser.add_argument("--out", type=Path, default=Path("out/sample_efficiency"))
    args = parser.parse_args()
    if args.quick:
        args.units, args.seeds, args.noise, args.generations, args.random_codes = 4, 2, "recorded", 40, 1000
    return args


def _basis_file(args: argparse.Namespace, names: list[str]) -> Path:
    """The saved metric the optimizers that need one get: --basis, or the prior's metric computed into OUT."""
    basis_file: Path = args.basis or (args.out / "dcgan-faces.metric.npz")
    if any(optimizer_entry(name)["name"] in NEEDS_METRIC for name in names) and not basis_file.exists():
        from evostim.generators.metric import prior_metric

        prior_metric("dcgan-faces").save(basis_file)
    return basis_file


def main() -> None:
    args = _arguments()
    args.out.mkdir(parents=True, exist_ok=True)
    names = [n for n in args.optimizers.split(",") if n]
    basis_file = _basis_file(args, names)
    units = responsive_units(args.split, args.skip_units + args.units)[args.skip_units :]
    print(f"{args.split} units: {', '.join(units)}")
    entries = optimizer_entries(names, basis_file.resolve(), args.generations)
    for entry in entries:
        if entry["name"] == entry["label"] and entry["params"]:
            print(f"{entry['name']} as a session planned to {args.generations} generations runs it: {entry['params']}")
    config = SweepConfig.model_validate(
        {
            "units": units,
            "optimizers": entries,
            "seeds": args.seeds,
            "noise": args.noise.split(","),
            "generations": args.generations,
            "code_norm_constraint": True,
            "precision": args.precision,
            "random_codes": args.random_codes,
            "references": args.references,
            "drift_correction": args.drift_correction,
        }
    )
    run_sweep(config, args.out, workers=args.workers, progress=False)
    efficiency = sample_efficiency(args.out, baseline=BASELINE, checkpoints=_checkpoints(args.generations))
    shown = "poisson" if "poisson" in config.noise else config.noise[0]
    print(f"montage: {montage(args.out, units[:6], names, shown)}")
    for name in reversed(names):  # the first named after the baseline (the candidate) last
        if name != BASELINE:
            mid, lo, hi = efficiency.row(name).ratio
            ratio = f"ratio {mid:.2f} (95% CI {lo:.2f}..{hi:.2f})"
            print(f"{name} vs {BASELINE}: evaluations to reach its final score: {ratio}")


def _checkpoints(generations: int, population: int = 40) -> list[int]:
    budget = generations * population
    return sorted({min(800, budget), min(1600, budget), budget})


if __name__ == "__main__":
    main()
