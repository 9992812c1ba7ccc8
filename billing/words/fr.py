"""French: the language of the documents unless the buyer reads English, and the fallback
of every other language and of any key a language leaves out."""

from collections.abc import Mapping

LANGUAGE = "fr"
REGION = "FR"

# The PDF's labels.
DOCUMENT: Mapping[str, str] = {
    "invoice": "Facture", "credit_note": "Avoir", "number": "N°",
    "issue_date": "Date d'émission", "due_date": "Échéance", "period": "Période",
    "customer_ref": "Réf. client", "corrects": "Facture d'origine", "dated": "du",
    "bill_to": "Facturé à", "siren": "SIREN", "vat_number": "N° TVA",
    "overview": "Votre flotte sur la période", "vehicle": "Véhicule",
    "account": "Compte", "usage": "Usage", "description": "Désignation",
    "quantity": "Quantité", "unit_price": "P.U. HT", "vat": "TVA",
    "amount": "Montant HT", "subtotal": "Sous-total", "tiered": "selon barème",
    "lump_sum": "forfait", "adjustment": "régularisation",
    "vat_summary": "Récapitulatif TVA", "base": "Base HT",
    "rate": "Taux", "vat_amount": "Montant TVA", "total_net": "Total HT",
    "total_vat": "Total TVA", "total_gross": "Total TTC", "prepaid": "Déjà réglé",
    "amount_due": "Net à payer", "credit_amount": "Montant de l'avoir",
    "due_by": "à régler avant le", "credits": "en faveur de", "payment": "Règlement",
    "transfer_to": "Par virement SEPA sur le compte", "payment_reference":
    "Référence à rappeler", "notes": "Mentions", "page": "Page",
    "reverse_charge": "Autoliquidation", "zero_rated": "taux zéro",
}  # fmt: skip

# The mentions French law requires (see `documents.legal_mentions`).
LEGAL: Mapping[str, str] = {
    "late_penalties": "Pénalités de retard exigibles dès le lendemain de l'échéance : "
                      "{rate} (art. L441-10 du Code de commerce).",
    "recovery_indemnity": "Indemnité forfaitaire pour frais de recouvrement en cas de retard "
                          "de paiement : {indemnity} (art. D441-5 du Code de commerce).",
    "reverse_charge": "Autoliquidation : TVA due par le preneur (art. 196 de la directive "
                      "2006/112/CE).",
}  # fmt: skip

# The terms and notes an issued document states, and the labels of its tiers.
TERMS: Mapping[str, str] = {
    "invoice": "Paiement à {days} jours date de facture, par virement SEPA.",
    "credit_note": "Avoir déduit de votre prochaine facture, ou remboursé par virement "
    "sur simple demande.",
    "discount": "Pas d'escompte pour paiement anticipé.",
    "reason": "Motif de l'avoir : {reason}",
    "tier": "{range} à {price}", "free": "{range} offerts", "flat": " + {amount}",
    "range": "{start}–{end}", "above": "au-delà de {start}",
}  # fmt: skip

# What a metric is called on a line and on the PDF's usage chips.
METRICS: Mapping[str, str] = {
    "vehicle_days": "Abonnement", "distance_km": "Distance", "energy_kwh": "Énergie",
    "trips": "Trajets", "trip_minutes": "Temps de trajet", "active_days": "Jours d'utilisation",
}  # fmt: skip

# The descriptions and notes of invoice lines.
LINES: Mapping[str, str] = {
    "plan": "plan {code} v{version}", "included": "{quantity} inclus déduits",
    "maximum": "plafond de la période appliqué", "minimum": "minimum de la période appliqué",
    "pooled": "barème appliqué au total de la flotte sur ce plan ({quantity}), "
              "réparti entre les véhicules",
    "adjustment": "Régularisation période {period}",
    "adjustment_note": "déjà facturé : {billed} ; mesuré depuis : {measured}",
    "cap": "Plafond de dépenses de {cap} HT par période",
    "cap_note_usage": "frais d'usage de la période : {capped} HT, ramenés au plafond",
    "cap_note_all": "frais de la période : {capped} HT, ramenés au plafond",
}  # fmt: skip

# The lines of credit notes.
CREDIT_NOTES: Mapping[str, str] = {
    "partial": "Avoir partiel : {description}", "gesture": "Avoir commercial",
    "deduction": "Déduction de l'avoir {number} déjà émis",
}  # fmt: skip

# What Stripe is told of an invoice or credit note.
STRIPE: Mapping[str, str] = {
    "invoice": "Facture {number} — usage {period}",
    "credit_note": "Avoir {number} sur la facture {invoice} — {reason}",
    "base": "Usage {period} — montant HT, TVA {rate} %",
    "reverse_charge": "Usage {period} — montant HT, autoliquidation",
    "vat": "TVA {rate} %",
}  # fmt: skip

# The dunning e-mails: a subject and a body per step kind, the opening they share.
DUNNING: Mapping[str, str] = {
    "reminder_subject": "Rappel : facture {number} échue le {due}",
    "penalty_notice_subject": "Pénalités de retard : facture {number}",
    "block_subject": "Véhicules suspendus : facture {number} impayée",
    "opening": "La facture {number}, échue le {due}, reste impayée depuis {days} jours : "
               "{amount} {currency} TTC restent dus.",
    "reminder": "Merci de procéder au règlement dès que possible. Si vous l'avez déjà "
                "fait, ne tenez pas compte de ce message.",
    "penalty_notice": "Conformément à nos conditions de paiement, des pénalités de retard "
                      "au taux de {rate} courent depuis l'échéance, ainsi que l'indemnité "
                      "forfaitaire pour frais de recouvrement de 40 € (article L441-10 du "
                      "code de commerce).",
    "block": "Faute de paiement, le déverrouillage de vos véhicules est suspendu. Il "
             "reprend dès le règlement reçu.",
    "legal_rate": "trois fois le taux d'intérêt légal",
    "date_format": "%d/%m/%Y",
}  # fmt: skip

MONTHS: tuple[str, ...] = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip
# UN/ECE rec. 20 codes as printed: (singular, plural); a count ("C62") needs no unit.
UNITS: Mapping[str, tuple[str, str]] = {
    "KMT": ("km", "km"), "KWH": ("kWh", "kWh"), "MIN": ("min", "min"),
    "DAY": ("jour", "jours"), "C62": ("", ""),
}  # fmt: skip
# Thousands grouped with a narrow no-break space, a decimal comma (Imprimerie nationale
# rules, as CLDR does).
THOUSANDS, DECIMAL_POINT = "\u202f", ","
