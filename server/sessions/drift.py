"""Drift correction in a session (``objective.drift_correction``): the factor each closed generation's evolved scores
are divided by before they are told to the optimizer, by evostim.drift's rule (the sweep engine's too), from the mean
reference score stored with each generation's summary (``reference_mean``).

A post computes the open generation's factor from the stored means of the generations before it and its own; a
replay computes every replayed generation's factor from the stored means alone; both call ``drift_factor`` on the
same numbers, so a replay tells exactly what the posts told. Without the option every factor is 1 and nothing is
read. The factor is stored with the generation's summary (``drift_factor``).
"""

from __future__ import annotations

from collections.abc import Sequence

from evostim.drift import drift_factor, drift_factors
from evostim.server.sessions.config import SessionConfig
from evostim.server.storage.store import GenerationRecord, SessionRecord, Store
from evostim.summary import GenerationSummary

__all__ = ["NO_CORRECTION", "open_factor", "replay_factors", "stored_means"]

NO_CORRECTION = 1.0


def stored_means(generations: Sequence[GenerationRecord], count: int) -> list[float | None]:
    """The mean reference score of generations 0..count-1 as stored with their summaries (None: none measured)."""
    summaries = {g.number: g.summary for g in generations if g.closed}
    return [(summaries.get(number) or {}).get("reference_mean") for number in range(count)]


def open_factor(store: Store, session: SessionRecord, config: SessionConfig, summary: GenerationSummary) -> float:
    """The factor of the session's open generation, now scored as ``summary`` (one read, under correction only)."""
    rule = config.objective.drift_rule
    if rule is None:
        return NO_CORRECTION
    earlier = stored_means(store.list_generations(session.id), session.generation)
    return drift_factor([*earlier, summary.reference_mean], rule)


def replay_factors(store: Store, session: SessionRecord, config: SessionConfig) -> list[float]:
    """The factor of every closed generation (0..session.generation-1), as its post computed it."""
    rule = config.objective.drift_rule
    if rule is None:
        return [NO_CORRECTION] * session.generation
    return drift_factors(stored_means(store.list_generations(session.id), session.generation), rule)
