"""English, for buyers whose language is English. A key left out here reads in French."""

from collections.abc import Mapping

LANGUAGE = "en"
REGION = "GB"

DOCUMENT: Mapping[str, str] = {
    "invoice": "Invoice", "credit_note": "Credit note", "number": "No.",
    "issue_date": "Issue date", "due_date": "Due date", "period": "Billing period",
    "customer_ref": "Customer ref.", "corrects": "Credits invoice", "dated": "of",
    "bill_to": "Bill to", "siren": "SIREN", "vat_number": "VAT no.",
    "overview": "Your fleet this period", "vehicle": "Vehicle",
    "account": "Account", "usage": "Usage", "description": "Description",
    "quantity": "Quantity", "unit_price": "Unit price", "vat": "VAT",
    "amount": "Amount", "subtotal": "Subtotal", "tiered": "tiered",
    "lump_sum": "flat", "adjustment": "adjustment",
    "vat_summary": "VAT summary", "base": "Taxable amount",
    "rate": "Rate", "vat_amount": "VAT amount", "total_net": "Total excl. VAT",
    "total_vat": "Total VAT", "total_gross": "Total incl. VAT", "prepaid": "Already paid",
    "amount_due": "Amount due", "credit_amount": "Credit amount",
    "due_by": "due by", "credits": "in favour of", "payment": "Payment",
    "transfer_to": "By SEPA credit transfer to", "payment_reference":
    "Payment reference", "notes": "Notes", "page": "Page",
    "reverse_charge": "Reverse charge", "zero_rated": "zero rated",
}  # fmt: skip

LEGAL: Mapping[str, str] = {
    "late_penalties": "Late payment penalties, due from the day after the due date: "
                      "{rate} (French Commercial Code, art. L441-10).",
    "recovery_indemnity": "Fixed compensation for recovery costs in case of late payment: "
                          "{indemnity} (French Commercial Code, art. D441-5).",
    "reverse_charge": "Reverse charge: VAT to be accounted for by the customer "
                      "(art. 196, Directive 2006/112/EC).",
}  # fmt: skip

TERMS: Mapping[str, str] = {
    "invoice": "Payment within {days} days of the invoice date, by SEPA credit transfer.",
    "credit_note": "Deducted from your next invoice, or refunded by bank transfer on "
    "request.",
    "discount": "No discount for early payment.",
    "reason": "Reason for this credit note: {reason}",
    "tier": "{range} at {price}", "free": "{range} free", "flat": " + {amount}",
    "range": "{start}–{end}", "above": "above {start}",
}  # fmt: skip

METRICS: Mapping[str, str] = {
    "vehicle_days": "Subscription", "distance_km": "Distance", "energy_kwh": "Energy",
    "trips": "Trips", "trip_minutes": "Riding time", "active_days": "Days in use",
}  # fmt: skip

LINES: Mapping[str, str] = {
    "plan": "plan {code} v{version}", "included": "{quantity} included, deducted",
    "maximum": "period maximum applied", "minimum": "period minimum applied",
    "pooled": "tiers applied to the fleet's total on this plan ({quantity}), "
              "shared between the vehicles",
    "adjustment": "Adjustment for period {period}",
    "adjustment_note": "already billed: {billed}; now measured: {measured}",
    "cap": "Spending cap of {cap} excl. VAT per period",
    "cap_note_usage": "usage charges of the period: {capped} excl. VAT, "
                      "brought down to the cap",
    "cap_note_all": "charges of the period: {capped} excl. VAT, brought down to the cap",
}  # fmt: skip

CREDIT_NOTES: Mapping[str, str] = {
    "partial": "Partial credit: {description}", "gesture": "Commercial credit",
    "deduction": "Less credit note {number} already issued",
}  # fmt: skip

STRIPE: Mapping[str, str] = {
    "invoice": "Invoice {number} — usage {period}",
    "credit_note": "Credit note {number} for invoice {invoice} — {reason}",
    "base": "Usage {period} — net amount, VAT {rate}%",
    "reverse_charge": "Usage {period} — net amount, reverse charge",
    "vat": "VAT {rate}%",
}  # fmt: skip

DUNNING: Mapping[str, str] = {
    "reminder_subject": "Reminder: invoice {number} was due on {due}",
    "penalty_notice_subject": "Late-payment penalties: invoice {number}",
    "block_subject": "Vehicles suspended: invoice {number} unpaid",
    "opening": "Invoice {number}, due on {due}, has been unpaid for {days} days: "
               "{amount} {currency} including VAT remain due.",
    "reminder": "Please pay at your earliest convenience. If you already have, please "
                "disregard this message.",
    "penalty_notice": "As our payment terms state, late-payment penalties at {rate} run "
                      "from the due date, plus the fixed recovery fee of €40 (French "
                      "commercial code, article L441-10).",
    "block": "Until payment is received, your vehicles can no longer be unlocked. "
             "Unlocking resumes as soon as it is.",
    "legal_rate": "three times the legal interest rate",
    "date_format": "%Y-%m-%d",
}  # fmt: skip

MONTHS: tuple[str, ...] = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
UNITS: Mapping[str, tuple[str, str]] = {
    "KMT": ("km", "km"), "KWH": ("kWh", "kWh"), "MIN": ("min", "min"),
    "DAY": ("day", "days"), "C62": ("", ""),
}  # fmt: skip
THOUSANDS, DECIMAL_POINT = ",", "."
