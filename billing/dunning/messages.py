"""The dunning e-mails, in the customer's language (French by default)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from billing.dunning.steps import BLOCK, PENALTY_NOTICE, REMINDER


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


_SUBJECTS = {
    "fr": {REMINDER: "Rappel : facture {number} échue le {due}",
           PENALTY_NOTICE: "Pénalités de retard : facture {number}",
           BLOCK: "Véhicules suspendus : facture {number} impayée"},
    "en": {REMINDER: "Reminder: invoice {number} was due on {due}",
           PENALTY_NOTICE: "Late-payment penalties: invoice {number}",
           BLOCK: "Vehicles suspended: invoice {number} unpaid"},
}  # fmt: skip
_OPENINGS = {
    "fr": "La facture {number}, échue le {due}, reste impayée depuis {days} jours : "
          "{amount} {currency} TTC restent dus.",
    "en": "Invoice {number}, due on {due}, has been unpaid for {days} days: "
          "{amount} {currency} including VAT remain due.",
}  # fmt: skip
_BODIES = {
    "fr": {REMINDER: "Merci de procéder au règlement dès que possible. Si vous l'avez déjà "
                     "fait, ne tenez pas compte de ce message.",
           PENALTY_NOTICE: "Conformément à nos conditions de paiement, des pénalités de retard "
                           "au taux de {rate} courent depuis l'échéance, ainsi que l'indemnité "
                           "forfaitaire pour frais de recouvrement de 40 € (article L441-10 du "
                           "code de commerce).",
           BLOCK: "Faute de paiement, le déverrouillage de vos véhicules est suspendu. Il "
                  "reprend dès le règlement reçu."},
    "en": {REMINDER: "Please pay at your earliest convenience. If you already have, please "
                     "disregard this message.",
           PENALTY_NOTICE: "As our payment terms state, late-payment penalties at {rate} run "
                           "from the due date, plus the fixed recovery fee of €40 (French "
                           "commercial code, article L441-10).",
           BLOCK: "Until payment is received, your vehicles can no longer be unlocked. "
                  "Unlocking resumes as soon as it is."},
}  # fmt: skip


def dunning_mail(kind: str, language: str, overdue: Overdue) -> tuple[str, str]:
    """The subject and text of the e-mail of a `kind` step."""
    language = language if language in _SUBJECTS else "fr"
    due = overdue.due_date.strftime("%d/%m/%Y" if language == "fr" else "%Y-%m-%d")
    subject = _SUBJECTS[language][kind].format(number=overdue.number, due=due)
    opening = _OPENINGS[language].format(
        number=overdue.number, due=due, days=overdue.days_late,
        amount=overdue.amount_due, currency=overdue.currency,
    )  # fmt: skip
    rate = overdue.late_penalty_rate or ("trois fois le taux d'intérêt légal" if language == "fr"
                                         else "three times the legal interest rate")  # fmt: skip
    body = _BODIES[language][kind].format(rate=rate)
    return subject, f"{opening}\n\n{body}\n\n{overdue.seller_name}\n"
