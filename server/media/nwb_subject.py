"""What an NWB file needs that a session may not hold: the subject (id, species, sex, age) and when the recording
session started, from the session's metadata or the export's own fields (which win), checked as NWB's best practices
(nwbinspector, the DANDI archive) ask. No pynwb here: a bad value is refused before any file is written.

Where each value is looked up, first found wins: the export's field (``evostim export --species …``, or
``?species=`` on the export URL), then ``metadata.subject.<field>``, then ``metadata.<field>`` (``metadata.animal``
for the subject id). ``session_start`` is an ISO 8601 time with a time zone; without one, the session's creation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["NWB_FIELDS", "NwbMetadata", "nwb_metadata"]

NWB_FIELDS = ("subject_id", "species", "sex", "age", "session_start")
# What an archive needs of every subject (nwbinspector: CRITICAL without sex or age, a violation without species).
NEEDED = ("species", "sex", "age")

# nwbinspector's forms (nwbinspector.checks._nwbfile_metadata): a Latin binomial or an NCBI taxonomy link, and an
# ISO 8601 duration (or a range of two, "P1D/P3D", an open upper end allowed).
_SPECIES = re.compile(r"([A-Z][a-z]* [a-z]+)|(http://purl.obolibrary.org/obo/NCBITaxon_\d+)")
_DURATION = (
    r"P(?!$)(\d+(?:\.\d+)?Y)?(\d+(?:\.\d+)?M)?(\d+(?:\.\d+)?W)?(\d+(?:\.\d+)?D)?"
    r"(T(?=\d)(\d+(?:\.\d+)?H)?(\d+(?:\.\d+)?M)?(\d+(?:\.\d+)?S)?)?"
)
_AGE = re.compile(rf"{_DURATION}|{_DURATION}/({_DURATION})?")
_COMMON_SPECIES = {  # the names labs write, as the archive wants them
    "rhesus macaque": "Macaca mulatta",
    "rhesus monkey": "Macaca mulatta",
    "rhesus": "Macaca mulatta",
    "cynomolgus macaque": "Macaca fascicularis",
    "crab-eating macaque": "Macaca fascicularis",
    "japanese macaque": "Macaca fuscata",
    "marmoset": "Callithrix jacchus",
    "mouse": "Mus musculus",
    "rat": "Rattus norvegicus",
    "human": "Homo sapiens",
}
_SEXES = {"m": "M", "male": "M", "f": "F", "female": "F", "u": "U", "unknown": "U", "o": "O", "other": "O"}


@dataclass(frozen=True)
class NwbMetadata:
    """The subject's fields as pynwb's ``Subject`` takes them (empty: no subject given), the session's start (None:
    its creation), and which fields an archive needs that nothing gave."""

    subject: dict[str, str]
    session_start: datetime | None
    missing: tuple[str, ...]


def _species(value: str) -> str:
    named = _COMMON_SPECIES.get(value.strip().lower(), value.strip())
    if not _SPECIES.fullmatch(named):
        raise ValueError(
            f"{value!r} is neither a Latin binomial (e.g. 'Macaca mulatta') nor an NCBI taxonomy link "
            "(http://purl.obolibrary.org/obo/NCBITaxon_9544)"
        )
    return named


def _sex(value: str) -> str:
    sex = _SEXES.get(value.strip().lower())
    if sex is None:
        raise ValueError(f"{value!r} is not one of M, F, U (unknown), O (other)")
    return sex


def _age(value: str) -> str:
    if not _AGE.fullmatch(value.strip()):
        raise ValueError(f"{value!r} is not an ISO 8601 duration, e.g. P7Y for 7 years or P30W for 30 weeks")
    return value.strip()


def _session_start(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 time, e.g. 2026-03-02T09:15:00+01:00") from None
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone: add one, e.g. {value.strip()}+01:00 or Z")
    return moment


_CHECKS: dict[str, Callable[[str], str]] = {"species": _species, "sex": _sex, "age": _age, "subject_id": str.strip}


def _lookup(name: str, given: Mapping[str, str], metadata: Mapping[str, Any]) -> tuple[str | None, str]:
    """The value of ``name`` and where it came from (for the error message)."""
    nested = metadata.get("subject")
    sources: list[tuple[Any, str]] = [(given.get(name), name)]
    if isinstance(nested, Mapping):
        sources.append((nested.get(name), f"metadata.subject.{name}"))
    sources.append((metadata.get(name), f"metadata.{name}"))
    if name == "subject_id":
        sources.append((metadata.get("animal"), "metadata.animal"))
    for value, where in sources:
        if value is not None and str(value).strip():
            return str(value), where
    return None, ""


def nwb_metadata(metadata: Mapping[str, Any], given: Mapping[str, str]) -> NwbMetadata:
    """The NWB file's subject and session start; a ValueError (one line: the value, where it came from and the form
    wanted) for a value an archive would refuse."""
    unknown = sorted(set(given) - set(NWB_FIELDS))
    if unknown:
        raise ValueError(f"unknown NWB fields {unknown}; known: {', '.join(NWB_FIELDS)}")
    subject: dict[str, str] = {}
    for name, check in _CHECKS.items():
        value, where = _lookup(name, given, metadata)
        if value is not None:
            try:
                subject[name] = check(value)
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
    start, where = _lookup("session_start", given, metadata)
    try:
        session_start = None if start is None else _session_start(start)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    missing = tuple(name for name in NEEDED if name not in subject)
    return NwbMetadata(subject, session_start, missing)
