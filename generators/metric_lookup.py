"""Where a metric named by a session or a sweep is found: one lookup for both.

A name (``basis: "dcgan-faces.metric"``) is, in this order: the lab's file WEIGHTS_DIR/<name>.npz, as
``evostim metric`` saves it; a metric that ships with evostim (``generators/metrics/<name>.npz``); and, for a
session's own generator (``<generator>.metric``), the metric computed on first use and saved there, where that is
cheap. A session names files only (no paths: its request comes over HTTP) and gets a metric of its own generator; a
sweep's configuration may name any file, looked up first, and its workers load what :func:`metric_location` found.
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from evostim.generators.base import GeneratorSpec
from evostim.generators.errors import MetricNotFound
from evostim.generators.metric import DENSE_METRIC_DIMENSIONS, MetricBasis, metric_eigenbasis, packaged_metric

__all__ = ["NAMED_PARAMETERS", "find_metric", "metric_file", "metric_location", "named_settings", "shipped_metrics"]

log = logging.getLogger("evostim")
_FILE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def shipped_metrics() -> list[str]:
    """The names of the metrics that ship with evostim (``dcgan-faces.metric``)."""
    folder = importlib.resources.files("evostim.generators").joinpath("metrics")
    return sorted(entry.name.removesuffix(".npz") for entry in folder.iterdir() if entry.name.endswith(".metric.npz"))


def metric_file(name: str, weights_dir: Path | None, *, paths: bool = False) -> Path | None:
    """The lab's file of the metric ``name``: WEIGHTS_DIR/<name>.npz (with ``paths``, first ``name`` itself as a
    path); None where there is none."""
    candidates = [Path(name)] if paths else []
    if weights_dir is not None:
        candidates.append(weights_dir / f"{name}.npz")
    return next((path for path in candidates if path.is_file()), None)


def find_metric(
    name: str,
    weights_dir: Path | None = None,
    *,
    generator: GeneratorSpec | None = None,
    module: Callable[[], nn.Module] | None = None,
    paths: bool = False,
) -> MetricBasis:
    """The metric ``name``: the lab's file, the shipped one, or (``name`` being ``generator``'s own, ``module`` given)
    computed. ``paths``: ``name`` may be any file's path (a sweep's configuration); else it must be a file name.

    Raises MetricNotFound when there is none, or when it was computed for another generator than ``generator``.
    """
    if not paths and not _FILE_NAME.fullmatch(name):
        raise MetricNotFound(f"basis name {name!r} must be a file name (letters, digits, . _ -)")
    path = metric_file(name, weights_dir, paths=paths)
    saved = MetricBasis.load(path) if path is not None else None
    saved = saved or _shipped(name) or _computed(name, generator, module, weights_dir)
    if saved is None:
        raise MetricNotFound(_not_found(name, weights_dir, paths))
    if generator is not None and saved.generator != generator.name:
        raise MetricNotFound(f"basis {name!r} was computed for {saved.generator}, not {generator.name}")
    return saved


def _not_found(name: str, weights_dir: Path | None, paths: bool) -> str:
    looked = Path(name).resolve() if paths else Path(weights_dir or ".") / f"{name}.npz"
    return (
        f"basis {name!r}: no file {looked}, and evostim ships no metric of that name (it ships "
        f"{', '.join(shipped_metrics())}); make one with `evostim metric`"
    )


def metric_location(name: str, weights_dir: Path) -> str:
    """Where a sweep's metric ``name`` is, found as :func:`find_metric` finds it: a file's absolute path (so that
    workers that run elsewhere find it too), or the name of a shipped metric as it is. Raises MetricNotFound."""
    path = metric_file(name, weights_dir, paths=True)
    if path is not None:
        return str(path.resolve())
    find_metric(name, paths=True)  # shipped, or MetricNotFound
    return name


def _shipped(name: str) -> MetricBasis | None:
    return packaged_metric(name.removesuffix(".metric")) if name.endswith(".metric") else None


def _computed(
    name: str, spec: GeneratorSpec | None, module: Callable[[], nn.Module] | None, weights_dir: Path | None
) -> MetricBasis | None:
    """A session's own generator's metric where none is saved or shipped: computed exactly where that is cheap
    (latent spaces of at most 512 dimensions: about 10 s for 100 on 2 CPU cores) and saved as
    WEIGHTS_DIR/<generator>.metric.npz, where the next lookup finds it."""
    if spec is None or module is None or weights_dir is None or name != f"{spec.name}.metric":
        return None
    if spec.latent_dim > DENSE_METRIC_DIMENSIONS:
        raise MetricNotFound(
            f"basis {name!r}: {spec.name} has none saved, and its {spec.latent_dim}-d metric is not computed on first "
            f"use: run `evostim metric --generator {spec.name}` once"
        )
    codes = torch.as_tensor(spec.sample_prior(np.random.default_rng(0), 32)).float()
    generator = module()
    device = next(generator.parameters()).device
    metric = metric_eigenbasis(generator, codes.to(device), spec.latent_dim, generator=spec.name)
    path = weights_dir / f"{name}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial.npz")
    metric.save(partial)
    os.replace(partial, path)  # whole or not at all, also when two processes compute it at once
    log.info("computed the %s metric and saved it to %s", spec.name, path)
    return metric


# What a metric's name stands for in an optimizer's parameters: a session stores these as they were given (the name,
# not the arrays it resolves to, and the dimensions it cuts them to), so that its configuration stays small and a
# fork resolves the name again.
NAMED_PARAMETERS = ("basis", "eigenvalues", "dimensions")


def named_settings(settings: dict[str, Any], given: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """An optimizer's ``settings`` with a basis ``given`` by name kept as that name (``defaults``: the optimizer's
    parameter defaults, for the named parameters that were not given)."""
    if not isinstance(given.get("basis"), str):
        return settings
    return {**settings, **{key: given.get(key, defaults[key]) for key in NAMED_PARAMETERS if key in defaults}}
