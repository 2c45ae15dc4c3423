"""Sweep throughput: closed-loop in-silico evaluations per second per core, batched, on 1 and 2 Ray workers.

One evaluation = one image proposed by an optimizer, decoded by dcgan-faces, scored by an MTCNN unit (ONet and
RNet units mixed), given Poisson noise and told back. The same fixed work (``--tasks`` tasks of ``--runs`` runs of
``--generations`` generations of 40, cholesky-cma) runs three ways:

- reference: one run at a time in one process (each generation's 40 images in one decode), the way a loop over
  runs without the engine goes;
- batched: the engine on one Ray worker (one CPU; a task's runs share one decode and one CNN pass per generation);
- batched on 2 Ray workers: scaling = throughput on 2 / (2 x throughput on 1).

Startup (Ray, loading the models) is left out: every worker runs a small task first. Target (DESIGN.md): at least
600 evaluations/s per core for dcgan-faces + MTCNN units, and at least 0.8 x linear scaling from 1 to 2 workers.
The last line: ``sweep throughput: N evaluations/s per core on K workers (scaling E x)``.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evostim.clients.engine import RunSpec
from evostim.clients.panels import Precision
from evostim.clients.sweep import SweepWorker

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=4, help="tasks (an even number keeps 2 workers equally busy)")
    parser.add_argument("--runs", type=int, default=16, help="runs per task, stepped together")
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--precision", default="bf16,fp32", help="bf16, fp32 or both (the last one's is the last line)")
    parser.add_argument("--quick", action="store_true", help="a small workload (smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.runs, args.generations, args.precision = 2, 2, 2, "fp32"
    work = tasks(args.tasks, args.runs, args.generations)
    shape = f"{args.tasks} tasks x {args.runs} runs x {args.generations} generations x 40 images"
    print(f"{evaluations(work)} evaluations: {shape}; cholesky-cma on dcgan-faces + MTCNN units {', '.join(UNITS)}")
    print(f"{'precision':<10}{'one run at a time':>20}{'batched, 1 worker':>20}{'batched, 2 workers':>20}"
          f"{'per core':>10}{'scaling':>9}")  # fmt: skip
    last = ""
    for precision in args.precision.split(","):
        alone = reference(work, precision)
        one = on_ray(work, 1, precision)
        two = on_ray(work, 2, precision)
        scaling = two / (2 * one)
        print(f"{precision:<10}{alone:>18.0f}/s{one:>18.0f}/s{two:>18.0f}/s{two / 2:>8.0f}/s{scaling:>8.2f}x",
              flush=True)  # fmt: skip
        met = "met" if two / 2 >= TARGET_PER_CORE and scaling >= TARGET_SCALING else "not met"
        print(f"  {precision}: batched / one at a time on one core: {one / alone:.2f} x; target "
              f"(>= {TARGET_PER_CORE:.0f}/s per core, scaling >= {TARGET_SCALING}): {met}")  # fmt: skip
        last = f"sweep throughput: {two / 2:.0f} evaluations/s per core on 2 workers (scaling {scaling:.2f} x)"
    print(last)


if __name__ == "__main__":
    main()
