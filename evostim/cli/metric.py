"""``evostim metric``: the top eigenvectors of a generator's metric, saved for the ``subspace`` optimizer."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from evostim.extras import require

if TYPE_CHECKING:
    from evostim.cli._common import Commands

__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    metric = commands.add_parser("metric", help="top eigenvectors of a generator's metric, saved for `subspace`")
    metric.add_argument("--generator", default="dcgan-faces", help="the generator (default: %(default)s)")
    metric.add_argument(
        "--samples", type=int, default=32, help="codes the metric is averaged over (default: %(default)s)"
    )
    metric.add_argument("--top", type=int, default=40, help="eigenvectors to keep (default: %(default)s)")
    metric.add_argument("--seed", type=int, default=0, help="seed of the sample codes (default: %(default)s)")
    metric.add_argument(
        "--device", default="auto", help="torch device: auto, cpu, cuda, cuda:1, ... (default: %(default)s)"
    )
    metric.add_argument(
        "--weights-dir",
        default=os.environ.get("EVOSTIM_WEIGHTS_DIR", "weights"),
        help="folder of the generator's weights, where the file goes (default: EVOSTIM_WEIGHTS_DIR or weights)",
    )
    metric.add_argument(
        "--window",
        type=float,
        help="weight the pixels by a Gaussian at the image centre, standard deviation this fraction of the image "
        "side (where a lab centres its images on the receptive field); a metric-cma session given the file refreshes "
        "with the same window",
    )
    metric.add_argument("--out", help="file to write (default: WEIGHTS_DIR/GENERATOR.metric.npz)")
    metric.set_defaults(run=metric_command)


def metric_command(args: argparse.Namespace) -> None:
    require("scipy", extra="metric", feature="the metric eigenbasis")  # before loading anything
    from evostim.generators import GeneratorError, generator_spec
    from evostim.generators.metric import prior_metric, spectrum_coverage

    try:
        spec = generator_spec(args.generator)
        result = prior_metric(
            spec.name,
            samples=args.samples,
            top=args.top,
            seed=args.seed,
            device=args.device,
            weights_dir=Path(args.weights_dir),
            window=args.window,
        )
    except (GeneratorError, ValueError) as error:
        raise SystemExit(f"evostim metric: {error}") from None
    out = Path(args.out or Path(args.weights_dir) / f"{spec.name}.metric.npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    result.save(out)
    held = result.eigenvalues.sum() / result.trace
    ninety, ninety_nine = spectrum_coverage(result.eigenvalues, result.trace)
    print(f"{spec.name}: metric over {args.samples} codes; top {args.top} of {spec.latent_dim} directions hold "
          f"{held:.1%} of the trace; 90% in {ninety}, 99% in {ninety_nine} directions "
          f"(more than {args.top} means: not within the top {args.top})")  # fmt: skip
    print(f'eigenbasis saved to {out} (subspace optimizer: "basis": "{out.stem}")')
