"""The wide pool of in-silico units, split once into tuning and held-out units.

Method work tunes an optimizer on some units and reports on others, so that a result is not a fit to the units
it was tuned on. The pool is every channel of every layer of the shipped CNNs (MTCNN ONet and RNet: 812 units over
9 layers). Each layer's channels are shuffled by a fixed seed and cut in half, the first half for tuning and the
second held out; the split never changes, so a benchmark run today and one run next year hold out the same units.
A panel of n units takes them round-robin over the layers, so even a small panel spans all of them, leaving out
the few units (18 of 812) that are silent on random images, whose Poisson gain cannot be calibrated.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from evostim.clients.simulation.mtcnn import MTCNN_WIDTHS

__all__ = ["SPLIT_SEED", "pool", "responsive_units", "split_units"]

SPLIT_SEED = 20261201
Split = Literal["tuning", "held-out"]


def pool() -> list[str]:
    """Every unit of the shipped CNNs, ``net.layer.channel``, layer by layer."""
    return [f"{layer}.{channel}" for layer, width in MTCNN_WIDTHS.items() for channel in range(width)]


def split_units(split: Split) -> list[str]:
    """The units of one side of the fixed split, round-robin over the layers (layer 1's first unit, layer 2's
    first, ..., then each layer's second): the first n of the list are a panel of n units spread over all layers."""
    rng = np.random.default_rng(SPLIT_SEED)
    sides = []
    for layer, width in MTCNN_WIDTHS.items():
        shuffled = [f"{layer}.{channel}" for channel in rng.permutation(width)]
        half = width // 2
        sides.append(shuffled[:half] if split == "tuning" else shuffled[half:])
    longest = max(len(side) for side in sides)
    return [side[i] for i in range(longest) for side in sides if i < len(side)]


def responsive_units(split: Split, count: int, images: int = 1000, seed: int = 12345) -> list[str]:
    """The first ``count`` units of ``split_units(split)`` that respond (p99 > 0) to ``images`` random images."""
    from evostim.clients.sweeps.panels import CnnPanel  # loads torch and the networks: only when asked

    candidates = split_units(split)
    chosen: list[str] = []
    for start in range(0, len(candidates), 2 * count):
        batch = candidates[start : start + 2 * count]
        panel = CnnPanel(batch)
        activations = panel.activation_matrix(panel.random_codes(images, seed=seed))
        p99 = np.percentile(np.maximum(activations, 0.0), 99, axis=0)
        chosen.extend(unit for unit, value in zip(batch, p99, strict=True) if value > 0)
        if len(chosen) >= count:
            break
    return chosen[:count]
