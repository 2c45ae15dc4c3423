"""The session service: one generation is load -> tell -> ask -> save (one transaction) -> render.

Routes call this; it calls the optimizer, the generator and the store, which know nothing of each other.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evostim import optimizers
from evostim.generators import GeneratorError, ImageGenerator, generator_spec
from evostim.generators.metric import MetricBasis
from evostim.optimizers import Optimizer, OptimizerError, Population
from evostim.protocol import (
    BlockGeneration,
    BlockManifest,
    BlockRef,
    BlockResponsesSubmit,
    BlockStimulus,
    GenerationPublic,
    GenerationScores,
    HistoryGeneration,
    HistoryStimulus,
    InitConfig,
    ObjectiveConfig,
    OptimizerConfig,
    ResponseConfig,
    ResponsesAccepted,
    ResponsesSubmit,
    SessionCreate,
    SessionCreated,
    SessionFork,
    SessionHistory,
    SessionPublic,
    SessionsPublic,
    StimulusPublic,
    StimulusResponse,
)
from evostim.server.config import Settings
from evostim.server.errors import (
    GenerationClosed,
    GenerationNotFound,
    IdempotencyKeyReused,
    InvalidResponses,
    InvalidSessionConfig,
    SessionNotFound,
    SessionNotRunning,
    StateCorrupt,
    StimulusNotFound,
)
from evostim.server.images import ImageCache, ImageFormat, code_key, encode_image
from evostim.server.store import (
    IdempotencyRecord,
    ReferenceRecord,
    ResponseRecord,
    SessionRecord,
    StimulusRecord,
    Store,
)

__all__ = ["SessionService", "Timings"]

Timings = dict[str, float]
FloatArray = NDArray[np.float64]


def _encode_state(optimizer: Optimizer) -> bytes:
    return zlib.compress(json.dumps(optimizer.state_dict()).encode(), 1)


def _decode_state(blob: bytes) -> Optimizer:
    return optimizers.optimizer_from_state(json.loads(zlib.decompress(blob)))


def project_to_sphere(codes: FloatArray, norm: float | None) -> FloatArray:
    """Rows of ``codes`` (B, d) scaled to ``norm`` (unchanged when norm is None or a row is zero)."""
    if norm is None:
        return codes
    lengths = np.linalg.norm(codes, axis=1, keepdims=True)
    return np.where(lengths > 1e-12, codes * (norm / np.maximum(lengths, 1e-12)), codes)


def _objective_score(
    counts: dict[str, list[float]],
    baseline: dict[str, list[float]] | None,
    objective: dict[str, Any],
    response: dict[str, Any],
) -> float:
    """Weighted sum over channels of the mean over repetitions of the response (minus the baseline, if asked).

    With counts and a counting window the values become rates (spikes/s), so responses and baselines counted
    in windows of different lengths compare.
    """

    def as_rate(values: list[float], window_ms: float | None) -> NDArray[np.float64]:
        array = np.asarray(values, dtype=np.float64)
        if response["unit"] == "count" and window_ms is not None:
            return array * (1000.0 / window_ms)
        return array

    total = 0.0
    for channel, weight in objective["weights"].items():
        value = as_rate(counts[channel], response.get("window_ms"))
        if objective.get("subtract_baseline") and baseline is not None:
            window = response.get("baseline_window_ms") or response.get("window_ms")
            value = value - as_rate(baseline[channel], window)
        total += weight * float(np.mean(value))
    return total


def _merge_manifests(manifests: list[GenerationPublic], seeds: list[int]) -> BlockManifest:
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


def _start_parameters(optimizer_name: str, start: FloatArray) -> dict[str, Any]:
    """How an optimizer is told where to start: its mean, its centre, or its first population."""
    try:
        accepted = optimizers.parameter_names(optimizers.lookup(optimizer_name))
    except OptimizerError as error:
        raise InvalidSessionConfig(str(error)) from None
    if "initial_codes" in accepted:
        return {"initial_codes": start.tolist()}
    mean = start.mean(axis=0).tolist()
    for name in ("mean", "center"):
        if name in accepted:
            return {name: mean}
    raise InvalidSessionConfig(f"optimizer {optimizer_name} cannot start from given codes")


def _stimulus_id(generation: int, kind: str, index: int) -> str:
    return f"g{generation}-{kind[0]}{index}"


def _request_hash(number: int, body: ResponsesSubmit) -> str:
    """Identifies a post: the generation it is for and its parsed body (key order does not matter)."""
    return hashlib.sha256(f"{number}:{body.model_dump_json()}".encode()).hexdigest()


class SessionService:
    """Sessions for many owners, with per-session serialization and an optimizer cache."""

    def __init__(
        self, store: Store, settings: Settings, *, load_generator: Callable[[str, str, Path], ImageGenerator]
    ) -> None:
        self._store = store
        self._settings = settings
        self._load_generator = load_generator
        self._images = ImageCache(settings.image_cache_mb * 2**20)
        self._optimizers: dict[str, Optimizer] = {}  # session id -> optimizer asked for its open generation
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock(self, session_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(session_id, threading.Lock())

    def _named_basis(self, name: str, generator: str) -> NDArray[np.float64]:
        """The eigenbasis saved by ``evostim metric`` as WEIGHTS_DIR/<name>.npz, checked against the generator."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", name):
            raise InvalidSessionConfig(f"basis name {name!r} must be a file name (letters, digits, . _ -)")
        path = self._settings.weights_dir / f"{name}.npz"
        if not path.is_file():
            raise InvalidSessionConfig(f"basis {name!r}: no file {path}; make it with `evostim metric`")
        saved = MetricBasis.load(path)
        if saved.generator != generator:
            raise InvalidSessionConfig(f"basis {name!r} was computed for {saved.generator}, not {generator}")
        return saved.basis

    def _generator(self, name: str) -> ImageGenerator:
        return self._load_generator(name, self._settings.device, self._settings.weights_dir)

    # -- create ------------------------------------------------------------------------------------
    def create_session(self, owner: str, request: SessionCreate) -> SessionCreated:
        try:
            spec = generator_spec(request.generator)
            self._generator(spec.name)  # loads it once; a missing weights file refuses the session here
        except GeneratorError as error:
            raise InvalidSessionConfig(str(error)) from None
        seed = request.seed if request.seed is not None else secrets.randbits(62)
        params = dict(request.optimizer.params)
        if request.optimizer.name == "subspace" and isinstance(params.get("basis"), str):
            params["basis"] = self._named_basis(params["basis"], spec.name)
        if request.init is not None:
            start = self._start_codes(owner, request.init, request.generator, spec.latent_dim)
            params = {**_start_parameters(request.optimizer.name, start), **params}
        try:
            optimizer = optimizers.create_optimizer(
                request.optimizer.name,
                spec.latent_dim,
                population_size=request.population_size,
                seed=seed,
                code_norm=spec.typical_norm,  # the generator's scale sets the step-size defaults
                **params,
            )
        except OptimizerError as error:
            raise InvalidSessionConfig(f"optimizer {request.optimizer.name}: {error}") from None

        reference_codes = self._reference_codes(request, spec.latent_dim, spec.typical_norm)
        code_norm = spec.typical_norm if request.code_norm == "auto" else request.code_norm
        objective = request.objective.weights if request.objective else {request.channels[0]: 1.0}
        config = {
            "generator": spec.name,
            "optimizer": {"name": optimizer.name, "params": optimizer.settings},
            "population_size": request.population_size,
            "seed": seed,
            "channels": list(request.channels),
            "objective": {
                "weights": objective,
                "subtract_baseline": bool(request.objective is not None and request.objective.subtract_baseline),
            },
            "response": request.response.model_dump(),
            "references": {"builtin": request.references.builtin, "given": len(request.references.codes)},
            "code_norm": code_norm,
            "max_generations": request.max_generations,
            "plateau_generations": request.plateau_generations,
            "init": None
            if request.init is None
            else request.init.model_dump(exclude={"codes"}) | {"codes": len(request.init.codes)},
            "min_measured_fraction": request.min_measured_fraction,
            "metadata": request.metadata,
        }
        record = SessionRecord(
            id=f"s_{secrets.token_hex(8)}",
            owner=owner,
            created_at=datetime.now(UTC),
            config=config,
            status="running",
            generation=0,
            best_score=None,
            best_stimulus=None,
        )
        references = [ReferenceRecord(i, code) for i, code in enumerate(reference_codes)]
        population = optimizer.ask()
        stimuli, order = self._generation_stimuli(record, population, references)
        self._store.create_session(record, references, stimuli, order, _encode_state(optimizer))
        self._optimizers[record.id] = optimizer
        self._render(spec.name, [s.code for s in stimuli])
        return SessionCreated(session=self._public(record), generation=self._manifest(record, 0, stimuli, order, False))

    def _start_codes(self, owner: str, init: InitConfig, generator: str, dim: int) -> FloatArray:
        """The codes a search starts from (k, d): given ones, or another session's best measured evolved codes."""
        if init.session is None:
            codes = np.asarray(init.codes, dtype=np.float64)
            if codes.ndim != 2 or codes.shape[1] != dim or not np.isfinite(codes).all():
                raise InvalidSessionConfig(f"init.codes must be rows of {dim} finite numbers for {generator}")
            return codes
        try:
            source = self._session(owner, init.session)
        except SessionNotFound:
            raise InvalidSessionConfig(f"init.session: no session {init.session!r}") from None
        if source.config["generator"] != generator:
            raise InvalidSessionConfig(
                f"init.session {init.session} searched {source.config['generator']}, not {generator}"
            )
        last = init.up_to_generation if init.up_to_generation is not None else source.generation
        stimuli = {s.stimulus_id: s for s in self._store.get_stimuli(init.session, 0, last) if s.kind == "evolved"}
        scored = [
            (r.score, stimuli[r.stimulus_id].code)
            for r in self._store.get_responses(init.session, 0, last)
            if r.stimulus_id in stimuli and r.score is not None
        ]
        if not scored:
            raise InvalidSessionConfig(f"init.session {init.session} has no measured evolved stimuli to start from")
        scored.sort(key=lambda pair: -pair[0])
        return np.stack([code for _, code in scored[: init.best]])

    def _reference_codes(self, request: SessionCreate, dim: int, typical_norm: float) -> list[FloatArray]:
        # Built-in references are the same latents for every session on this server: comparable across days.
        rng = np.random.default_rng(self._settings.reference_seed)
        builtin = project_to_sphere(rng.standard_normal((request.references.builtin, dim)), typical_norm)
        given = []
        for i, code in enumerate(request.references.codes):
            array = np.asarray(code, dtype=np.float64)
            if array.shape != (dim,) or not np.isfinite(array).all():
                raise InvalidSessionConfig(
                    f"references.codes[{i}] must be {dim} finite numbers for {request.generator}, got {len(code)}"
                )
            given.append(array)
        return [*builtin, *given]

    def _generation_stimuli(
        self, session: SessionRecord, population: Population, references: list[ReferenceRecord]
    ) -> tuple[list[StimulusRecord], list[str]]:
        number = population.generation
        codes = project_to_sphere(population.codes, session.config["code_norm"])
        stimuli = [
            StimulusRecord(_stimulus_id(number, "evolved", i), number, "evolved", i, candidate, codes[i])
            for i, candidate in enumerate(population.ids)
        ]
        stimuli += [
            StimulusRecord(_stimulus_id(number, "reference", r.index), number, "reference", r.index, None, r.code)
            for r in references
        ]
        # A seeded shuffle per generation interleaves references with evolved images.
        rng = np.random.default_rng([session.config["seed"], number])
        order = [stimuli[i].stimulus_id for i in rng.permutation(len(stimuli))]
        return stimuli, order

    # -- read --------------------------------------------------------------------------------------
    def _session(self, owner: str, session_id: str) -> SessionRecord:
        record = self._store.get_session(session_id)
        if record is None or record.owner != owner:  # another owner's session does not exist for you
            raise SessionNotFound(f"no session {session_id!r}")
        return record

    @staticmethod
    def _public(record: SessionRecord) -> SessionPublic:
        return SessionPublic(
            id=record.id,
            status=record.status,  # type: ignore[arg-type]
            generation=record.generation,
            created_at=record.created_at if record.created_at.tzinfo else record.created_at.replace(tzinfo=UTC),
            best_score=record.best_score,
            best_stimulus=record.best_stimulus,
            config=record.config,
        )

    def _manifest(
        self, session: SessionRecord, number: int, stimuli: list[StimulusRecord], order: list[str], closed: bool
    ) -> GenerationPublic:
        base = f"/v1/sessions/{session.id}"
        return GenerationPublic(
            session_id=session.id,
            number=number,
            status="closed" if closed else "open",
            image_size=generator_spec(session.config["generator"]).image_size,
            stimuli=[
                StimulusPublic(id=s.stimulus_id, kind=s.kind, index=s.index, url=f"{base}/stimuli/{s.stimulus_id}.png")  # type: ignore[arg-type]
                for s in stimuli
            ],
            order=order,
            responses_url=f"{base}/generations/{number}/responses",
        )

    def get_session(self, owner: str, session_id: str) -> SessionPublic:
        return self._public(self._session(owner, session_id))

    def list_sessions(self, owner: str, *, limit: int, offset: int) -> SessionsPublic:
        records, total = self._store.list_sessions(owner, limit=limit, offset=offset)
        return SessionsPublic(items=[self._public(r) for r in records], total=total, limit=limit, offset=offset)

    def current_generation(self, owner: str, session_id: str) -> int:
        return self._session(owner, session_id).generation

    def get_generation(self, owner: str, session_id: str, number: int) -> GenerationPublic:
        session = self._session(owner, session_id)
        generation = self._store.get_generation(session_id, number)
        if generation is None:
            raise GenerationNotFound(
                f"session {session_id} has no generation {number}; the open generation is {session.generation}"
            )
        stimuli = self._store.get_stimuli(session_id, number)
        return self._manifest(session, number, stimuli, generation.order, generation.closed)

    def image(self, owner: str, session_id: str, stimulus_id: str, fmt: ImageFormat, size: int | None) -> bytes:
        session = self._session(owner, session_id)
        stimulus = self._store.get_stimulus(session_id, stimulus_id)
        if stimulus is None:
            raise StimulusNotFound(f"session {session_id} has no stimulus {stimulus_id!r}")
        key = code_key(session.config["generator"], stimulus.code)
        encoded_key = (key, fmt, str(size))
        encoded = self._images.get(encoded_key)
        if isinstance(encoded, bytes):
            return encoded
        pixels = self._images.get((key,))
        if not isinstance(pixels, np.ndarray):
            pixels = self._render(session.config["generator"], [stimulus.code])[0]
        encoded = encode_image(pixels, fmt, size)
        self._images.put(encoded_key, encoded)
        return encoded

    def _render(self, generator: str, codes: list[FloatArray]) -> list[NDArray[np.uint8]]:
        """Decode codes not yet in the cache in one batch; return the pixels of all of them."""
        keys = [code_key(generator, code) for code in codes]
        cached = [self._images.get((key,)) for key in keys]
        todo = [i for i, pixels in enumerate(cached) if not isinstance(pixels, np.ndarray)]
        if todo:
            decoded = self._generator(generator).decode_uint8(np.stack([codes[i] for i in todo]))
            for i, pixels in zip(todo, decoded, strict=True):
                self._images.put((keys[i],), pixels)
                cached[i] = pixels
        return [pixels for pixels in cached if isinstance(pixels, np.ndarray)]

    # -- responses ---------------------------------------------------------------------------------
    def submit_responses(
        self, owner: str, session_id: str, number: int, body: ResponsesSubmit, idempotency_key: str | None
    ) -> tuple[dict[str, Any], Timings]:
        """Close generation ``number`` with ``body`` and open the next; returns the answer and timings (ms)."""
        started = time.perf_counter()
        request_hash = _request_hash(number, body)
        with self._lock(session_id):
            session = self._session(owner, session_id)
            if idempotency_key is not None:
                replay = self._store.get_idempotency(session_id, idempotency_key)
                if replay is not None:
                    if replay.request_hash != request_hash:
                        raise IdempotencyKeyReused(
                            f"Idempotency-Key {idempotency_key!r} was used for a different request body; "
                            "use a new key for new data"
                        )
                    return replay.body, {"replay": (time.perf_counter() - started) * 1e3}
            if session.status != "running":
                hint = "; POST .../resume to continue" if session.status == "stopped" else ""
                raise SessionNotRunning(f"session {session_id} is {session.status}; it accepts no responses{hint}")
            if number < session.generation:
                raise GenerationClosed(
                    f"generation {number} is closed and its responses are stored; the open generation is "
                    f"{session.generation}",
                    open_generation=session.generation,
                )
            if number > session.generation:
                raise GenerationNotFound(
                    f"generation {number} does not exist yet; the open generation is {session.generation}"
                )
            stimuli = self._store.get_stimuli(session_id, number)
            responses, scores = self._validated_responses(session, stimuli, body)
            validated = time.perf_counter()
            try:
                answer, timings = self._advance(session, stimuli, responses, scores, idempotency_key, request_hash)
            except BaseException:
                self._optimizers.pop(session_id, None)  # the cached optimizer may be ahead of the store
                raise
        timings["validate"] = (validated - started) * 1e3
        return answer, timings

    def _validated_responses(
        self, session: SessionRecord, stimuli: list[StimulusRecord], body: ResponsesSubmit
    ) -> tuple[list[ResponseRecord], dict[str, float]]:
        by_id = {s.stimulus_id: s for s in stimuli}
        posted = [r.stimulus for r in body.responses]
        unknown = sorted(set(posted) - set(by_id))
        if unknown:
            raise InvalidResponses(
                f"stimuli {unknown[:10]} are not part of generation {stimuli[0].generation}", unknown_stimuli=unknown
            )
        if len(set(posted)) != len(posted):
            duplicated = sorted(p for p, n in Counter(posted).items() if n > 1)
            raise InvalidResponses(f"stimuli {duplicated[:10]} appear more than once", duplicated_stimuli=duplicated)
        channels = set(session.config["channels"])
        objective = session.config["objective"]
        response_config = session.config.get("response") or {"unit": "count"}
        scores: dict[str, float] = {}
        for response in body.responses:
            if set(response.counts) != channels:
                raise InvalidResponses(
                    f"stimulus {response.stimulus}: counts must give exactly the session's channels "
                    f"{sorted(channels)}, got {sorted(response.counts)}"
                )
            if response.baseline is not None:
                shapes = {ch: len(v) for ch, v in response.counts.items()}
                if {ch: len(v) for ch, v in response.baseline.items()} != shapes:
                    raise InvalidResponses(
                        f"stimulus {response.stimulus}: baseline must give the same channels and number of "
                        f"repetitions as counts {shapes}"
                    )
            elif objective.get("subtract_baseline"):
                raise InvalidResponses(
                    f"stimulus {response.stimulus}: this session optimizes baseline-subtracted responses; "
                    "give its baseline"
                )
            scores[response.stimulus] = _objective_score(response.counts, response.baseline, objective, response_config)
        evolved = [s for s in stimuli if s.kind == "evolved"]
        measured = sum(1 for s in evolved if s.stimulus_id in scores)
        needed = math.ceil(session.config["min_measured_fraction"] * len(evolved))
        if measured < needed:
            raise InvalidResponses(
                f"only {measured} of {len(evolved)} evolved stimuli were measured; this session needs at least "
                f"{needed} (min_measured_fraction={session.config['min_measured_fraction']})"
            )
        posted_by_id = {r.stimulus: r for r in body.responses}
        records = [
            ResponseRecord(
                s.stimulus_id,
                s.generation,
                s.stimulus_id not in scores,
                posted_by_id[s.stimulus_id].counts if s.stimulus_id in posted_by_id else None,
                scores.get(s.stimulus_id),
                posted_by_id[s.stimulus_id].baseline if s.stimulus_id in posted_by_id else None,
            )
            for s in stimuli
        ]
        return records, scores

    def _advance(
        self,
        session: SessionRecord,
        stimuli: list[StimulusRecord],
        responses: list[ResponseRecord],
        scores: dict[str, float],
        idempotency_key: str | None,
        request_hash: str,
    ) -> tuple[dict[str, Any], Timings]:
        t0 = time.perf_counter()
        number = session.generation
        optimizer = self._optimizer(session)
        measured = [s for s in stimuli if s.kind == "evolved" and s.stimulus_id in scores]
        optimizer.tell([s.candidate_id for s in measured], [scores[s.stimulus_id] for s in measured])  # type: ignore[misc]
        max_generations = session.config["max_generations"]
        evolved_mean = float(np.mean([scores[s.stimulus_id] for s in measured]))
        finished = (max_generations is not None and number + 1 >= max_generations) or self._plateaued(
            session, evolved_mean
        )
        next_stimuli: list[StimulusRecord] = []
        next_order: list[str] = []
        references = [ReferenceRecord(s.index, s.code) for s in stimuli if s.kind == "reference"]
        if not finished:
            next_stimuli, next_order = self._generation_stimuli(session, optimizer.ask(), references)
        snapshot = None
        if not finished and (number + 1) % self._settings.snapshot_every == 0:
            snapshot = _encode_state(optimizer)
        t1 = time.perf_counter()

        evolved_scores = [scores[s.stimulus_id] for s in measured]
        reference_scores = [scores[s.stimulus_id] for s in stimuli if s.kind == "reference" and s.stimulus_id in scores]
        top = int(np.argmax(evolved_scores))
        best = None
        if session.best_score is None or evolved_scores[top] > session.best_score:
            best = (evolved_scores[top], measured[top].stimulus_id)
        # Per-generation summary stored with the generation (scores and the optimizer's own scalars).
        summary: dict[str, float] = {
            "evolved_mean": float(np.mean(evolved_scores)),
            "evolved_max": float(np.max(evolved_scores)),
            **({"reference_mean": float(np.mean(reference_scores))} if reference_scores else {}),
            **optimizer.summary(),
        }
        accepted = GenerationScores(
            number=number,
            measured=len(scores),
            missing=[r.stimulus_id for r in responses if r.missing],
            evolved_mean=summary["evolved_mean"],
            evolved_max=summary["evolved_max"],
            reference_mean=summary.get("reference_mean"),
        )
        status = "finished" if finished else "running"
        updated = SessionRecord(
            id=session.id,
            owner=session.owner,
            created_at=session.created_at,
            config=session.config,
            status=status,
            generation=number if finished else number + 1,
            best_score=best[0] if best else session.best_score,
            best_stimulus=best[1] if best else session.best_stimulus,
        )
        answer = ResponsesAccepted(
            accepted=accepted,
            session=self._public(updated),
            next=None if finished else self._manifest(updated, number + 1, next_stimuli, next_order, False),
        ).model_dump(mode="json")
        idempotency = None if idempotency_key is None else IdempotencyRecord(idempotency_key, request_hash, 200, answer)
        self._store.commit_generation(
            session_id=session.id,
            closed=number,
            responses=responses,
            summary=summary,
            best=best,
            status=status,
            next_stimuli=next_stimuli,
            next_order=next_order,
            snapshot=snapshot,
            idempotency=idempotency,
        )
        t2 = time.perf_counter()
        if finished:
            self._optimizers.pop(session.id, None)
        else:
            self._optimizers[session.id] = optimizer
            self._render(session.config["generator"], [s.code for s in next_stimuli])
        t3 = time.perf_counter()
        return answer, {"optimizer": (t1 - t0) * 1e3, "db": (t2 - t1) * 1e3, "render": (t3 - t2) * 1e3}

    def _plateaued(self, session: SessionRecord, evolved_mean: float) -> bool:
        """Stop rule: the mean evolved score has not beaten its earlier best for ``plateau_generations``."""
        patience = session.config.get("plateau_generations")
        if patience is None or session.generation < patience:
            return False
        means = [g.summary["evolved_mean"] for g in self._store.list_generations(session.id) if g.closed and g.summary]
        means.append(evolved_mean)
        return max(means[-patience:]) <= max(means[:-patience])

    def _optimizer(self, session: SessionRecord) -> Optimizer:
        """The optimizer waiting for the open generation: cached, or a snapshot replayed to it."""
        cached = self._optimizers.get(session.id)
        if cached is not None and cached.generation == session.generation and cached.pending:
            return cached
        snapshot = self._store.latest_snapshot(session.id, session.generation)
        if snapshot is None:
            raise StateCorrupt(f"session {session.id} has no optimizer snapshot")
        start, blob = snapshot
        optimizer = _decode_state(blob)
        if start < session.generation:
            stimuli = self._store.get_stimuli(session.id, start, session.generation)
            responses = self._store.get_responses(session.id, start, session.generation - 1)
            scores = {r.stimulus_id: r.score for r in responses if not r.missing}
            for number in range(start, session.generation):
                told = [
                    s for s in stimuli if s.generation == number and s.kind == "evolved" and s.stimulus_id in scores
                ]
                optimizer.tell([s.candidate_id for s in told], [scores[s.stimulus_id] for s in told])  # type: ignore[misc]
                proposed = project_to_sphere(optimizer.ask().codes, session.config["code_norm"])
                stored = np.stack([s.code for s in stimuli if s.generation == number + 1 and s.kind == "evolved"])
                if not np.array_equal(proposed, stored):
                    raise StateCorrupt(
                        f"session {session.id}: replaying generation {number} does not reproduce the stored proposals"
                    )
        self._optimizers[session.id] = optimizer
        return optimizer

    def forget_optimizers(self) -> None:
        """Drop cached optimizers (the next post replays from the store, as after a restart)."""
        self._optimizers.clear()

    # -- history -----------------------------------------------------------------------------------
    # -- blocks: several sessions' generations shown and answered together ------------------------------
    def block(self, owner: str, session_ids: list[str]) -> BlockManifest:
        """The open generations of running sessions, interleaved (a seeded merge that keeps each one's order)."""
        if len(set(session_ids)) != len(session_ids):
            raise InvalidResponses("a block names each session once")
        sessions = [self._session(owner, sid) for sid in session_ids]
        running = [s for s in sessions if s.status == "running"]
        if not running:
            raise SessionNotRunning("none of these sessions is running")
        manifests = [self.get_generation(owner, s.id, s.generation) for s in running]
        return _merge_manifests(manifests, [s.config["seed"] for s in running])

    def submit_block(self, owner: str, body: BlockResponsesSubmit, idempotency_key: str | None) -> dict[str, Any]:
        """Validate every session's share first (a refused block stores nothing), then store each share.

        Each share carries the key ``<key>:<session>``: if the block post is retried after a failure half way,
        the shares already stored replay and the others are stored; nothing is counted twice.
        """
        numbers = {g.session: g.number for g in body.generations}
        if len(numbers) != len(body.generations):
            raise InvalidResponses("generations name a session twice")
        shares: dict[str, list[StimulusResponse]] = {sid: [] for sid in numbers}
        for response in body.responses:
            if response.session not in shares:
                raise InvalidResponses(f"response for session {response.session!r}, which is not in generations")
            shares[response.session].append(StimulusResponse(**response.model_dump(exclude={"session"})))
        submits = {sid: ResponsesSubmit.model_construct(responses=items) for sid, items in shares.items()}
        keys = {sid: None if idempotency_key is None else f"{idempotency_key}:{sid}" for sid in numbers}
        for sid, number in numbers.items():
            if not submits[sid].responses:
                raise InvalidResponses(f"the block gives no responses for session {sid}")
            self._check_share(owner, sid, number, submits[sid], keys[sid])
        answers = {sid: self.submit_responses(owner, sid, numbers[sid], submits[sid], keys[sid])[0] for sid in numbers}
        running = [answer["next"] for answer in answers.values() if answer["next"] is not None]
        seeds = [self._session(owner, m["session_id"]).config["seed"] for m in running]
        next_block = _merge_manifests([GenerationPublic(**m) for m in running], seeds) if running else None
        return {
            "accepted": {sid: answer["accepted"] for sid, answer in answers.items()},
            "next": None if next_block is None else next_block.model_dump(),
        }

    def _check_share(self, owner: str, sid: str, number: int, body: ResponsesSubmit, key: str | None) -> None:
        """Everything submit_responses would refuse, without storing: replays of a stored share pass."""
        with self._lock(sid):
            session = self._session(owner, sid)
            if key is not None and self._store.get_idempotency(sid, key) is not None:
                return
            if session.status != "running":
                raise SessionNotRunning(f"session {sid} is {session.status}; it accepts no responses")
            if number != session.generation:
                raise GenerationClosed(
                    f"session {sid}: generation {number} is not open; the open generation is {session.generation}",
                    open_generation=session.generation,
                )
            try:
                self._validated_responses(session, self._store.get_stimuli(sid, number), body)
            except InvalidResponses as error:
                raise InvalidResponses(f"session {sid}: {error}") from None

    # -- life cycle --------------------------------------------------------------------------------
    def stop_session(self, owner: str, session_id: str) -> SessionPublic:
        """Pause: the open generation stays open but accepts no responses until resumed. Idempotent."""
        with self._lock(session_id):
            session = self._session(owner, session_id)
            if session.status == "finished":
                raise SessionNotRunning(f"session {session_id} is finished; there is nothing to stop")
            self._store.set_status(session_id, "stopped", allowed_from=("running", "stopped"))
            return self._public(self._session(owner, session_id))

    def resume_session(self, owner: str, session_id: str) -> SessionPublic:
        """Continue a stopped session from its open generation. Idempotent."""
        with self._lock(session_id):
            session = self._session(owner, session_id)
            if session.status == "finished":
                raise SessionNotRunning(
                    f"session {session_id} finished by its stop rule; fork it to continue the search"
                )
            self._store.set_status(session_id, "running", allowed_from=("running", "stopped"))
            return self._public(self._session(owner, session_id))

    def fork_session(self, owner: str, session_id: str, fork: SessionFork) -> SessionCreated:
        """A new session with this one's settings, starting from its best measured codes."""
        source = self._session(owner, session_id)
        config = source.config
        if fork.generation is not None and fork.generation > source.generation:
            raise InvalidSessionConfig(f"session {session_id} has no generation {fork.generation} yet")
        parent = config["optimizer"]
        optimizer = fork.optimizer or OptimizerConfig(
            name=parent["name"],
            params={k: v for k, v in parent["params"].items() if k not in ("mean", "center", "initial_codes")},
        )
        request = SessionCreate(
            generator=config["generator"],
            optimizer=optimizer,
            population_size=config["population_size"],
            channels=config["channels"],
            objective=ObjectiveConfig(**config["objective"]),
            response=ResponseConfig(**(config.get("response") or {})),
            references={"builtin": config["references"]["builtin"]},  # type: ignore[arg-type]
            code_norm=config["code_norm"],
            max_generations=fork.max_generations,
            min_measured_fraction=config["min_measured_fraction"],
            metadata={**(config["metadata"] if fork.metadata is None else fork.metadata), "forked_from": {
                "session": session_id, "generation": source.generation if fork.generation is None else fork.generation
            }},
            init=InitConfig(session=session_id, best=fork.best, up_to_generation=fork.generation),
        )  # fmt: skip
        return self.create_session(owner, request)

    def history(self, owner: str, session_id: str) -> SessionHistory:
        session = self._session(owner, session_id)
        generations = self._store.list_generations(session_id)
        last = generations[-1].number if generations else 0
        stimuli = self._store.get_stimuli(session_id, 0, last)
        responses = {r.stimulus_id: r for r in self._store.get_responses(session_id, 0, last)}
        result = []
        for generation in generations:
            items = []
            for s in stimuli:
                if s.generation != generation.number:
                    continue
                response = responses.get(s.stimulus_id)
                items.append(
                    HistoryStimulus(
                        id=s.stimulus_id,
                        kind=s.kind,  # type: ignore[arg-type]
                        index=s.index,
                        code=s.code.tolist(),
                        counts=response.counts if response else None,
                        baseline=response.baseline if response else None,
                        score=response.score if response else None,
                    )
                )
            result.append(
                HistoryGeneration(
                    number=generation.number,
                    status="closed" if generation.closed else "open",
                    stimuli=items,
                    optimizer=generation.summary,
                )
            )
        return SessionHistory(session=self._public(session), generations=result)
