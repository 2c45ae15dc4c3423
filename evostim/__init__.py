"""evostim: closed-loop neuron-stimulus search. Evolve generator images that drive recorded neurons.

The names a notebook needs are here: ``from evostim import Client``. The parts live in subpackages, whose folders
sit at the top of the repository: ``evostim.server``, ``evostim.optimizers``, ``evostim.generators``,
``evostim.clients``; the command line is ``evostim.cli``.
"""

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# evostim/<folder> links to the owner's top-level folders. A checkout without symlink support (Git for Windows'
# default) has small text files there instead: then the subpackages are found in the folders themselves.
_CHECKOUT = Path(__file__).resolve().parent.parent
if not Path(__file__).with_name("server").is_dir() and (_CHECKOUT / "server" / "__init__.py").is_file():
    __path__.append(str(_CHECKOUT))

from evostim.clients.http.client import AsyncClient, Client
from evostim.clients.http.errors import (
    Conflict,
    ContentTooLarge,
    DatabaseUnavailable,
    EventStreamsFull,
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
    TooManyConnections,
    TooManyRequests,
    Unauthorized,
    UnstorableValue,
    UnsupportedMediaType,
    ValidationError,
)
from evostim.clients.http.local_server import LocalServer

try:
    __version__ = version("evostim")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "AsyncClient",
    "Client",
    "Conflict",
    "ContentTooLarge",
    "DatabaseUnavailable",
    "EventStreamsFull",
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
    "TooManyConnections",
    "TooManyRequests",
    "Unauthorized",
    "UnstorableValue",
    "UnsupportedMediaType",
    "ValidationError",
    "__version__",
]
