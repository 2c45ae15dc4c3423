"""Blocks: several sessions' open generations shown as one interleaved sequence and answered with one post."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
from evostim.server.sessions.errors import InvalidResponses, SessionNotRunning
from evostim.server.sessions.posting import Posting
from evostim.server.sessions.reads import SessionReader

__all__ = ["BlockShare", "Blocks", "merge_manifests", "split_block"]

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


class Blocks:
    """A block's manifest, and a block post stored as each session's share (the same path as a single post)."""

    def __init__(self, *, reader: SessionReader, posting: Posting) -> None:
        self._reader = reader
        self._posting = posting

    def manifest(self, owner: str, session_ids: list[str]) -> BlockManifest:
        """The open generations of running sessions, interleaved (a seeded merge that keeps each one's order)."""
        if len(set(session_ids)) != len(session_ids):
            raise InvalidResponses("a block names each session once")
        sessions = (self._reader.session(owner, sid) for sid in session_ids)
        running = [s for s in sessions if s.record.status == "running"]
        if not running:
            raise SessionNotRunning("none of these sessions is running")
        manifests = [self._reader.get_generation(owner, s.id, s.record.generation) for s in running]
        return merge_manifests(manifests, [s.config.seed for s in running])

    def submit(self, owner: str, body: BlockResponsesSubmit, idempotency_key: str | None) -> dict[str, Any]:
        """Validate every session's share first (a refused block stores nothing), then store each share.

        Each share carries the key ``<key>:<session>``: if the block post is retried after a failure half way,
        the shares already stored replay and the others are stored; nothing is counted twice.
        """
        shares = split_block(body)
        keys = {sid: None if idempotency_key is None else f"{idempotency_key}:{sid}" for sid in shares}
        for sid, (number, share) in shares.items():
            self._posting.check(owner, sid, number, share, keys[sid])
        answers = {
            sid: self._posting.submit(owner, sid, number, share, keys[sid])[0]
            for sid, (number, share) in shares.items()
        }
        running = [GenerationPublic(**answer["next"]) for answer in answers.values() if answer["next"] is not None]
        seeds = [self._reader.session(owner, m.session_id).config.seed for m in running]
        return {
            "accepted": {sid: answer["accepted"] for sid, answer in answers.items()},
            "next": merge_manifests(running, seeds).model_dump() if running else None,
        }
