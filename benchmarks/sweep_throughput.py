"""Sweep throughput: closed-loop in-silico evaluations per second per core, batched, on 1 and 2 Ray workers.

One evaluation = one image proposed by an optimizer, decoded by dcgan-faces, scored by an MTCNN unit (ONet and
RNet units mixed), given Poisson noise and told back. The same fixed work (``--tasks`` tasks of ``--runs`` runs of
``--generations`` generations of 40, cholesky-cma) runs three ways:

- reference: one run at a time in one process (each generation's 40 images in one decode), the way a loop over
  runs without the engine goes;
- batched: the engine on one Ray worker (one CPU; a task's runs share one decode and one CNN pass per generation);
- batched on 2 Ray workers: scaling = throughput on 2 / (2 x throughput on 1).

Startup (Ray, loading the models) is left out: every worker runs a small task first. This machine's speed drifts
by 10-20% over tens of seconds (a shared VM), so the three are measured in turn ``--rounds`` times and the medians
are reported. It also prints the bound a precision sets: the generator's arithmetic (0.21 GFLOP an image) at the
core's best measured rate on the generator's own middle layer.

Target (DESIGN.md): at least 600 evaluations/s per core for dcgan-faces + MTCNN units, and at least 0.8 x linear
scaling from 1 to 2 workers. The last line: ``sweep throughput: N evaluations/s per core on K workers (scaling E x)``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evostim.clients.sweeps.engine import RunSpec
from evostim.clients.sweeps.panels import Precision, native_bf16
from evostim.clients.sweeps.sweep import SweepWorker

UNITS = ("onet.conv3.9", "onet.conv4.113", "onet.dense5.40", "rnet.conv3.18", "rnet.dense4.3")
TARGET_PER_CORE = 600.0
TARGET_SCALING = 0.8


def tasks(count: int, runs: int, generations: int) -> list[list[RunSpec]]:
    specs = [
        RunSpec(optimizer="cholesky-cma", unit=UNITS[i % len(UNITS)], noise="poisson", seed=i, generations=generations)
        for i in range(count * runs)
    ]
    return [specs[i * runs : (i + 1) * runs] for i in range(count)]


def evaluations(work: list[list[RunSpec]]) -> int:
    return sum(spec.generations * spec.population for task in work for spec in task)


GAINS = dict.fromkeys(UNITS, 1.0)


def reference(work: list[list[RunSpec]], precision: Precision) -> float:
    """One run at a time, in this process on one thread: evaluations per second."""
    worker = SweepWorker("cnn", UNITS, precision, threads=1)
    worker.run(work[0][:1], GAINS)  # warm
    started = time.perf_counter()
    for task in work:
        for spec in task:
            worker.run([spec], GAINS)
    return evaluations(work) / (time.perf_counter() - started)


def on_ray(work: list[list[RunSpec]], workers: int, precision: Precision) -> float:
    """The engine on ``workers`` Ray actors of one CPU each: evaluations per second."""
    import ray

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        actor = ray.remote(num_cpus=1)(SweepWorker)
        actors: list[Any] = [actor.remote("cnn", UNITS, precision) for _ in range(workers)]
        warm = tasks(1, 2, 1)[0]
        ray.get([a.run.remote(warm, GAINS) for a in actors])
        started = time.perf_counter()
        ray.get([a.run.remote(task, GAINS) for a, task in zip(itertools.cycle(actors), work, strict=False)])
        return evaluations(work) / (time.perf_counter() - started)
    finally:
        ray.shutdown()


DCGAN_GFLOP = 0.209  # dcgan-faces, one 64x64 image: 104.5 M multiply-adds (its first and last layers are 4%)


def decoder_bound(precision: Precision) -> float:
    """Images/s on one core if the whole decoder ran at the rate of its 256 -> 128 channel layer (its best)."""
    import torch

    torch.set_num_threads(1)
    layer = torch.nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False).eval().to(memory_format=torch.channels_last)
    maps = torch.randn(40, 256, 8, 8).contiguous(memory_format=torch.channels_last)
    lowered = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    with torch.inference_mode(), lowered:
        layer(maps)
        best = min(_seconds(lambda: layer(maps)) for _ in range(20))
    gflops = 2 * 40 * 8 * 8 * 256 * 128 * 16 / best / 1e9
    return gflops / DCGAN_GFLOP


def _seconds(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=4, help="tasks (an even number keeps 2 workers equally busy)")
    parser.add_argument("--runs", type=int, default=16, help="runs per task, stepped together")
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--precision", default="bf16,fp32", help="bf16, fp32 or both (the last one's is the last line)")
    parser.add_argument("--rounds", type=int, default=3, help="measure each way this many times; report medians")
    parser.add_argument("--quick", action="store_true", help="a small workload (smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.runs, args.generations, args.precision, args.rounds = 2, 2, 2, "fp32", 1
    work = tasks(args.tasks, args.runs, args.generations)
    shape = f"{args.tasks} tasks x {args.runs} runs x {args.generations} generations x 40 images"
    print(f"{evaluations(work)} evaluations: {shape}; cholesky-cma on dcgan-faces + MTCNN units {', '.join(UNITS)}")
    print(f"{'precision':<10}{'one run at a time':>20}{'batched, 1 worker':>20}{'batched, 2 workers':>20}"
          f"{'per core':>10}{'scaling':>9}")  # fmt: skip
    last = ""
    for precision in args.precision.split(","):
        if precision == "bf16" and not native_bf16("cpu"):
            print(f"{precision:<10}skipped: this CPU has no AVX512-BF16 or AMX, so bfloat16 is emulated (80x slower)")
            continue
        rounds = [
            (reference(work, precision), on_ray(work, 1, precision), on_ray(work, 2, precision))
            for _ in range(args.rounds)
        ]
        alone, one, two = (statistics.median(way) for way in zip(*rounds, strict=True))
        scaling = two / (2 * one)
        print(f"{precision:<10}{alone:>18.0f}/s{one:>18.0f}/s{two:>18.0f}/s{two / 2:>8.0f}/s{scaling:>8.2f}x",
              flush=True)  # fmt: skip
        met = "met" if two / 2 >= TARGET_PER_CORE and scaling >= TARGET_SCALING else "not met"
        print(f"  {precision}: batched / one at a time on one core: {one / alone:.2f} x; target "
              f"(>= {TARGET_PER_CORE:.0f}/s per core, scaling >= {TARGET_SCALING}): {met}; "
              f"the decoder alone at this core's best {precision} rate: {decoder_bound(precision):.0f}/s")  # fmt: skip
        last = f"sweep throughput: {two / 2:.0f} evaluations/s per core on 2 workers (scaling {scaling:.2f} x)"
    print(last)


if __name__ == "__main__":
    main()
