"""``make demo``: an in-silico closed-loop evolution against a real local server.

Starts the server (uvicorn, SQLite under out/demo/data), calibrates a simulated MTCNN unit on random faces (under
a noise model of evostim.clients.simulation.neurons: Poisson by default, ``recorded`` for a drifting, over-dispersed
neuron), evolves over HTTP, stops the server, prints a table and writes a montage and a score curve.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from PIL import Image

from evostim.clients.analysis.evolution import montage
from evostim.clients.http.client import Client
from evostim.clients.http.local_server import LocalServer
from evostim.clients.simulation.insilico import GenerationResult, run_closed_loop
from evostim.clients.simulation.neurons import SimulatedNeuron

__all__ = ["run_demo"]

GENERATOR = "dcgan-faces"
CHANNEL = "unit"


def _montage(results: list[GenerationResult], path: Path) -> None:
    """The best image of each generation, labelled with its generation and measured score."""
    labels = [f"gen {r.number}: {r.evolved_max:.0f}" for r in results]
    Image.fromarray(montage(np.stack([r.best_image for r in results]), labels, tile=96)).save(path)


def _score_curve(results: list[GenerationResult], chance: float, unit: str, path: Path) -> None:
    numbers = [r.number for r in results]
    figure, axis = plt.subplots(figsize=(7, 4), dpi=120)
    axis.plot(numbers, [r.evolved_max for r in results], label="evolved: max (measured)", color="tab:red")
    axis.plot(numbers, [r.evolved_mean for r in results], label="evolved: mean (measured)", color="tab:orange")
    axis.plot(
        numbers, [r.clean_max for r in results], "--", label="best evolved: expected count", color="tab:red", alpha=0.5
    )
    references = [np.nan if r.reference_mean is None else r.reference_mean for r in results]
    axis.plot(numbers, references, label="reference images: mean", color="tab:blue")
    axis.axhline(chance, color="gray", linestyle=":", label="best of 1,000 random faces (expected)")
    axis.set(xlabel="generation", ylabel="spike count per presentation", title=f"evostim demo: unit {unit}")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # generations are whole numbers
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def run_demo(
    *,
    out_dir: Path,
    unit: str = "onet.conv3.9",
    generations: int = 60,
    seed: int = 0,
    repetitions: int = 2,
    code_norm: float | Literal["auto"] | None = "auto",
    optimizer: str | None = None,
    noise: str = "poisson",
) -> float:
    """Run the demo; returns the best score gain: the noise-free expected count of the best evolved image of the
    last generation over that of generation 0 (the simulated neuron knows it; a rig only sees noisy counts)."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    neuron = SimulatedNeuron.calibrated(unit, seed=seed, noise=noise, generations=generations, generator=GENERATOR)
    chance = neuron.calibration.best_expected if neuron.calibration else float("nan")
    print(f"unit {unit}: calibrated; best expected count over 1,000 random faces: {chance:.1f}; noise {noise}")
    header = f"{'gen':>4} {'evolved mean':>13} {'evolved max':>12} {'reference mean':>15} {'best (expected)':>16}"
    with LocalServer(out_dir / "data") as server, Client(server.url) as client:
        print(f"server: {server.url} (SQLite in {out_dir / 'data'})")
        created = client.create_session(
            generator=GENERATOR,
            seed=seed,
            channels=[CHANNEL],
            population_size=40,
            code_norm=code_norm,
            optimizer={"name": optimizer} if optimizer else {},  # none named: the generator's default
            references={"builtin": 4},
            metadata={"simulated_unit": unit, "demo": True},
        )
        session_id = created["session"]["id"]
        chosen = created["session"]["config"]["optimizer"]["name"]
        print(f"session {session_id} ({chosen}): {generations} generations of 40 evolved + 4 reference images\n")
        print(header)

        def show(result: GenerationResult) -> None:
            reference = f"{result.reference_mean:15.1f}" if result.reference_mean is not None else f"{'-':>15}"
            print(
                f"{result.number:4d} {result.evolved_mean:13.1f} {result.evolved_max:12.1f} {reference} "
                f"{result.clean_max:16.1f}",
                flush=True,
            )

        results = run_closed_loop(
            client,
            session_id,
            created["generation"],
            neuron,
            channel=CHANNEL,
            generations=generations,
            repetitions=repetitions,
            on_generation=show,
        )
    _montage(results, out_dir / "best_per_generation.png")
    _score_curve(results, chance, unit, out_dir / "score_curve.png")
    gain = results[-1].clean_max / results[0].clean_max  # the neuron's noise-free response: what was really gained
    measured_gain = results[-1].evolved_max / results[0].evolved_max  # between noisy maxima, so inflated by noise
    print(f"\nwrote {out_dir / 'best_per_generation.png'} and {out_dir / 'score_curve.png'}")
    print(
        f"best expected count: {results[-1].clean_max:.1f} (best of 1,000 random faces: {chance:.1f}, "
        f"{results[-1].clean_max / chance:.2f} x); wall time {time.perf_counter() - started:.0f} s"
    )
    if neuron.model.kind.drift:
        print(f"the neuron's gain drifted from 1 to {neuron.recording.gain_at(generations - 1):.2f} over the session")
    print(f"best score gain: {gain:.2f} x (noise-free; between the measured, noisy maxima: {measured_gain:.2f} x)")
    return gain
