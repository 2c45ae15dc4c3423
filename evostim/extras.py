"""Optional parts of evostim: each is a pip extra, imported only where it is used.

``require`` imports an extra's module or raises ``MissingExtra``, whose message names the extra to install;
the server answers it as a 422 problem and the command line prints it, never a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

__all__ = ["MissingExtra", "is_installed", "require"]


class MissingExtra(Exception):
    """A feature needs an optional package that is not installed."""

    def __init__(self, *, extra: str, module: str, feature: str) -> None:
        self.extra = extra
        self.module = module
        self.feature = feature
        super().__init__(self.message())

    def message(self, where: str = "") -> str:
        """What is missing and the command that installs it; ``where``: the environment to run it in, if not here."""
        missing = f"which {where} does not have" if where else "which is not installed"
        place = f" in {where}'s environment" if where else ""
        install = f"pip install 'evostim[{self.extra}]'{place}"
        return f"{self.feature} needs the optional package {self.module!r}, {missing}: {install}"


def is_installed(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a half-initialized module
        return False


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import ``module``, or raise MissingExtra naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(extra=extra, module=module, feature=feature) from None
