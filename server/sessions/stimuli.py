"""A generation's stimuli: the optimizer's proposals (kept on the code-norm sphere) and the reference images,
with their ids and a seeded presentation order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from evostim.optimizers import Population
from evostim.optimizers.geometry import project_to_sphere
from evostim.server.sessions.config import SessionConfig
from evostim.server.storage.store import ReferenceRecord, StimulusRecord

__all__ = ["generation_stimuli", "stimulus_id"]

FloatArray = NDArray[np.float64]


def stimulus_id(generation: int, kind: str, index: int) -> str:
    return f"g{generation}-{kind[0]}{index}"


def generation_stimuli(
    config: SessionConfig, population: Population, references: Sequence[ReferenceRecord]
) -> tuple[list[StimulusRecord], list[str]]:
    """The stimulus records of ``population`` plus the references, and the order to present them in."""
    number = population.generation
    codes = project_to_sphere(population.codes, config.code_norm)
    stimuli = [
        StimulusRecord(stimulus_id(number, "evolved", i), number, "evolved", i, candidate, codes[i])
        for i, candidate in enumerate(population.ids)
    ]
    stimuli += [
        StimulusRecord(stimulus_id(number, "reference", r.index), number, "reference", r.index, None, r.code)
        for r in references
    ]
    # A seeded shuffle per generation interleaves references with evolved images.
    rng = np.random.default_rng([config.seed, number])
    order = [stimuli[i].stimulus_id for i in rng.permutation(len(stimuli))]
    return stimuli, order
