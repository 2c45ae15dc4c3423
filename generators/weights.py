"""Loading a lab's weight file into an architecture, with errors that name the file, keys and shapes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from evostim.generators.errors import GeneratorWeightsMismatch, GeneratorWeightsMissing

__all__ = ["load_state_dict_file"]


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
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a corrupt or non-torch file: say which
        raise GeneratorWeightsMismatch(f"{label}: {path} is not a readable torch state dict ({error})") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise GeneratorWeightsMismatch(f"{label}: {path} holds a {type(loaded).__name__}, not a state dict")
    try:
        state = {rename(key): value for key, value in transform(loaded).items()}
    except (KeyError, RuntimeError) as error:
        raise GeneratorWeightsMismatch(f"{label}: {path} has incomplete or misshapen entries ({error})") from None
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshapen = [
        f"{key} {tuple(state[key].shape)} (expected {tuple(expected[key].shape)})"
        for key in sorted(set(state) & set(expected))
        if tuple(state[key].shape) != tuple(expected[key].shape)
    ]
    if missing or unexpected or misshapen:
        problems = []
        for title, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", misshapen)):
            if keys:
                shown = ", ".join(keys[:8]) + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")
                problems.append(f"{title}: {shown}")
        raise GeneratorWeightsMismatch(f"{label}: {path} does not fit the architecture; " + "; ".join(problems))
    module.load_state_dict(state)
