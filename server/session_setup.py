"""What a new session starts from: its optimizer (parameters, saved basis, start codes) and its reference codes.

Reads the store only to take another session's best measured codes; writes nothing there (the one file it may
write is a generator's metric, computed once for metric-cma sessions).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from evostim import optimizers
from evostim.generators import GeneratorSpec
from evostim.generators.metric import DENSE_METRIC_DIMENSIONS, MetricBasis, metric_eigenbasis, with_saved_metric
from evostim.optimizers import Optimizer, OptimizerError
from evostim.protocol import InitConfig, SessionCreate
from evostim.server.errors import InvalidSessionConfig
from evostim.server.limits import is_session_id
from evostim.server.session_config import SessionConfig
from evostim.server.stimuli import project_to_sphere
from evostim.server.store import Store

__all__ = ["build_optimizer", "generator_metric", "named_metric", "reference_codes", "start_codes", "start_parameters"]

FloatArray = NDArray[np.float64]
log = logging.getLogger("evostim")


def named_metric(name: str, generator: str, weights_dir: Path) -> MetricBasis:
    """The eigenbasis saved by ``evostim metric`` as WEIGHTS_DIR/<name>.npz, checked against the generator."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", name):
        raise InvalidSessionConfig(f"basis name {name!r} must be a file name (letters, digits, . _ -)")
    path = weights_dir / f"{name}.npz"
    if not path.is_file():
        raise InvalidSessionConfig(f"basis {name!r}: no file {path}; make it with `evostim metric`")
    saved = MetricBasis.load(path)
    if saved.generator != generator:
        raise InvalidSessionConfig(f"basis {name!r} was computed for {saved.generator}, not {generator}")
    return saved


def start_parameters(optimizer_name: str, start: FloatArray) -> dict[str, Any]:
    """How an optimizer is told where to start: the parameter its class declares (``start``), from the codes."""
    try:
        return optimizers.start_parameters(optimizer_name, start)
    except OptimizerError as error:
        raise InvalidSessionConfig(str(error)) from None


def generator_metric(spec: GeneratorSpec, weights_dir: Path, module: Callable[[], nn.Module]) -> MetricBasis:
    """The generator's saved metric (WEIGHTS_DIR/<generator>.metric.npz), computed and saved on first use where it is
    cheap: exactly, for latent spaces of at most 512 dimensions (dcgan-faces: about 10 s on 2 CPU cores)."""
    path = weights_dir / f"{spec.name}.metric.npz"
    if path.is_file():
        return named_metric(path.name.removesuffix(".npz"), spec.name, weights_dir)
    if spec.latent_dim > DENSE_METRIC_DIMENSIONS:
        raise InvalidSessionConfig(
            f"metric-cma on {spec.name} needs its metric: run `evostim metric --generator {spec.name}` once"
        )
    codes = torch.as_tensor(spec.sample_prior(np.random.default_rng(0), 32)).float()
    generator = module()
    device = next(generator.parameters()).device
    metric = metric_eigenbasis(generator, codes.to(device), spec.latent_dim, generator=spec.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial.npz")
    metric.save(partial)
    os.replace(partial, path)  # whole or not at all, also when two processes compute it at once
    log.info("computed the %s metric for metric-cma sessions and saved it to %s", spec.name, path)
    return metric


def build_optimizer(
    request: SessionCreate,
    spec: GeneratorSpec,
    seed: int,
    start: FloatArray | None,
    weights_dir: Path,
    module: Callable[[], nn.Module] | None = None,
) -> Optimizer:
    """The session's optimizer: named basis resolved (metric-cma without one: the generator's metric, through
    ``module``, the generator's network), start codes turned into its start parameter."""
    params = dict(request.optimizer.params)
    name = request.optimizer.name
    if isinstance(params.get("basis"), str) and name in optimizers.OPTIMIZERS:
        saved = named_metric(params["basis"], spec.name, weights_dir)
        params = with_saved_metric(params, saved, optimizers.parameter_names(optimizers.lookup(name)))
    elif name == "metric-cma" and params.get("basis") is None and module is not None:
        params = with_saved_metric(
            params, generator_metric(spec, weights_dir, module), optimizers.parameter_names(optimizers.MetricCMA)
        )
    if start is not None:
        params = {**start_parameters(request.optimizer.name, start), **params}
    try:
        return optimizers.create_optimizer(
            request.optimizer.name,
            spec.latent_dim,
            population_size=request.population_size,
            seed=seed,
            code_norm=spec.typical_norm,  # the generator's scale sets the step-size defaults
            **params,
        )
    except OptimizerError as error:
        raise InvalidSessionConfig(f"optimizer {request.optimizer.name}: {error}") from None


def start_codes(store: Store, owner: str, init: InitConfig, spec: GeneratorSpec) -> FloatArray:
    """The codes a search starts from (k, d): given ones, or another session's best measured evolved codes."""
    if init.session is None:
        return _given_codes(init.codes, spec)
    return _best_codes(store, owner, init, spec.name)


def _given_codes(rows: list[list[float]], spec: GeneratorSpec) -> FloatArray:
    try:
        codes = np.asarray(rows, dtype=np.float64)
    except ValueError:  # ragged rows
        codes = np.zeros((0,))
    if codes.ndim != 2 or codes.shape[1] != spec.latent_dim or not np.isfinite(codes).all():
        raise InvalidSessionConfig(f"init.codes must be rows of {spec.latent_dim} finite numbers for {spec.name}")
    return codes


def _best_codes(store: Store, owner: str, init: InitConfig, generator: str) -> FloatArray:
    source = store.get_session(init.session) if init.session and is_session_id(init.session) else None
    if source is None or source.owner != owner:
        raise InvalidSessionConfig(f"init.session: no session {init.session!r}")
    searched = SessionConfig.from_stored(source.config).generator
    if searched != generator:
        raise InvalidSessionConfig(f"init.session {init.session} searched {searched}, not {generator}")
    last = init.up_to_generation if init.up_to_generation is not None else source.generation
    scored = _measured_evolved(store, source.id, last)
    if not scored:
        raise InvalidSessionConfig(f"init.session {init.session} has no measured evolved stimuli to start from")
    scored.sort(key=lambda pair: -pair[0])
    return np.stack([code for _, code in scored[: init.best]])


def _measured_evolved(store: Store, session_id: str, last: int) -> list[tuple[float, FloatArray]]:
    """(score, code) of every measured evolved stimulus of generations 0..last."""
    stimuli = {s.stimulus_id: s for s in store.get_stimuli(session_id, 0, last) if s.kind == "evolved"}
    responses = store.get_responses(session_id, 0, last)
    return [
        (r.score, stimuli[r.stimulus_id].code) for r in responses if r.stimulus_id in stimuli and r.score is not None
    ]


def reference_codes(request: SessionCreate, spec: GeneratorSpec, reference_seed: int) -> list[FloatArray]:
    """Built-in references (the same latents for every session on this server: comparable across days) + given."""
    rng = np.random.default_rng(reference_seed)
    count = request.references.builtin
    builtin = project_to_sphere(rng.standard_normal((count, spec.latent_dim)), spec.typical_norm)
    given = []
    for i, code in enumerate(request.references.codes):
        array = np.asarray(code, dtype=np.float64)
        if array.shape != (spec.latent_dim,) or not np.isfinite(array).all():
            raise InvalidSessionConfig(
                f"references.codes[{i}] must be {spec.latent_dim} finite numbers for {spec.name}, got {len(code)}"
            )
        given.append(array)
    return [*builtin, *given]
