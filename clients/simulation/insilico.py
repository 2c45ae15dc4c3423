"""The closed loop over HTTP with a simulated neuron: fetch images, score them, post counts, repeat.

Exactly what a rig does: the images really are encoded by the server, downloaded, decoded and scored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from tqdm.auto import tqdm

from evostim.clients.http.client import Client
from evostim.clients.simulation.neurons import SimulatedNeuron

__all__ = ["GenerationResult", "run_closed_loop"]


@dataclass(frozen=True)
class GenerationResult:
    """What one generation gave: scores are mean counts over repetitions (what the optimizer saw)."""

    number: int
    evolved_mean: float
    evolved_max: float
    reference_mean: float | None
    clean_max: float  # noise-free expected count of the best-scoring evolved image
    best_image: NDArray[np.uint8]  # (H, W, 3)


def _to_tensor(pixels: NDArray[np.uint8]) -> torch.Tensor:
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255.0)


def run_closed_loop(
    client: Client,
    session_id: str,
    manifest: dict[str, Any],
    neuron: SimulatedNeuron,
    *,
    generations: int,
    channel: str | None = None,
    repetitions: int = 1,
    on_generation: Callable[[GenerationResult], None] | None = None,
    progress: bool = False,
) -> list[GenerationResult]:
    """Run ``generations`` generations starting from ``manifest`` (e.g. ``create_session(...)["generation"]``, or
    ``client.generation(session_id)``, the open one); stops early if the session ends. The neuron's counts are
    posted as ``channel`` (default: the session's first channel), ``repetitions`` per image.

    ``progress``: a progress bar (tqdm; a widget in a notebook) with the best measured score so far."""
    channel = channel or str(client.session(session_id)["config"]["channels"][0])
    results: list[GenerationResult] = []
    bar = tqdm(total=generations, desc=f"session {session_id}", unit="gen", disable=not progress)
    for _ in range(generations):
        pixels = client.images(manifest)
        images = _to_tensor(pixels)
        counts = neuron.respond(images, repetitions)
        stimuli = manifest["stimuli"]
        posted = {s["id"]: {channel: counts[i].tolist()} for i, s in enumerate(stimuli)}
        answer = client.post_responses(session_id, manifest["number"], posted)

        scores = counts.mean(axis=1)
        evolved = np.array([s["kind"] == "evolved" for s in stimuli])
        best = int(np.flatnonzero(evolved)[np.argmax(scores[evolved])])
        clean_best = float(neuron.expected(images[best : best + 1])[0])
        result = GenerationResult(
            number=manifest["number"],
            evolved_mean=float(scores[evolved].mean()),
            evolved_max=float(scores[best]),
            reference_mean=float(scores[~evolved].mean()) if (~evolved).any() else None,
            clean_max=clean_best,
            best_image=pixels[best],
        )
        results.append(result)
        bar.update()
        bar.set_postfix(best=max(r.evolved_max for r in results))
        if on_generation is not None:
            on_generation(result)
        if answer["next"] is None:
            break
        manifest = answer["next"]
    bar.close()
    return results
