"""``evostim sweep``: in-silico runs, units x optimizers x seeds x noise x budgets, on Ray; resumable."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evostim.cli._common import Commands

__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    sweep = commands.add_parser("sweep", help="in-silico runs: units x optimizers x seeds x noise x budgets, on Ray")
    sweep.add_argument("config", nargs="?", help="a YAML or TOML file of the grid (default: the 24-unit panel)")
    sweep.add_argument(
        "--out", default="out/sweep", help="results folder; a sweep run again into it resumes (default: %(default)s)"
    )
    sweep.add_argument("--address", help="a Ray cluster's address (default: a local Ray on every core)")
    sweep.add_argument("--workers", type=int, help="Ray workers, one CPU each (0: in this process, no Ray)")
    sweep.add_argument("--units", help="comma-separated units, e.g. onet.conv3.9,rnet.dense4.3")
    sweep.add_argument("--optimizers", help="comma-separated optimizer names")
    sweep.add_argument("--seeds", type=int, help="seeds per run: 0..N-1")
    sweep.add_argument(
        "--noise",
        help="comma-separated noise models: 0, 0.2, 0.5 (Gaussian), poisson, negbin:F (over-dispersed, Fano F), "
        "drift (a gain declining 30-50%% over the run), negbin:F+drift, recorded (negbin:1.5+drift)",
    )
    sweep.add_argument("--references", type=int, help="reference images shown every generation, never told")
    sweep.add_argument(
        "--drift-correction",
        action="store_true",
        help="divide each generation's scores by the trend of the mean reference responses (evostim.drift)",
    )
    sweep.add_argument("--generations", help="comma-separated budgets in generations")
    sweep.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        help="bf16: about 1.7x faster on CPUs with bf16 instructions; unit responses correlate 0.999 with fp32's",
    )
    sweep.add_argument(
        "--baseline", default="ga", help="the optimizer the table counts wins against (default: %(default)s)"
    )
    sweep.add_argument("--summary-only", action="store_true", help="only print the table of the results in --out")
    sweep.set_defaults(run=sweep_command)


def sweep_command(args: argparse.Namespace) -> None:
    try:
        _sweep(args)
    except KeyboardInterrupt as interrupt:  # Ctrl-C: what was saved and how to go on, not a traceback
        from evostim.clients.sweeps.sweep import SweepInterrupted

        said = (
            str(interrupt)
            if isinstance(interrupt, SweepInterrupted)
            else f"interrupted; finished runs are in {args.out}"
        )
        print(f"evostim sweep: {said.replace('the same sweep', 'the same command')}", file=sys.stderr)
        raise SystemExit(130) from None


def _sweep(args: argparse.Namespace) -> None:
    from evostim.clients.sweeps.grid import SweepConfig, config_with
    from evostim.clients.sweeps.summary import summarize
    from evostim.clients.sweeps.sweep import SweepFailed, check_extras, run_sweep

    try:
        config = SweepConfig.from_file(Path(args.config)) if args.config else SweepConfig()
        config = config_with(
            config,
            units=_listed(args.units),
            optimizers=_listed(args.optimizers),
            seeds=args.seeds,
            noise=_listed(args.noise),
            generations=[int(g) for g in _listed(args.generations) or []],
            precision=args.precision,
            references=args.references,
            drift_correction=args.drift_correction,
        )
    except (OSError, ValueError) as error:
        raise SystemExit(f"evostim sweep: {error}") from None
    out = Path(args.out)
    if not args.summary_only:
        check_extras(args.workers)  # before the plan is printed: a refused sweep says only why
        runs = len(config.specs())
        print(f"sweep: {runs} runs ({len(config.units)} units x {len(config.optimizers)} optimizers x "
              f"{len(config.seeds)} seeds x {len(config.noise)} noise levels x {len(config.generations)} budgets) "
              f"into {out}", flush=True)  # fmt: skip
        try:
            ran = run_sweep(config, out, address=args.address, workers=args.workers)
        except ValueError as error:  # a folder of another problem, or a precision this machine would crawl at
            raise SystemExit(f"evostim sweep: {error}") from None
        except SweepFailed as error:  # a worker's exception, in one line
            raise SystemExit(f"evostim sweep: {error}; the runs finished before are saved in {out}") from None
        print(f"ran {ran} runs ({runs - ran} were already in {out})")
    summarize(out, baseline=args.baseline)
    print(f"results in {out}/ (runs/ and generations/ as Parquet, summary.csv, curves_*.png)")


def _listed(value: str | None) -> list[str] | None:
    return [item for item in value.split(",") if item] if value else None
