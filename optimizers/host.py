"""What an optimizer needs from the host that runs it (a session's server, a sweep's panel), declared on its class.

An optimizer class declares its needs as it declares its parameters, in plain data:

- ``needs``: the host's services it uses, each a :class:`Need` (``Need("metric_at", when="refresh_every")``: the
  generator's metric at a code, whenever the parameter ``refresh_every`` is set);
- ``session_defaults(params, host, generations=..., population_size=...)``: the defaults of a session on the host's
  generator, for a session planned to last ``generations`` generations (None: open-ended) of ``population_size``
  images; a sweep applies none.

The host fills them in one place for sessions and sweeps alike (``evostim.generators.host``): it refuses an
optimizer whose needs it cannot meet, and gives every optimizer its :class:`Host` at construction
(``create(..., host=...)``, ``from_state(state, host=...)``), which the optimizer reads as ``self.host``. An
optimizer never learns which host it runs on beyond this record, and the host never checks which optimizer it holds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["NO_HOST", "SERVICES", "Host", "MetricAhead", "MetricAt", "Need"]

FloatArray = NDArray[np.float64]

MetricAt = Callable[[FloatArray, float | None], FloatArray]
"""``metric_at(code, window)``: the generator's metric (d, d) at a code (d,), its pixels weighted by a Gaussian at the
image centre whose standard deviation is ``window`` x the image side (None: every pixel alike)."""

MetricAhead = Callable[[FloatArray, float | None], None]
"""``metric_ahead(code, window)``: a hint that ``metric_at(code, window)`` will be asked for soon, so the host may
compute it meanwhile (while the rig shows a generation). The answer is the same either way: only when it is computed
changes."""


@dataclass(frozen=True)
class Host:
    """What a host tells and gives the optimizers it runs. A service is None where the host cannot provide it."""

    generator: str = ""  # the generator whose latent space is searched ("": none, e.g. a synthetic panel)
    latent_dim: int = 0
    metric_at: MetricAt | None = None  # exact, where the host computes it (small latent spaces)
    metric_ahead: MetricAhead | None = None  # where the host computes metric_at's answers ahead of the asking


NO_HOST = Host()
"""The host of an optimizer built alone (a test, a notebook): it provides nothing."""

SERVICES = tuple(f.name for f in fields(Host) if f.name not in ("generator", "latent_dim"))
"""The services a :class:`Need` may name: the fields of :class:`Host` besides what it tells."""


@dataclass(frozen=True)
class Need:
    """A service of the host an optimizer uses (one of :data:`SERVICES`), and the parameter that asks for it
    (``when``: needed whenever that parameter is set, i.e. not null; None: always)."""

    service: str
    when: str | None = None

    def active(self, settings: Mapping[str, Any]) -> bool:
        """Whether an optimizer with these settings (its resolved parameters) uses the service."""
        return self.when is None or settings.get(self.when) is not None
