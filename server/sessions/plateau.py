"""The plateau stop rule, kept as a running summary: the best mean evolved score of the closed generations and the
first generation that reached it, stored with the session (``SessionRecord.best_mean``), so that no post reads
every generation to apply the rule."""

from __future__ import annotations

from evostim.server.storage.store import SessionRecord

__all__ = ["best_mean_after", "plateaued"]


def best_mean_after(session: SessionRecord, evolved_mean: float) -> tuple[float, int]:
    """(best mean, the first generation that reached it) once the open generation's ``evolved_mean`` counts."""
    if session.best_mean is None or session.best_mean_generation is None or evolved_mean > session.best_mean:
        return evolved_mean, session.generation
    return session.best_mean, session.best_mean_generation


def plateaued(session: SessionRecord, patience: int | None, evolved_mean: float) -> bool:
    """The mean evolved score has not beaten its earlier best for ``patience`` generations.

    The same as comparing the best of the last ``patience`` means with the best of the earlier ones: the last ones
    beat none of the earlier ones exactly when the best of all was first reached before them.
    """
    if patience is None or session.generation < patience:
        return False
    return best_mean_after(session, evolved_mean)[1] <= session.generation - patience
