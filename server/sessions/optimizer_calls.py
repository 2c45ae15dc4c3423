"""An optimizer's ask and tell as the server runs them: whatever an optimizer raises is a problem a person can act on
(OptimizerFailed, a 422 naming the optimizer, nothing stored), never a 500, whether the optimizer is ours or an
outside library's (cmaes asserts on codes beyond 1e32)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from evostim.extras import MissingExtra
from evostim.generators.errors import GeneratorError
from evostim.optimizers import Optimizer, OptimizerError
from evostim.server.sessions.errors import DomainError, OptimizerFailed

__all__ = ["optimizer_call"]

_LOG = logging.getLogger("evostim")
# Errors that already say what went wrong (each has its row in server/api/problems.py): passed on as they are.
_NAMED_ERRORS = (DomainError, OptimizerError, GeneratorError, MissingExtra)


@contextlib.contextmanager
def optimizer_call(optimizer: Optimizer, what: str) -> Iterator[None]:
    """Run an optimizer's ask or tell: anything it raises that is not one of our named errors (an outside library's
    assertion, an overflow, a bug) becomes OptimizerFailed naming the optimizer, logged with its traceback."""
    try:
        yield
    except _NAMED_ERRORS:
        raise
    except Exception as error:
        _LOG.warning("optimizer %s failed on %s", optimizer.name, what, exc_info=True)
        raise OptimizerFailed(
            f"optimizer {optimizer.name} could not take {what}: {type(error).__name__}: {error}; nothing was stored. "
            "Sessions with these optimizer settings cannot advance: fork the session with other settings",
            optimizer=optimizer.name,
        ) from error
