"""The dunning e-mails, in the customer's language (French by default), worded by its
catalogue (`billing.words`): a subject and a body per step kind."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from billing.words import words


@dataclass(frozen=True)
class Overdue:
    """What a dunning e-mail tells of an invoice."""

    number: str
    due_date: dt.date
    days_late: int
    amount_due: Decimal
    currency: str
    seller_name: str
    late_penalty_rate: str


def dunning_mail(kind: str, language: str, overdue: Overdue) -> tuple[str, str]:
    """The subject and text of the e-mail of a `kind` step."""
    wording = words(language).dunning
    due = overdue.due_date.strftime(wording["date_format"])
    subject = wording[f"{kind}_subject"].format(number=overdue.number, due=due)
    opening = wording["opening"].format(
        number=overdue.number, due=due, days=overdue.days_late,
        amount=overdue.amount_due, currency=overdue.currency,
    )  # fmt: skip
    rate = overdue.late_penalty_rate or wording["legal_rate"]
    body = wording[kind].format(rate=rate)
    return subject, f"{opening}\n\n{body}\n\n{overdue.seller_name}\n"
