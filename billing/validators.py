"""Field validators shared by the API schemas: identifiers French invoices depend on."""

import datetime
import functools
import re
import zoneinfo

import marshmallow as ma

from billing.money import MINOR_UNITS

SIREN = re.compile(r"^\d{9}$")
VAT_NUMBER = re.compile(r"^[A-Z]{2}[0-9A-Z+*.]{2,13}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")


def validate_siren(value: str) -> None:
    # Only the form is checked: most SIRENs satisfy the Luhn checksum, but not all (La
    # Poste's), and the documented example does not.
    if not SIREN.match(value):
        raise ma.ValidationError("a SIREN is 9 digits")


def validate_vat_number(value: str) -> None:
    if not VAT_NUMBER.match(value):
        raise ma.ValidationError("a VAT number is a country code and 2 to 13 characters")
    if value.startswith("FR"):
        key, siren = value[2:4], value[4:]
        if not (key.isdigit() and SIREN.match(siren)):
            raise ma.ValidationError("a French VAT number is FR, a 2-digit key and the SIREN")
        if int(key) != (12 + 3 * (int(siren) % 97)) % 97:
            raise ma.ValidationError(f"{value}: the key does not match the SIREN")


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_timezone(value: str) -> None:
    if value not in _time_zones():
        raise ma.ValidationError(f"{value!r} is not an IANA time zone (e.g. Europe/Paris)")


def validate_currency(value: str) -> None:
    if value not in MINOR_UNITS:
        raise ma.ValidationError(f"unsupported currency; use one of {', '.join(MINOR_UNITS)}")


class UTCDateTime(ma.fields.AwareDateTime):
    """An RFC 3339 timestamp with an offset, loaded as UTC (time is UTC inside)."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).astimezone(datetime.UTC)
