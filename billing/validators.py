"""Field validators shared by the API schemas: identifiers French invoices depend on, the
text rule every name and address follows, bounded decimals and instants."""

import datetime
import functools
import re
import zoneinfo
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import marshmallow as ma

from billing.money import MINOR_UNITS
from billing.periods import EARLIEST_INSTANT, LATEST_INSTANT
from billing.text import UnsafeText, clean_text

SIREN = re.compile(r"^\d{9}$")
VAT_NUMBER = re.compile(r"^[A-Z]{2}[0-9A-Z+*.]{2,13}$")

# ISO 3166-1 alpha-2, the officially assigned codes (249). User-assigned codes such as ZZ or
# XK and the reserved ones are not countries an invoice can be addressed to.
_ASSIGNED_COUNTRIES = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO
    BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ
    DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP
    GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG
    KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML
    MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE
    PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL
    SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM
    US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""
COUNTRY_CODES = frozenset(_ASSIGNED_COUNTRIES.split())


class Text(ma.fields.String):
    """A string under the text rule (`clean_text`): NFC, no control or bidirectional
    characters; blank (empty or only spaces) refused unless `allow_blank`."""

    def __init__(self, *, multiline: bool = False, allow_blank: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.multiline = multiline
        self.allow_blank = allow_blank

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            text = clean_text(text, multiline=self.multiline)
        except UnsafeText as error:
            raise ma.ValidationError(str(error)) from None
        if not self.allow_blank and not text.strip():
            raise ma.ValidationError("must not be blank")
        return text


def validate_country(value: str) -> None:
    if value not in COUNTRY_CODES:
        raise ma.ValidationError(f"{value!r} is not an ISO 3166-1 alpha-2 country code, e.g. FR")


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
    """An RFC 3339 timestamp with an offset, loaded as UTC (time is UTC inside), between
    1970 and 9999 (the span periods and telemetry timestamps can take)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> datetime.datetime:
        local = super()._deserialize(value, attr, data, **kwargs)
        try:
            instant = local.astimezone(datetime.UTC)
        except OverflowError:
            instant = None
        if instant is None or not EARLIEST_INSTANT <= instant < LATEST_INSTANT:
            raise ma.ValidationError(
                f"must be from {EARLIEST_INSTANT.isoformat()} and before "
                f"{LATEST_INSTANT.isoformat()}"
            )
        return instant


# The largest integer every database column of ours holds (versions, positions).
MAX_INT32 = 2**31 - 1

# Quantities, prices and amounts taken from requests: at most 12 digits before the point
# and 6 after (DESIGN 2.4: unit prices carry up to 6 decimals), so that every figure the
# rating engine derives stays exact within the 28 digits of the decimal context.
DECIMAL_INTEGER_DIGITS = 12
DECIMAL_PLACES = 6
DECIMAL_PATTERN = rf"^[0-9]{{1,{DECIMAL_INTEGER_DIGITS}}}(\.[0-9]{{1,{DECIMAL_PLACES}}})?$"


class BoundedDecimal(ma.fields.Decimal):
    """A decimal number (a JSON string such as "612.5", or a number), at most 12 digits
    before the point and 6 after; NaN and infinities are refused."""

    default_error_messages = {  # noqa: RUF012 (marshmallow merges these per class)
        "too_large": f"must have at most {DECIMAL_INTEGER_DIGITS} digits before the point",
        "too_precise": f"must have at most {DECIMAL_PLACES} decimals",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=False, **kwargs)
        self.metadata = {"pattern": DECIMAL_PATTERN, **self.metadata}

    def _validated(self, value: Any) -> Decimal:
        number = super()._validated(value)  # NaN and infinities refused (allow_nan=False)
        # adjusted() and the exponent are read without arithmetic: 1E+999999999 would
        # overflow the decimal context.
        if number and number.adjusted() >= DECIMAL_INTEGER_DIGITS:
            raise self.make_error("too_large")
        if _places(number) > DECIMAL_PLACES:
            raise self.make_error("too_precise")
        return number


def _places(number: Decimal) -> int:
    """Decimals that matter: 1.500000000 has one."""
    _sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int), "callers pass finite numbers"
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing_zeros))
