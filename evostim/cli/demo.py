"""``evostim demo``: an in-silico closed-loop evolution, a simulated neuron against a real local server."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evostim.cli._common import Commands

__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="evolve images for a simulated neuron against a real local server",
        description="Start a server on a free loopback port, calibrate a simulated neuron (a CNN unit with spiking "
        "noise) and evolve images for it over HTTP; prints a table, writes the images and the score curve.",
    )
    demo.add_argument(
        "--out", default="out/demo", help="where the table, montage and score curve go (default: %(default)s)"
    )
    demo.add_argument(
        "--unit", default="onet.conv3.9", help="simulated unit, net.layer.channel[@y,x] (default: %(default)s)"
    )
    demo.add_argument("--generations", type=_at_least_one, default=60, help="generations to run (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the session and the neuron (default: %(default)s)")
    demo.add_argument(
        "--repetitions", type=_at_least_one, default=2, help="presentations per image (default: %(default)s)"
    )
    demo.add_argument(
        "--noise",
        default="poisson",
        help="the neuron's noise model: poisson, negbin:F (over-dispersed counts, Fano factor F), drift (Poisson, "
        "its gain declining 30-50%% over the session), negbin:F+drift, recorded (negbin:1.5+drift), or a Gaussian "
        "level such as 0.2 (default: %(default)s)",
    )
    demo.add_argument(
        "--optimizer", help="the session's optimizer, e.g. cholesky-cma (default: the generator's, metric-cma)"
    )
    demo.add_argument(
        "--unconstrained",
        action="store_true",
        help="let the code norm grow (super-stimuli; for an optimizer that leaves the sphere, e.g. cholesky-cma)",
    )
    demo.set_defaults(run=demo_command)


def _at_least_one(text: str) -> int:
    """A count of 1 or more (argparse prints the one-line refusal)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _check_optimizer(name: str) -> None:
    """Refuse, in one line and before anything loads, an optimizer that is unknown or whose extra is missing."""
    from evostim.extras import MissingExtra
    from evostim.optimizers import lookup
    from evostim.optimizers.errors import UnknownOptimizer

    try:
        extra = lookup(name).extra
        if extra is not None:
            extra.require(f"the {name} optimizer")
    except (UnknownOptimizer, MissingExtra) as error:
        raise SystemExit(f"evostim demo: --optimizer: {error}") from None


def demo_command(args: argparse.Namespace) -> None:
    from evostim.clients.http.errors import Conflict, InvalidRequest, NotFound
    from evostim.clients.simulation.demo import run_demo
    from evostim.clients.simulation.neurons import Noise, UnitSpec
    from evostim.generators import GeneratorError

    try:
        UnitSpec.parse(args.unit)  # before anything loads
    except ValueError as error:
        raise SystemExit(f"evostim demo: --unit: {error}") from None
    try:
        Noise.parse(args.noise)
    except ValueError as error:
        raise SystemExit(f"evostim demo: --noise: {error}") from None
    if args.optimizer is not None:
        _check_optimizer(args.optimizer)
    try:
        run_demo(
            out_dir=Path(args.out),
            unit=args.unit,
            generations=args.generations,
            seed=args.seed,
            repetitions=args.repetitions,
            code_norm=None if args.unconstrained else "auto",
            optimizer=args.optimizer,
            noise=args.noise,
        )
    except (GeneratorError, FileNotFoundError) as error:  # a weights package (dcgan-faces', MTCNN's) is missing:
        raise SystemExit(f"evostim demo: {error}") from None  # the message says what to install
    except (InvalidRequest, Conflict, NotFound) as error:  # refused what the options asked (a 4xx says why);
        # a server error (5xx) is a bug: its traceback stays
        raise SystemExit(f"evostim demo: the server refused: {error}") from None
