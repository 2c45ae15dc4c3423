"""Optimizer errors, named by meaning.

OptimizerError
├── InvalidParameter      a constructor parameter is out of range (fix the request; retrying won't help)
├── UnknownOptimizer      no optimizer is registered under that name
├── UnknownCandidate      tell() got an id that the pending population does not hold
├── DuplicateCandidate    tell() got the same id twice
├── NoPendingPopulation   tell() before ask()
├── PendingPopulation     ask() while a population still waits for its scores
└── IncompatibleState     from_state() got a state of another optimizer or schema version
"""

from __future__ import annotations

__all__ = [
    "DuplicateCandidate",
    "IncompatibleState",
    "InvalidParameter",
    "NoPendingPopulation",
    "OptimizerError",
    "PendingPopulation",
    "UnknownCandidate",
    "UnknownOptimizer",
]


class OptimizerError(Exception):
    """Base of every error an optimizer raises."""


class InvalidParameter(OptimizerError, ValueError):
    """A parameter is out of its valid range."""


class UnknownOptimizer(OptimizerError, KeyError):
    """No optimizer is registered under that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class UnknownCandidate(OptimizerError, ValueError):
    """tell() received an id that is not in the pending population."""


class DuplicateCandidate(OptimizerError, ValueError):
    """tell() received the same candidate id twice."""


class NoPendingPopulation(OptimizerError, RuntimeError):
    """tell() was called with no population asked for."""


class PendingPopulation(OptimizerError, RuntimeError):
    """ask() was called while the last population still waits for its scores."""


class IncompatibleState(OptimizerError, ValueError):
    """A serialized state belongs to another optimizer or schema version."""
