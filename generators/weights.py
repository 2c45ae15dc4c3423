"""Where a generator's weights come from, whether they are in place, and loading a lab's weight file.

A generator declares one source: ``PackageWeights`` (a file inside an installed PyPI package, installed with
``--no-deps``), ``FileWeights`` (a file the lab puts in its weights folder) or ``NoWeights`` (random-init test
generators). Each source tells availability from the file system alone, without importing or loading anything.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from evostim.generators.errors import GeneratorPackageMissing, GeneratorWeightsMismatch, GeneratorWeightsMissing

__all__ = ["FileWeights", "NoWeights", "PackageWeights", "WeightsSource", "load_state_dict_file"]


@dataclass(frozen=True)
class PackageWeights:
    """Weights shipped as ``resource`` inside the installed package ``distribution`` (import name ``module``).

    Such packages are installed with ``--no-deps`` (their own pins conflict with ours), so they cannot be
    dependencies of the wheel; ``install`` is the one command that puts them in place.
    """

    distribution: str
    module: str
    version: str
    resource: str

    @property
    def install(self) -> str:
        return f"pip install --no-deps {self.distribution}=={self.version}"

    def _package_dir(self) -> Path | None:
        """The package's folder, found without importing it (its __init__ may pull in what we don't install)."""
        try:
            spec = importlib.util.find_spec(self.module)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations)))

    def locate(self, label: str, weights_dir: Path) -> Path:
        folder = self._package_dir()
        if folder is None:
            raise GeneratorPackageMissing(
                f"{label} needs the package {self.distribution}, which is not installed: {self.install}",
                package=self.distribution,
            )
        path = folder / self.resource
        if not path.is_file():
            raise GeneratorWeightsMissing(
                f"{label}: the installed package {self.distribution} has no {self.resource} (expected at {path}); "
                f"reinstall it: {self.install}"
            )
        return path


@dataclass(frozen=True)
class FileWeights:
    """Weights the lab provides as ``filename`` in its weights folder (EVOSTIM_WEIGHTS_DIR)."""

    filename: str

    def locate(self, label: str, weights_dir: Path) -> Path:
        path = weights_dir / self.filename
        if not path.is_file():
            raise GeneratorWeightsMissing(
                f"{label}: weights file {path} not found; put the lab's state dict there "
                "(EVOSTIM_WEIGHTS_DIR sets the folder)"
            )
        return path


@dataclass(frozen=True)
class NoWeights:
    """No pretrained weights: the module is built from a fixed seed (test generators)."""

    def locate(self, label: str, weights_dir: Path) -> None:
        return None


WeightsSource = PackageWeights | FileWeights | NoWeights


def _read_state(path: Path, label: str) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` (a torch state dict, or a dict holding one under "state_dict")."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a corrupt or non-torch file: say which
        raise GeneratorWeightsMismatch(f"{label}: {path} is not a readable torch state dict ({error})") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise GeneratorWeightsMismatch(f"{label}: {path} holds a {type(loaded).__name__}, not a state dict")
    return loaded


def _listed(title: str, keys: list[str], shown: int = 8) -> str:
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return f"{title}: {', '.join(keys[:shown])}{more}"


def _mismatches(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> list[str]:
    """What keeps ``state`` from loading into a module whose state dict is ``expected`` (empty: it fits)."""
    groups = {
        "missing keys": sorted(set(expected) - set(state)),
        "unexpected keys": sorted(set(state) - set(expected)),
        "wrong shapes": [
            f"{key} {tuple(state[key].shape)} (expected {tuple(expected[key].shape)})"
            for key in sorted(set(state) & set(expected))
            if tuple(state[key].shape) != tuple(expected[key].shape)
        ],
    }
    return [_listed(title, keys) for title, keys in groups.items() if keys]


def load_state_dict_file(
    module: nn.Module,
    path: Path,
    *,
    label: str,
    rename: Callable[[str], str] = lambda key: key,
    transform: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] = lambda state: state,
) -> None:
    """Load ``path`` (a torch state dict, or a dict holding one under "state_dict") into ``module`` strictly.

    ``rename`` maps the file's keys to the module's (e.g. to drop a prefix other ports add); ``transform``
    rewrites the whole state first (e.g. to fold spectral normalization into plain weights).
    """
    if not path.is_file():
        raise GeneratorWeightsMissing(
            f"{label}: weights file {path} not found; put the lab's state dict there "
            "(EVOSTIM_WEIGHTS_DIR sets the folder)"
        )
    loaded = _read_state(path, label)
    try:
        state = {rename(key): value for key, value in transform(loaded).items()}
    except (KeyError, RuntimeError) as error:
        raise GeneratorWeightsMismatch(f"{label}: {path} has incomplete or misshapen entries ({error})") from None
    problems = _mismatches(module.state_dict(), state)
    if problems:
        raise GeneratorWeightsMismatch(f"{label}: {path} does not fit the architecture; " + "; ".join(problems))
    module.load_state_dict(state)
