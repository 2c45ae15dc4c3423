"""Search quality: which optimizer evolves the strongest stimuli, on an in-silico panel of units (a sweep).

Defined like the field's benchmark (Wang & Ponce, GECCO 2022): 75 generations x 40 = 3,000 evaluations per run;
units from several layers of the shipped CNNs (MTCNN ONet/RNet) seen through the embedded generator (dcgan-faces);
noise score = activation * max(0, 1 + sigma * N(0, 1)) for sigma in {0, 0.2, 0.5}, and a Poisson spike-count model
(baseline 2, the 99th percentile of random images -> 20 spikes). A second panel of 4,096-d synthetic units (smooth
bumps in a random low-dimensional projection; every other direction irrelevant, as in fc6) measures
high-dimensional behaviour without fc6 weights.

Each panel is one ``evostim sweep`` (evostim.clients.sweeps.sweep): the runs go through the batched engine on Ray
workers (``--workers``; 0 runs in this process), results land in OUT/<panel>/ as Parquet, a run of the same command
resumes, and the table is the sweep's summary. The reported value of a run is the *clean* activation of its best
image, normalized (a) by the best clean activation of any image any run proposed on that unit (the paper's metric)
and (b) by the unit's maximum over 10,000 random prior codes.

Outside references in the same run: pycma (full CMA-ES), cmaes (full CMA; SepCMA at 4,096 d, where its
eigendecomposition takes seconds per step) and nevergrad's NGOpt. The last line is
`default NAME vs ga: mean normalized score A vs B (ratio R, 95% CI lo..hi)`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evostim import optimizers
from evostim.clients.sweeps.panels import CNN_UNITS, NOISE_LEVELS, synthetic_unit_names
from evostim.clients.sweeps.sweep import SweepConfig, SweepSummary, ratio_ci, run_sweep, summarize

EVOSTIM = ("cholesky-cma", "sphere-cma", "sep-cma", "ga")
OUTSIDE = ("pycma", "cmaes", "ngopt")


def optimizer_entry(label: str) -> dict[str, Any]:
    """``name`` or ``name:param=value:param=value``, e.g. ``cholesky-cma:sigma=1.5`` or ``metric-cma:inner=sphere-cma``
    (values are read as JSON where they can be: numbers, true/false; as text otherwise)."""
    name, *settings = label.split(":")
    params = {key: _value(value) for key, value in (s.split("=", 1) for s in settings)}
    return {"name": name, "params": params, "label": label}


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def panel_config(panel: str, args: argparse.Namespace, names: list[str]) -> SweepConfig:
    if panel == "cnn":
        units, seeds = list(CNN_UNITS[:: args.unit_stride][: args.units]), args.seeds
    else:
        units, seeds = synthetic_unit_names(args.synthetic_units), args.synthetic_seeds
        names = ["cmaes-sep" if n == "cmaes" else n for n in names]  # full cmaes: seconds per step at 4,096 d
    return SweepConfig.model_validate(
        {
            "panel": panel,
            "units": units,
            "optimizers": [optimizer_entry(n) for n in names],
            "seeds": seeds,
            "noise": args.noise.split(","),
            "generations": args.generations,
            "random_codes": args.random_codes,
            "code_norm_constraint": args.code_norm_constraint,
            "precision": args.precision,
        }
    )


def pooled_ratio(summaries: list[SweepSummary], mine: str, theirs: str) -> str:
    values: dict[str, list[float]] = {mine: [], theirs: []}
    for summary in summaries:
        for (name, _, _), normalized in sorted(summary.normalized.items()):
            if name in values:
                values[name].extend(normalized.tolist())
    if not (values[mine] and values[theirs]):
        return f"default {mine} vs {theirs}: not compared (run both: --optimizers {mine},{theirs},...)"
    a, b = np.array(values[mine]), np.array(values[theirs])
    if len(a) != len(b):  # a sweep stopped part way: the runs are not paired yet
        return f"default {mine} vs {theirs}: not compared ({len(a)} runs against {len(b)}; resume the sweep)"
    lo, hi = ratio_ci(a, b, np.random.default_rng(1))
    return (f"default {mine} vs {theirs}: mean normalized score {a.mean():.3f} vs {b.mean():.3f} "
            f"(ratio {a.mean() / b.mean():.2f}, 95% CI {lo:.2f}..{hi:.2f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a reduced panel in a few minutes")
    parser.add_argument("--panels", default="cnn,synthetic", help="cnn, synthetic or both (comma-separated)")
    parser.add_argument("--units", type=int, default=len(CNN_UNITS), help="CNN units (from the list of 24)")
    parser.add_argument("--unit-stride", type=int, default=1, help="take every n-th unit of the list")
    parser.add_argument("--synthetic-units", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--synthetic-seeds", type=int, default=2)
    parser.add_argument("--noise", default=",".join(NOISE_LEVELS))
    parser.add_argument("--generations", type=int, default=75)
    parser.add_argument(
        "--optimizers", default=",".join(EVOSTIM + OUTSIDE), help="names, or name:param=value to compare settings"
    )
    parser.add_argument("--random-codes", type=int, default=10_000)
    parser.add_argument(
        "--code-norm-constraint",
        action="store_true",
        help="show the codes projected on the prior's sphere, as sessions do by default for dcgan-faces",
    )
    parser.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default="fp32",
        help="bf16: about 1.8x faster on this CPU; the reduced panel's table moved by 0.03 at most (README)",
    )
    parser.add_argument("--workers", type=int, help="Ray workers (default: every core; 0: in this process)")
    parser.add_argument("--out", type=Path, default=Path("out/search_quality"))
    args = parser.parse_args()
    if args.quick:
        args.units, args.unit_stride, args.synthetic_units, args.seeds, args.synthetic_seeds = 6, 4, 3, 1, 1
        args.noise, args.generations, args.random_codes = "0.5,poisson", 40, 2000
    names = [n for n in args.optimizers.split(",") if n]
    print(f"{args.generations} generations x 40 = {args.generations * 40} evaluations per run; noise {args.noise}; "
          f"optimizers {names}", flush=True)  # fmt: skip
    summaries = []
    for panel in [p for p in args.panels.split(",") if p]:
        started = time.perf_counter()
        config = panel_config(panel, args, names)
        ran = run_sweep(config, args.out / panel, workers=args.workers, progress=False)
        print(f"\n{panel}: {ran} runs in {time.perf_counter() - started:.0f} s (results in {args.out / panel}/)")
        summaries.append(summarize(args.out / panel))
    print(pooled_ratio(summaries, optimizers.DEFAULT_OPTIMIZER, "ga"))


if __name__ == "__main__":
    main()
