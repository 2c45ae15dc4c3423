"""evostim: closed-loop neuron-stimulus search. Evolve generator images that drive recorded neurons.

The names a notebook needs are here: ``from evostim import Client``. The parts live in subpackages, whose folders
sit at the top of the repository: ``evostim.server``, ``evostim.optimizers``, ``evostim.generators``,
``evostim.clients``.
"""

from importlib.metadata import PackageNotFoundError, version

from evostim.clients.client import AsyncClient, Client
from evostim.clients.errors import (
    Conflict,
    ContentTooLarge,
    EvostimError,
    ExtraMissing,
    Forbidden,
    GenerationClosed,
    GenerationNotFound,
    GeneratorUnavailable,
    IdempotencyKeyReused,
    InternalError,
    InvalidRequest,
    InvalidResponses,
    InvalidSessionConfig,
    MethodNotAllowed,
    NotFound,
    NotReady,
    ServerError,
    SessionNotFound,
    SessionNotRunning,
    StateCorrupt,
    StimulusNotFound,
    Unauthorized,
    UnstorableValue,
    UnsupportedMediaType,
    ValidationError,
)
from evostim.clients.local_server import LocalServer

try:
    __version__ = version("evostim")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "AsyncClient",
    "Client",
    "Conflict",
    "ContentTooLarge",
    "EvostimError",
    "ExtraMissing",
    "Forbidden",
    "GenerationClosed",
    "GenerationNotFound",
    "GeneratorUnavailable",
    "IdempotencyKeyReused",
    "InternalError",
    "InvalidRequest",
    "InvalidResponses",
    "InvalidSessionConfig",
    "LocalServer",
    "MethodNotAllowed",
    "NotFound",
    "NotReady",
    "ServerError",
    "SessionNotFound",
    "SessionNotRunning",
    "StateCorrupt",
    "StimulusNotFound",
    "Unauthorized",
    "UnstorableValue",
    "UnsupportedMediaType",
    "ValidationError",
    "__version__",
]
