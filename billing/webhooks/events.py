"""The event types webhooks carry, and the data each one holds about invoices.

Payloads are JSON: amounts as decimal strings, instants in RFC 3339 UTC, so that a
receiver never meets a float.
"""

from __future__ import annotations

from typing import Any

from billing.money import round_money

INVOICE_FINALIZED = "invoice.finalized"
INVOICE_PAID = "invoice.paid"
INVOICE_OVERDUE = "invoice.overdue"
CREDIT_NOTE_ISSUED = "credit_note.issued"
VEHICLE_ACCESS_CHANGED = "vehicle.access_changed"
ALERT_TRIGGERED = "alert.triggered"
EVENT_TYPES = (
    INVOICE_FINALIZED,
    INVOICE_PAID,
    INVOICE_OVERDUE,
    CREDIT_NOTE_ISSUED,
    VEHICLE_ACCESS_CHANGED,
    ALERT_TRIGGERED,
)


def invoice_data(invoice: Any) -> dict[str, Any]:
    """What an invoice or a credit note event tells of the document (an `Invoice` row)."""
    return {
        "invoice": {
            "id": invoice.id,
            "kind": invoice.kind,
            "number": invoice.number,
            "customer_id": invoice.customer_id,
            "period": invoice.period,
            "status": invoice.status,
            "currency": invoice.currency,
            # PostgreSQL reads amounts back with 6 places: shown in the minor unit.
            **{
                name: str(round_money(getattr(invoice, name), invoice.currency))
                for name in ("total_net", "total_vat", "total_gross")
            },
            "issue_date": _date(invoice.issue_date),
            "due_date": _date(invoice.due_date),
            "credited_invoice_id": invoice.credited_invoice_id,
        }
    }


def _date(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
