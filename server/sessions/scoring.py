"""The posting rules and the objective: one place decides whether a responses body is accepted and what it scores.

Single posts and each share of a block post go through the same two functions: ``check_open`` (does the session
take responses for this generation?) and ``score_responses`` (does the body fit the generation's stimuli, and what
does each measured stimulus score?). Bad input raises and changes nothing.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from evostim import summary
from evostim.protocol import ResponsesSubmit, StimulusResponse
from evostim.server.sessions.config import Objective, ResponseUnits, SessionConfig
from evostim.server.sessions.errors import GenerationClosed, GenerationNotFound, InvalidResponses, SessionNotRunning
from evostim.server.storage.store import ResponseRecord, SessionRecord, StimulusRecord
from evostim.summary import GenerationSummary

__all__ = ["GenerationSummary", "Scored", "check_open", "objective_score", "score_responses", "summarize"]


@dataclass(frozen=True)
class Scored:
    """An accepted body: one record per stimulus of the generation (missing ones marked) and the scores."""

    records: list[ResponseRecord]
    scores: dict[str, float]  # stimulus id -> score, measured stimuli only
    missing: list[str]  # stimulus ids of the generation that the body did not score


def check_open(session: SessionRecord, number: int) -> None:
    """Refuse a post unless the session is running and ``number`` is its open generation."""
    if session.status != "running":
        hint = "; POST .../resume to continue" if session.status == "stopped" else ""
        raise SessionNotRunning(f"session {session.id} is {session.status}; it accepts no responses{hint}")
    if number < session.generation:
        raise GenerationClosed(
            f"generation {number} is closed and its responses are stored; the open generation is {session.generation}",
            open_generation=session.generation,
        )
    if number > session.generation:
        raise GenerationNotFound(f"generation {number} does not exist yet; the open generation is {session.generation}")


@np.errstate(all="ignore")  # an overflowing score is refused by _scored, not announced by a warning
def score_responses(config: SessionConfig, stimuli: Sequence[StimulusRecord], body: ResponsesSubmit) -> Scored:
    """Validate ``body`` against a generation's ``stimuli`` and score every posted stimulus."""
    _check_stimulus_ids(stimuli, body.responses)
    scores = {r.stimulus: _scored(config, r) for r in body.responses}
    _check_enough_measured(config, stimuli, scores)
    posted = {r.stimulus: r for r in body.responses}
    records = [_record(s, posted.get(s.stimulus_id), scores) for s in stimuli]
    return Scored(records, scores, [r.stimulus_id for r in records if r.missing])


def _check_stimulus_ids(stimuli: Sequence[StimulusRecord], responses: Sequence[StimulusResponse]) -> None:
    known = {s.stimulus_id for s in stimuli}
    posted = [r.stimulus for r in responses]
    unknown = sorted(set(posted) - known)
    if unknown:
        number = stimuli[0].generation if stimuli else "?"
        raise InvalidResponses(f"stimuli {unknown[:10]} are not part of generation {number}", unknown_stimuli=unknown)
    duplicated = sorted(p for p, n in Counter(posted).items() if n > 1)
    if duplicated:
        raise InvalidResponses(f"stimuli {duplicated[:10]} appear more than once", duplicated_stimuli=duplicated)


def _scored(config: SessionConfig, response: StimulusResponse) -> float:
    _check_channels(config, response)
    score = objective_score(response.counts, response.baseline, config.objective, config.response)
    if not math.isfinite(score):
        raise InvalidResponses(
            f"stimulus {response.stimulus}: its score (the objective of its counts) is not a finite number: the "
            "counts are too large for the objective weights and counting window; nothing was stored",
            stimulus=response.stimulus,
            field="counts",
        )
    return score


def _check_channels(config: SessionConfig, response: StimulusResponse) -> None:
    channels = set(config.channels)
    if set(response.counts) != channels:
        raise InvalidResponses(
            f"stimulus {response.stimulus}: counts must give exactly the session's channels "
            f"{sorted(channels)}, got {sorted(response.counts)}"
        )
    shapes = {ch: len(v) for ch, v in response.counts.items()}
    if len(set(shapes.values())) > 1:  # a repetition is one presentation, recorded on every channel
        raise InvalidResponses(
            f"stimulus {response.stimulus}: every channel needs the same number of repetitions (a repetition is one "
            f"presentation, recorded on every channel), got {shapes}",
            stimulus=response.stimulus,
            field="counts",
        )
    if response.baseline is None:
        if config.objective.subtract_baseline:
            raise InvalidResponses(
                f"stimulus {response.stimulus}: this session optimizes baseline-subtracted responses; give its baseline"
            )
        return
    if {ch: len(v) for ch, v in response.baseline.items()} != shapes:
        raise InvalidResponses(
            f"stimulus {response.stimulus}: baseline must give the same channels and number of repetitions as "
            f"counts {shapes}"
        )


def _check_enough_measured(
    config: SessionConfig, stimuli: Sequence[StimulusRecord], scores: Mapping[str, float]
) -> None:
    evolved = [s for s in stimuli if s.kind == "evolved"]
    measured = sum(1 for s in evolved if s.stimulus_id in scores)
    needed = math.ceil(config.min_measured_fraction * len(evolved))
    if measured < needed:
        raise InvalidResponses(
            f"only {measured} of {len(evolved)} evolved stimuli were measured; this session needs at least "
            f"{needed} (min_measured_fraction={config.min_measured_fraction})"
        )


def _record(stimulus: StimulusRecord, posted: StimulusResponse | None, scores: Mapping[str, float]) -> ResponseRecord:
    return ResponseRecord(
        stimulus.stimulus_id,
        stimulus.generation,
        stimulus.stimulus_id not in scores,
        None if posted is None else posted.counts,
        scores.get(stimulus.stimulus_id),
        None if posted is None else posted.baseline,
    )


def objective_score(
    counts: Mapping[str, Sequence[float]],
    baseline: Mapping[str, Sequence[float]] | None,
    objective: Objective,
    units: ResponseUnits,
) -> float:
    """Weighted sum over channels of the mean over repetitions of the response (minus the baseline, if asked).

    With counts and a counting window the values become rates (spikes/s), so responses and baselines counted
    in windows of different lengths compare.
    """
    subtract = objective.subtract_baseline and baseline is not None
    total = 0.0
    for channel, weight in objective.weights.items():
        value = _as_rate(counts[channel], units, units.window_ms)
        if subtract and baseline is not None:
            value = value - _as_rate(baseline[channel], units, units.baseline_window_ms or units.window_ms)
        total += weight * float(np.mean(value))
    return total


def _as_rate(values: Sequence[float], units: ResponseUnits, window_ms: float | None) -> NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    if units.unit == "count" and window_ms is not None:
        return array * (1000.0 / window_ms)
    return array


def summarize(stimuli: Sequence[StimulusRecord], scores: Mapping[str, float]) -> GenerationSummary:
    """Summary of a scored generation (at least one evolved stimulus measured, as ``score_responses`` ensures): the
    one summary of :mod:`evostim.summary`, stored with the generation and returned by the history."""
    return summary.summarize([s.stimulus_id for s in stimuli], [s.kind for s in stimuli], scores)
