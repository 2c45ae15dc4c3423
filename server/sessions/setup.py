"""What a new session starts from: its optimizer (parameters, saved basis, start codes) and its reference codes.

Reads the store only to take another session's best measured codes; writes nothing there (the one file it may
write is a generator's metric, computed once where a session names it and none is saved).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from torch import nn

from evostim import optimizers
from evostim.generators import GeneratorSpec
from evostim.generators.errors import MetricNotFound
from evostim.generators.host import hosted_optimizer, session_parameters
from evostim.generators.metric_lookup import find_metric, named_settings
from evostim.optimizers import Host, InvalidParameter, Optimizer, OptimizerError
from evostim.optimizers.geometry import project_to_sphere
from evostim.protocol import InitConfig, SessionCreate
from evostim.server.sessions.config import SessionConfig
from evostim.server.sessions.errors import InvalidSessionConfig
from evostim.server.sessions.limits import is_session_id
from evostim.server.storage.store import Store

__all__ = ["build_optimizer", "reference_codes", "start_codes", "start_parameters"]

FloatArray = NDArray[np.float64]


def start_parameters(optimizer_name: str, start: FloatArray) -> dict[str, Any]:
    """How an optimizer is told where to start: the parameter its class declares (``start``), from the codes."""
    try:
        return optimizers.start_parameters(optimizer_name, start)
    except OptimizerError as error:
        raise InvalidSessionConfig(str(error)) from None


def default_optimizer(spec: GeneratorSpec) -> str:
    """The optimizer a session on this generator runs when it names none."""
    return spec.default_optimizer or optimizers.DEFAULT_OPTIMIZER


def build_optimizer(
    request: SessionCreate,
    spec: GeneratorSpec,
    seed: int,
    start: FloatArray | None,
    weights_dir: Path,
    module: Callable[[], nn.Module] | None = None,
    host: Host | None = None,
) -> tuple[Optimizer, dict[str, Any]]:
    """The session's optimizer, hosted by the session's generator (``host``: its declared needs and session defaults;
    evostim.generators.host), and the settings to store with the session: a basis named (the generator's own,
    ``<generator>.metric``, is the lab's file, the shipped one, or computed through ``module``) resolved for the
    optimizer but kept as its name in the settings, start codes turned into its start parameter. A request that
    names no optimizer gets the generator's default."""
    name = request.optimizer.name or default_optimizer(spec)
    given = dict(request.optimizer.params)
    if host is not None:
        given = session_parameters(
            name, given, host, generations=request.max_generations, population_size=request.population_size
        )
    params = given if start is None else {**start_parameters(name, start), **given}
    lookup = partial(find_metric, weights_dir=weights_dir, generator=spec, module=module)
    try:
        optimizer = hosted_optimizer(
            name,
            spec.latent_dim,
            population_size=request.population_size,
            seed=seed,
            code_norm=spec.typical_norm,  # the generator's scale sets the step-size defaults
            host=host,
            find_metric=lookup,
            params=params,
        )
    except MetricNotFound as error:
        raise InvalidSessionConfig(str(error)) from None
    except InvalidParameter as error:  # it names the optimizer already
        raise InvalidSessionConfig(f"optimizer {error}") from None
    except OptimizerError as error:
        raise InvalidSessionConfig(f"optimizer {name}: {error}") from None
    defaults = {parameter.name: parameter.default for parameter in type(optimizer).parameters.specs()}
    return optimizer, named_settings(optimizer.settings, given, defaults)


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
    # An image shown more than once (the same code: metric-cma's remeasure) is one image, ranked by its mean score.
    showings: dict[bytes, tuple[list[float], FloatArray]] = {}
    for score, code in scored:
        showings.setdefault(code.tobytes(), ([], code))[0].append(score)
    ranked = sorted(showings.values(), key=lambda shown: -float(np.mean(shown[0])))  # stable: the earlier first
    return np.stack([code for _, code in ranked[: init.best]])


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
