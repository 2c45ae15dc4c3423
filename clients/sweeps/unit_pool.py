"""The wide pool of in-silico units, split once into tuning and held-out units.

Method work tunes an optimizer on some units and reports on others, so that a result is not a fit to the units
it was tuned on. The pool is every channel of every trunk layer of two of the shipped CNNs (MTCNN ONet and RNet:
812 units over 9 layers). Each layer's channels are shuffled by a fixed seed and cut in half, the first half for
tuning and the second held out; the split never changes, so a benchmark run today and one run next year hold out
the same units. A panel of n units takes them round-robin over the layers, so even a small panel spans all of them,
leaving out the few units (18 of 812) that are silent on random images, whose Poisson gain cannot be calibrated.

The ``foreign`` units are outside the pool: the third network (PNet: 58 trunk units, 6 head outputs) and the
detection heads of ONet and RNet (face logits, box offsets, landmarks: 22 outputs), a network and a kind of unit
no tuning has seen, like the units independent checks use.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from evostim.clients.simulation.mtcnn import MTCNN_TRUNKS, MTCNN_WIDTHS

__all__ = ["SPLITS", "SPLIT_SEED", "foreign_layers", "pool", "responsive_units", "split_units"]

SPLIT_SEED = 20261201
Split = Literal["tuning", "held-out", "foreign"]
SPLITS: tuple[Split, ...] = ("tuning", "held-out", "foreign")
_POOLED_LAYERS = [f"{net}.{layer}" for net in ("onet", "rnet") for layer in MTCNN_TRUNKS[net]]


def pool() -> list[str]:
    """Every unit of the split's pool (ONet's and RNet's trunks), ``net.layer.channel``, layer by layer."""
    return [f"{layer}.{channel}" for layer in _POOLED_LAYERS for channel in range(MTCNN_WIDTHS[layer])]


def foreign_layers() -> list[str]:
    """The layers outside the pool: PNet's, and every network's detection heads."""
    return [layer for layer in MTCNN_WIDTHS if layer not in _POOLED_LAYERS]


def split_units(split: Split) -> list[str]:
    """The units of one side of the fixed split (or every foreign unit), round-robin over the layers (layer 1's
    first unit, layer 2's first, ..., then each layer's second): the first n of the list are a panel of n units
    spread over all layers."""
    rng = np.random.default_rng(SPLIT_SEED)
    sides = []
    for layer in foreign_layers() if split == "foreign" else _POOLED_LAYERS:
        shuffled = [f"{layer}.{channel}" for channel in rng.permutation(MTCNN_WIDTHS[layer])]
        half = MTCNN_WIDTHS[layer] // 2
        sides.append({"tuning": shuffled[:half], "held-out": shuffled[half:], "foreign": shuffled}[split])
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
