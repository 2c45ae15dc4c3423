"""Full-space search vs search in the top-k eigenbasis of the generator's metric, at the same budget.

One `evostim sweep` on the in-silico panel of benchmarks/search_quality.py (units of the shipped CNNs through
dcgan-faces, 3,000 evaluations, Poisson spiking): cholesky-cma in all 100 latent dimensions against the same
optimizer inside `subspace` with the top k eigenvectors of the metric (k in --dimensions), computed first with
generators.metric (or read from --basis; saved to OUT for the sweep's workers). Value: the clean activation of
each run's best image divided by the best any run reached on that unit; mean with a 95% bootstrap CI and the win
rate against full-space search.
The last line reads `best subspace k=K vs full: mean normalized score A vs B (ratio R, 95% CI lo..hi)`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evostim.clients.sweeps.panels import CNN_UNITS
from evostim.clients.sweeps.sweep import SweepConfig, ratio_ci, run_sweep, summarize
from evostim.generators import load_generator
from evostim.generators.metric import MetricBasis, metric_eigenbasis, spectrum_coverage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dimensions", default="10,20,30,50", help="k values (top eigenvectors searched)")
    parser.add_argument("--units", type=int, default=12)
    parser.add_argument("--unit-stride", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--noise", default="poisson")
    parser.add_argument("--generations", type=int, default=75)
    parser.add_argument("--samples", type=int, default=32, help="codes the metric is averaged over")
    parser.add_argument("--basis", type=Path, help="a saved metric file (default: compute it)")
    parser.add_argument("--workers", type=int, help="Ray workers (default: every core; 0: in this process)")
    parser.add_argument("--quick", action="store_true", help="4 units, k in 10,30, 40 generations")
    parser.add_argument("--out", type=Path, default=Path("out/subspace"))
    args = parser.parse_args()
    if args.quick:
        args.units, args.unit_stride, args.dimensions, args.generations = 4, 6, "10,30", 40
    args.out.mkdir(parents=True, exist_ok=True)
    if args.basis:
        metric = MetricBasis.load(args.basis)
    else:
        generator = load_generator("dcgan-faces", "cpu")
        codes = torch.as_tensor(np.random.default_rng(0).standard_normal((args.samples, 100)), dtype=torch.float32)
        metric = metric_eigenbasis(generator.module, codes, 100, generator="dcgan-faces")
    ninety, ninety_nine = spectrum_coverage(metric.eigenvalues, metric.trace)
    print(f"dcgan-faces metric over {metric.samples} codes: 90% of the trace in {ninety} directions, 99% in "
          f"{ninety_nine} (of 100)")  # fmt: skip
    basis_file = args.out / "dcgan-faces.metric.npz"
    metric.save(basis_file)  # the sweep's workers read the basis from this file

    ks = [int(k) for k in args.dimensions.split(",")]
    subspaces = [
        {"name": "subspace", "label": f"subspace-k{k}", "params": {"basis": str(basis_file.resolve()), "dimensions": k}}
        for k in ks
    ]
    config = SweepConfig.model_validate(
        {
            "units": list(CNN_UNITS[:: args.unit_stride][: args.units]),
            "optimizers": ["cholesky-cma", *subspaces],
            "seeds": args.seeds,
            "noise": args.noise.split(","),
            "generations": args.generations,
        }
    )
    run_sweep(config, args.out, workers=args.workers, progress=False)
    summary = summarize(args.out, baseline="cholesky-cma")

    def pooled(label: str) -> np.ndarray:
        return np.concatenate([values for (name, _, _), values in sorted(summary.normalized.items()) if name == label])

    full = pooled("cholesky-cma")
    scored = {f"subspace-k{k}": pooled(f"subspace-k{k}") for k in ks}
    best = max(scored, key=lambda label: scored[label].mean())
    for label, values in scored.items():
        wins = np.mean(values > full)
        print(f"{label} vs full space: {values.mean():.3f} vs {full.mean():.3f}, wins {wins:.0%}")
    lo, hi = ratio_ci(scored[best], full, np.random.default_rng(1))
    mine, theirs = scored[best].mean(), full.mean()
    print(f"best subspace k={best.removeprefix('subspace-k')} vs full: mean normalized score {mine:.3f} "
          f"vs {theirs:.3f} (ratio {mine / theirs:.2f}, 95% CI {lo:.2f}..{hi:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
