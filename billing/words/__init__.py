"""The wording of the documents and of what is sent about them, one catalogue per language:
the PDF's labels and legal mentions, invoice and credit-note lines, payment terms, what
Stripe is told, the dunning e-mails, month and unit names.

Pure data, no database. `words(language)` gives the catalogue of a language: French for
a language it does not know (or none), and the French text of any key a language leaves
out, so that a document is always complete. The portal's page texts are UI wording and
live with the portal (`billing.portal.i18n`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Protocol, TypeVar

from billing.words import en, fr

FALLBACK = "fr"
LANGUAGES = ("fr", "en")  # the languages of the documents; French first, the default


@dataclass(frozen=True)
class Words:
    """The catalogue of one language; every section is read-only."""

    language: str
    region: str  # ISO 3166-1 country whose usage the documents follow (PDF language tag)
    document: Mapping[str, str]  # PDF labels
    legal: Mapping[str, str]  # legal mentions: {rate}, {indemnity}
    terms: Mapping[str, str]  # payment terms, document notes, tier labels
    metrics: Mapping[str, str]  # metric names
    lines: Mapping[str, str]  # invoice line descriptions and notes
    credit_notes: Mapping[str, str]  # credit note lines
    stripe: Mapping[str, str]  # Stripe invoice descriptions, items and credit-note memos
    dunning: Mapping[str, str]  # dunning mails: "<kind>_subject", "<kind>", "opening"...
    months: tuple[str, ...]  # January first
    units: Mapping[str, tuple[str, str]]  # UN/ECE rec. 20 code: (singular, plural)
    thousands: str  # thousands separator
    decimal_point: str


class _Language(Protocol):
    """What a language module defines (`fr`, `en`)."""

    LANGUAGE: str
    REGION: str
    DOCUMENT: Mapping[str, str]
    LEGAL: Mapping[str, str]
    TERMS: Mapping[str, str]
    METRICS: Mapping[str, str]
    LINES: Mapping[str, str]
    CREDIT_NOTES: Mapping[str, str]
    STRIPE: Mapping[str, str]
    DUNNING: Mapping[str, str]
    MONTHS: tuple[str, ...]
    UNITS: Mapping[str, tuple[str, str]]
    THOUSANDS: str
    DECIMAL_POINT: str


_MODULES: dict[str, _Language] = {"fr": fr, "en": en}

V = TypeVar("V")


def words(language: str | None) -> Words:
    """The catalogue of `language`, French for an unknown language or None."""
    return _catalogue(language if language in _MODULES else FALLBACK)


@cache
def _catalogue(language: str) -> Words:
    own, base = _MODULES[language], _MODULES[FALLBACK]

    def section(mine: Mapping[str, V], french: Mapping[str, V]) -> Mapping[str, V]:
        return MappingProxyType({**french, **mine})

    return Words(
        language=own.LANGUAGE,
        region=own.REGION,
        document=section(own.DOCUMENT, base.DOCUMENT),
        legal=section(own.LEGAL, base.LEGAL),
        terms=section(own.TERMS, base.TERMS),
        metrics=section(own.METRICS, base.METRICS),
        lines=section(own.LINES, base.LINES),
        credit_notes=section(own.CREDIT_NOTES, base.CREDIT_NOTES),
        stripe=section(own.STRIPE, base.STRIPE),
        dunning=section(own.DUNNING, base.DUNNING),
        months=own.MONTHS,
        units=section(own.UNITS, base.UNITS),
        thousands=own.THOUSANDS,
        decimal_point=own.DECIMAL_POINT,
    )
