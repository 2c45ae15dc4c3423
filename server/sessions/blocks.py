"""Blocks: several sessions' open generations shown as one interleaved sequence and answered with one post."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evostim.protocol import (
    BlockGeneration,
    BlockManifest,
    BlockRef,
    BlockResponsesSubmit,
    BlockStimulus,
    GenerationPublic,
    ResponsesSubmit,
    StimulusResponse,
)
from evostim.server.sessions.errors import InvalidResponses

__all__ = ["BlockShare", "merge_manifests", "split_block"]

BlockShare = tuple[int, ResponsesSubmit]  # (generation number, that session's responses)


def merge_manifests(manifests: Sequence[GenerationPublic], seeds: Sequence[int]) -> BlockManifest:
    """One block from several manifests: a seeded random merge of their orders, each keeping its own order."""
    rng = np.random.default_rng([*seeds, *(m.number for m in manifests)])
    labels = np.concatenate([np.full(len(m.order), i) for i, m in enumerate(manifests)])
    queues = [list(m.order) for m in manifests]
    order = []
    for which in rng.permutation(labels):
        order.append(BlockRef(session=manifests[which].session_id, id=queues[which].pop(0)))
    return BlockManifest(
        generations=[BlockGeneration(session=m.session_id, number=m.number) for m in manifests],
        stimuli=[
            BlockStimulus(session=m.session_id, id=s.id, kind=s.kind, url=s.url) for m in manifests for s in m.stimuli
        ],
        order=order,
    )


def split_block(body: BlockResponsesSubmit) -> dict[str, BlockShare]:
    """Each session's share of a block post; a block that names a session twice or leaves one out is refused."""
    numbers = {g.session: g.number for g in body.generations}
    if len(numbers) != len(body.generations):
        raise InvalidResponses("generations name a session twice")
    shares: dict[str, list[StimulusResponse]] = {sid: [] for sid in numbers}
    for response in body.responses:
        if response.session not in shares:
            raise InvalidResponses(f"response for session {response.session!r}, which is not in generations")
        shares[response.session].append(StimulusResponse(**response.model_dump(exclude={"session"})))
    empty = [sid for sid, items in shares.items() if not items]
    if empty:
        raise InvalidResponses(f"the block gives no responses for session {empty[0]}")
    return {sid: (numbers[sid], ResponsesSubmit.model_construct(responses=items)) for sid, items in shares.items()}
