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
from evostim.generators.metric import (
    DENSE_METRIC_DIMENSIONS,
    MetricBasis,
    metric_eigenbasis,
    packaged_metric,
    with_saved_metric,
)
from evostim.optimizers import InvalidParameter, Optimizer, OptimizerError
from evostim.optimizers.geometry import project_to_sphere
from evostim.protocol import InitConfig, SessionCreate
from evostim.server.sessions.config import SessionConfig
from evostim.server.sessions.errors import InvalidSessionConfig
from evostim.server.sessions.limits import is_session_id
from evostim.server.storage.store import Store

__all__ = [
    "build_optimizer",
    "generator_metric",
    "named_metric",
    "reference_codes",
    "start_codes",
    "start_parameters",
]

FloatArray = NDArray[np.float64]
log = logging.getLogger("evostim")


def named_metric(
    name: str, spec: GeneratorSpec, weights_dir: Path, module: Callable[[], nn.Module] | None = None
) -> MetricBasis:
    """The eigenbasis saved by ``evostim metric`` as WEIGHTS_DIR/<name>.npz, checked against the generator; the
    generator's own name (``dcgan-faces.metric``) without such a file: its shipped or computed metric."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", name):
        raise InvalidSessionConfig(f"basis name {name!r} must be a file name (letters, digits, . _ -)")
    path = weights_dir / f"{name}.npz"
    if not path.is_file():
        if name == f"{spec.name}.metric" and module is not None:
            return generator_metric(spec, weights_dir, module)
        raise InvalidSessionConfig(f"basis {name!r}: no file {path}; make it with `evostim metric`")
    saved = MetricBasis.load(path)
    if saved.generator != spec.name:
        raise InvalidSessionConfig(f"basis {name!r} was computed for {saved.generator}, not {spec.name}")
    return saved


def start_parameters(optimizer_name: str, start: FloatArray) -> dict[str, Any]:
    """How an optimizer is told where to start: the parameter its class declares (``start``), from the codes."""
    try:
        return optimizers.start_parameters(optimizer_name, start)
    except OptimizerError as error:
        raise InvalidSessionConfig(str(error)) from None


def generator_metric(spec: GeneratorSpec, weights_dir: Path, module: Callable[[], nn.Module]) -> MetricBasis:
    """The generator's metric where the lab has saved none: the one evostim ships (dcgan-faces), else computed and
    saved as WEIGHTS_DIR/<generator>.metric.npz on first use where that is cheap: exactly, for latent spaces of at
    most 512 dimensions (about 10 s for 100 dimensions on 2 CPU cores)."""
    path = weights_dir / f"{spec.name}.metric.npz"
    shipped = packaged_metric(spec.name)
    if shipped is not None:
        return shipped
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


# metric-cma in a session refreshes its directions at its mean this often (generations) unless told: on held-out
# units 0.43 of cholesky-cma's evaluations against 0.52 without (docs/sample_efficiency.md, round 6).
SESSION_REFRESH_EVERY = 5
# ... and refreshes with the metric of a window at the image centre (standard deviation 1/8 of the side): on
# held-out units 0.39 of cholesky-cma's evaluations against 0.43 without, 0.43 on 36 fresh ones
# (docs/sample_efficiency.md, round 11).
SESSION_WINDOW = 0.125
# ... and begins two searches, the better after 3 generations each going on: on 36 fresh held-out units 0.33 of
# cholesky-cma's evaluations against 0.37 with one, and higher at the full budget (docs/sample_efficiency.md,
# round 13).
SESSION_STARTS = 2


def default_optimizer(spec: GeneratorSpec) -> str:
    """The optimizer a session on this generator runs when it names none."""
    return spec.default_optimizer or optimizers.DEFAULT_OPTIMIZER


# Parameters that may name a saved metric instead of holding its arrays (sessions store the name, not the arrays).
_METRIC_PARAMETERS = ("basis", "eigenvalues", "dimensions")


def build_optimizer(
    request: SessionCreate,
    spec: GeneratorSpec,
    seed: int,
    start: FloatArray | None,
    weights_dir: Path,
    module: Callable[[], nn.Module] | None = None,
) -> tuple[Optimizer, dict[str, Any]]:
    """The session's optimizer and the settings to store with the session: a named basis resolved for the optimizer
    but kept as its name in the settings (metric-cma without one: the generator's metric, ``<generator>.metric``,
    the lab's file, the shipped one, or computed through ``module``; and refreshed at its mean every
    ``SESSION_REFRESH_EVERY`` generations where that is within reach, with the metric of ``SESSION_WINDOW``,
    from ``SESSION_STARTS`` starts), start codes turned into its start parameter. A request that names no
    optimizer gets the generator's default."""
    name = request.optimizer.name or default_optimizer(spec)
    params = _with_session_defaults(name, dict(request.optimizer.params), spec)
    named = dict(params)
    if isinstance(params.get("basis"), str) and name in optimizers.OPTIMIZERS:
        saved = named_metric(params["basis"], spec, weights_dir, module)
        params = with_saved_metric(params, saved, optimizers.parameter_names(optimizers.lookup(name)))
    if start is not None:
        params = {**start_parameters(name, start), **params}
    try:
        optimizer = optimizers.create_optimizer(
            name,
            spec.latent_dim,
            population_size=request.population_size,
            seed=seed,
            code_norm=spec.typical_norm,  # the generator's scale sets the step-size defaults
            **params,
        )
    except InvalidParameter as error:  # create_optimizer names the optimizer already
        raise InvalidSessionConfig(f"optimizer {error}") from None
    except OptimizerError as error:
        raise InvalidSessionConfig(f"optimizer {name}: {error}") from None
    _check_metric_at_code(optimizer, spec)
    return optimizer, _stored_settings(optimizer, named)


