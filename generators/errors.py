"""Generator errors.

GeneratorError
├── UnknownGenerator            no generator is registered under that name
├── GeneratorWeightsMissing     the weights file or package is absent (install it or set the path)
│   └── GeneratorPackageMissing the package that ships the weights is not installed (the message has the command)
├── GeneratorWeightsMismatch    the weights file does not fit the architecture (wrong keys or shapes)
├── BadLatentCodes              codes of the wrong shape or with non-finite values
└── MetricNotFound              no metric of that name for this generator (make one with `evostim metric`)
"""

from __future__ import annotations

__all__ = [
    "BadLatentCodes",
    "GeneratorError",
    "GeneratorPackageMissing",
    "GeneratorWeightsMismatch",
    "GeneratorWeightsMissing",
    "MetricNotFound",
    "UnknownGenerator",
]


class GeneratorError(Exception):
    """Base of every generator error."""


class UnknownGenerator(GeneratorError, KeyError):
    """No generator is registered under that name."""

    def __str__(self) -> str:
        return str(self.args[0])


class GeneratorWeightsMissing(GeneratorError, FileNotFoundError):
    """The generator's pretrained weights cannot be found."""


class GeneratorPackageMissing(GeneratorWeightsMissing):
    """The PyPI package that ships the generator's weights is not installed; ``package`` names it."""

    def __init__(self, message: str, *, package: str) -> None:
        super().__init__(message)
        self.package = package


class BadLatentCodes(GeneratorError, ValueError):
    """Latent codes of the wrong shape, or not finite."""


class GeneratorWeightsMismatch(GeneratorError):
    """The weights file does not fit the architecture: the message lists the missing, unexpected and misshapen keys."""


class MetricNotFound(GeneratorError, FileNotFoundError):
    """No metric of that name: no such file, none that ships with evostim, or one computed for another generator."""
