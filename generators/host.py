"""A generator as the host of the optimizers that search it: their declared needs, filled in one place.

An optimizer class declares what it needs from its host (``evostim.optimizers.host``): services such as the
generator's metric at a code, and the defaults of a session on a generator. Sessions and sweeps build their
optimizers here, never by checking which optimizer they hold:

- :func:`generator_host` (or :class:`Hosts`, one per generator, made once) is the ``Host`` of a generator;
- :func:`hosted_optimizer` builds an optimizer with a basis given by name resolved, the host given to it, and its
  needs checked against what the host provides;
- :func:`session_parameters` adds the defaults a session's optimizer declares for this host (a sweep adds none).

A stored optimizer is restored with its host: ``optimizers.optimizer_from_state(state, host=host)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from torch import nn

from evostim import optimizers
from evostim.generators import generator_spec
from evostim.generators.base import GeneratorSpec
from evostim.generators.metric import DENSE_METRIC_DIMENSIONS, MetricBasis, metric_at_code, with_saved_metric
from evostim.generators.metric_ahead import MetricsAhead
from evostim.optimizers import Host, InvalidParameter, MetricAt, Optimizer

__all__ = ["Hosts", "generator_host", "hosted_optimizer", "session_parameters"]


def generator_host(spec: GeneratorSpec, module: Callable[[], nn.Module], *, warm_up: bool = False) -> Host:
    """The host of optimizers searching ``spec``'s latent space: its name and dimension, and its metric at a code where
    that is computed exactly (latent spaces of up to 512 dimensions), through ``module()`` at the first call only,
    and computed ahead of the asking where an optimizer says where it will ask (``MetricsAhead``). ``warm_up``: pay
    the first metric's extra cost now, in the background (a server, whose sessions' refreshes would wait for it)."""
    if spec.latent_dim > DENSE_METRIC_DIMENSIONS:
        return Host(generator=spec.name, latent_dim=spec.latent_dim)
    metrics = MetricsAhead(_lazy_metric(module), spec.latent_dim)
    if warm_up:
        metrics.warm_up(spec.sample_prior(np.random.default_rng(0), 1)[0])
    return Host(generator=spec.name, latent_dim=spec.latent_dim, metric_at=metrics.at, metric_ahead=metrics.ahead)


def _lazy_metric(module: Callable[[], nn.Module]) -> MetricAt:
    """The metric at a code (``metric_at_code``), the network taken (and copied to the CPU) at the first call."""
    at_code = functools.cache(lambda: metric_at_code(module()))
    return lambda code, window: at_code()(code, window)


class Hosts:
    """Each generator's host, made once: its metric at a code keeps one CPU copy of the network for all sessions."""

    def __init__(self, module_of: Callable[[str], nn.Module]) -> None:
        self._module_of = module_of
        self._hosts: dict[str, Host] = {}

    def __call__(self, generator: str) -> Host:
        host = self._hosts.get(generator)
        if host is None:
            made = generator_host(generator_spec(generator), lambda: self._module_of(generator), warm_up=True)
            host = self._hosts.setdefault(generator, made)  # two threads at once: both keep the first one made
        return host


def session_parameters(
    name: str,
    params: Mapping[str, Any],
    host: Host,
    *,
    generations: int | None = None,
    population_size: int | None = None,
) -> dict[str, Any]:
    """A session's optimizer parameters with the defaults its class declares for ``host``, a session planned to
    last ``generations`` generations (None: open-ended) and ``population_size`` images a generation
    (``session_defaults``); an unknown optimizer's as given (refused where it is built)."""
    cls = optimizers.OPTIMIZERS.get(name)
    if cls is None:
        return dict(params)
    return cls.session_defaults(dict(params), host, generations=generations, population_size=population_size)


def hosted_optimizer(
    name: str,
    dim: int,
    *,
    population_size: int,
    seed: int,
    code_norm: float | None,
    host: Host | None,
    find_metric: Callable[[str], MetricBasis],
    params: Mapping[str, Any] | None = None,
    **more: Any,
) -> Optimizer:
    """Optimizer ``name`` as its host runs it, for sessions and sweeps alike: a basis given by name resolved by
    ``find_metric`` (with its eigenvalues and window, for an optimizer that takes them), ``host`` given to it, and
    refused (InvalidParameter, prefixed by its name) where it needs a service the host cannot provide. ``host``
    None: not known yet (a sweep's configuration checked before its panel exists); needs are then not checked.

    Raises what ``create_optimizer`` raises, and what ``find_metric`` raises for a basis it cannot find. ``params``
    and ``more``: its parameters (a client's go in ``params``, as for ``create_optimizer``).
    """
    params = {**(params or {}), **more}
    if isinstance(params.get("basis"), str) and name in optimizers.OPTIMIZERS:
        parameters = optimizers.parameter_names(optimizers.lookup(name))
        params = with_saved_metric(params, find_metric(params["basis"]), parameters)
    optimizer = optimizers.create_optimizer(
        name,
        dim,
        population_size=population_size,
        seed=seed,
        code_norm=code_norm,
        host=host or optimizers.NO_HOST,
        params=params,
    )
    if host is not None:
        _check_needs(optimizer, host)
    return optimizer


def _check_needs(optimizer: Optimizer, host: Host) -> None:
    """Refuse an optimizer that needs a service ``host`` cannot provide, saying why not."""
    settings = optimizer.settings
    for need in type(optimizer).needs:
        if need.active(settings) and getattr(host, need.service) is None:
            asked = f"{need.when} needs" if need.when else "needs"
            raise InvalidParameter(f"{optimizer.name}: {asked} {_unavailable(need.service, host)}")


def _unavailable(service: str, host: Host) -> str:
    """A service the host cannot provide, and why."""
    if service == "metric_at":
        return (
            f"the metric at a code, computed exactly up to {DENSE_METRIC_DIMENSIONS}-d latent spaces; "
            f"{host.generator}'s is {host.latent_dim}-d"
        )
    return f"{service}, which {host.generator or 'this host'} does not provide"