def _with_session_defaults(name: str, params: dict[str, Any], spec: GeneratorSpec) -> dict[str, Any]:
    """metric-cma in a session: the generator's metric as its basis, refreshed at its mean where within reach
    (sphere-cma inside, the exact metric at a code computable), with the metric of a centred window, from two
    starts."""
    if name != "metric-cma":
        return params
    params.setdefault("starts", SESSION_STARTS)
    generators_own = params.get("basis") is None
    if generators_own:
        params["basis"] = f"{spec.name}.metric"
    refreshable = params.get("inner", "sphere-cma") == "sphere-cma" and spec.latent_dim <= DENSE_METRIC_DIMENSIONS
    if "refresh_every" not in params and refreshable:
        params["refresh_every"] = SESSION_REFRESH_EVERY
    # A basis the lab names brings its own window (a file of `evostim metric --window`), or none.
    if "window" not in params and generators_own and params.get("refresh_every") is not None:
        params["window"] = SESSION_WINDOW
    return params


def _check_metric_at_code(optimizer: Optimizer, spec: GeneratorSpec) -> None:
    """An optimizer that asks for the metric at its mean gets it exactly: d Jacobian products, for small d only."""
    needs_metric = isinstance(optimizer, optimizers.MetricCMA) and optimizer.needs_generator_metric
    if needs_metric and spec.latent_dim > DENSE_METRIC_DIMENSIONS:
        raise InvalidSessionConfig(
            f"optimizer {optimizer.name}: refresh_every needs the metric at a code, computed exactly up to "
            f"{DENSE_METRIC_DIMENSIONS}-d latent spaces; {spec.name}'s is {spec.latent_dim}-d"
        )


def _stored_settings(optimizer: Optimizer, named: dict[str, Any]) -> dict[str, Any]:
    """The optimizer's settings, with a basis that was given by name kept as that name (and the eigenvalues and
    dimensions as given), so that a session's config stays small and a fork resolves the name again."""
    settings = optimizer.settings
    if not isinstance(named.get("basis"), str):
        return settings
    defaults = {spec.name: spec.default for spec in type(optimizer).parameters.specs()}
    return {**settings, **{key: named.get(key, defaults[key]) for key in _METRIC_PARAMETERS if key in defaults}}


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
