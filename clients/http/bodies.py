"""Request bodies from the wire types of :mod:`evostim.protocol`: a body the server would refuse is refused here,
before anything is sent, with the server's rules and a :class:`~evostim.clients.http.errors.ValidationError`."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import pydantic

from evostim.clients.http.errors import ValidationError
from evostim.protocol import BlockResponsesSubmit, ResponsesSubmit

__all__ = ["BlockCounts", "Counts", "block_submit", "responses_submit", "wire", "with_fields"]

Counts = Mapping[str, Mapping[str, Sequence[float]]]
"""``{stimulus id: {channel: [value per repetition]}}``"""
BlockCounts = Mapping[tuple[str, str], Mapping[str, Sequence[float]]]
"""``{(session id, stimulus id): {channel: [value per repetition]}}``"""

_Model = TypeVar("_Model", bound=pydantic.BaseModel)
_COUNTS_SHAPE = "{stimulus id: {channel: [value per repetition]}}"
_BLOCK_SHAPE = "{(session id, stimulus id): {channel: [value per repetition]}}"


def wire(model: type[_Model], data: Any) -> _Model:
    """``data`` as the wire type ``model``, or the server's 422 problem raised here, before anything is sent."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        raise ValidationError.before_sending(error) from error


def with_fields(model: type[_Model], given: _Model | Mapping[str, Any] | None, fields: Mapping[str, Any]) -> _Model:
    """A wire body from a given one (a model or a mapping, or none) with ``fields`` over it."""
    base = given.model_dump(exclude_unset=True) if isinstance(given, pydantic.BaseModel) else dict(given or {})
    return wire(model, {**base, **fields})


def _not_sent(detail: str, **members: Any) -> ValidationError:
    """The validation-error problem of a body this client refuses to send, raised before anything is sent."""
    problem = {"type": "/problems/validation-error", "title": "Unprocessable Content", "status": 422}
    return ValidationError(422, {**problem, "detail": f"not sent: {detail}", **members, "retryable": False})


def _shown(value: Any) -> str:
    """``value`` as an error names it: its type and a short repr."""
    if isinstance(value, np.ndarray):
        return f"a {value.ndim}-D numpy array of {value.dtype}"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _mapping(value: Any, what: str, **members: Any) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise _not_sent(f"{what} must be a mapping, not {_shown(value)}", **members)
    return value


def _values(values: Any, where: str, members: Mapping[str, Any]) -> list[float]:
    """One channel's values as floats: a list, tuple or 1-D numpy array of real numbers, one per repetition.

    Anything else is refused before sending, never converted: a string would be iterated character by character
    (``'12'`` as two repetitions), a bool is not a count, a bare number is not a list of repetitions.
    """
    if not (isinstance(values, list | tuple) or (isinstance(values, np.ndarray) and values.ndim == 1)):
        what = "a list, tuple or 1-D numpy array of numbers, one per repetition"
        raise _not_sent(f"{where} must be {what}, not {_shown(values)}", **members)
    floats = []
    for i, value in enumerate(values):  # numpy's numbers are real numbers too; a bool (numpy's too) is not
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
            raise _not_sent(f"{where}: repetition {i} is {_shown(value)}, not a number", **members)
        try:
            floats.append(float(value))
        except OverflowError:  # an int beyond the range of a float
            raise _not_sent(f"{where}: repetition {i} is {_shown(value)}, too large for a number", **members) from None
    if not floats:
        raise _not_sent(f"{where} has no values: give one per repetition (at least one)", **members)
    return floats


def _stimulus_response(stimulus: str, counts: Any, baseline: Any, session: str | None = None) -> dict[str, Any]:
    """One stimulus's item of a responses body, each channel's values checked by ``_values``."""
    named = f"stimulus {stimulus!r}" + ("" if session is None else f" of session {session!r}")
    members = {"stimulus": stimulus} if session is None else {"session": session, "stimulus": stimulus}
    item: dict[str, Any] = {"stimulus": stimulus}
    for field, given in (("counts", counts), ("baseline", baseline)):
        if given is None and field == "baseline":
            continue
        by_channel = _mapping(given, f"{field} of {named} ({{channel: [value per repetition]}})", **members)
        item[field] = {
            channel: _values(values, f"{field} of {named}, channel {channel!r}", {**members, "channel": channel})
            for channel, values in by_channel.items()
        }
    return item


def _check_baselines_match(counts: Mapping[Any, Any], baselines: Mapping[Any, Any]) -> None:
    unmeasured = [key for key in baselines if key not in counts]
    if unmeasured:
        raise _not_sent(f"baselines for stimuli without counts: {unmeasured[:5]}")


def responses_submit(counts: Counts | ResponsesSubmit, baselines: Counts | None) -> ResponsesSubmit:
    """The body of one generation's responses, checked."""
    if isinstance(counts, ResponsesSubmit):
        if baselines is not None:
            raise TypeError("a ResponsesSubmit carries its baselines itself; pass baselines=None")
        return counts
    counts = _mapping(counts, f"counts ({_COUNTS_SHAPE})")
    baselines = _mapping(baselines or {}, f"baselines ({_COUNTS_SHAPE})")
    _check_baselines_match(counts, baselines)
    items = [_stimulus_response(s, by_channel, baselines.get(s)) for s, by_channel in counts.items()]
    return wire(ResponsesSubmit, {"responses": items})


def block_submit(block: Mapping[str, Any], counts: BlockCounts, baselines: BlockCounts | None) -> BlockResponsesSubmit:
    """The body of a block's responses (several sessions' generations), checked."""
    counts = _mapping(counts, f"counts ({_BLOCK_SHAPE})")
    baselines = _mapping(baselines or {}, f"baselines ({_BLOCK_SHAPE})")
    for key in [*counts, *baselines]:
        if not (isinstance(key, tuple) and len(key) == 2):
            raise _not_sent(f"a block's counts and baselines are keyed by (session id, stimulus id), not {_shown(key)}")
    _check_baselines_match(counts, baselines)
    items = [
        {"session": session, **_stimulus_response(stimulus, values, baselines.get((session, stimulus)), session)}
        for (session, stimulus), values in counts.items()
    ]
    return wire(BlockResponsesSubmit, {"generations": block["generations"], "responses": items})
