"""Finance exports of finalized documents: the French FEC and CSV files.

Pure functions from `InvoiceDocument`s to text or bytes; the caller selects the documents
(a fiscal year for the FEC, any range for the CSVs).
"""

import csv
import io
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from billing.csv_cells import spreadsheet_safe
from billing.invoicing.documents import (
    DocumentLine,
    InvoiceDocument,
    ensure_valid,
    format_percent,
)
from billing.money import ZERO, round_money
from billing.vat import REVERSE_CHARGE

# --- FEC: Fichier des écritures comptables (LPF art. A47 A-1, BOI-CF-IOR-60-40-20) --------

FEC_COLUMNS = (
    "JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib",
    "CompAuxNum", "CompAuxLib", "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit",
    "EcritureLet", "DateLet", "ValidDate", "Montantdevise", "Idevise",
)  # fmt: skip
FEC_SEPARATOR = "|"
# ISO 8859-15 is the character set art. A47 A-1 names (with ASCII and EBCDIC), so every
# auditor's tool reads it, and unlike Latin-1 it has "œ" and "€". Characters outside it
# are transliterated (see _latin9).
FEC_ENCODING = "iso-8859-15"
FEC_CURRENCY = "EUR"  # the accounts are kept in euros; other currencies need a rate we lack
_STROKED_LETTERS = str.maketrans("ŁłĐđĦħı", "LlDdHhi")


@dataclass(frozen=True)
class SalesAccounts:
    """The chart-of-accounts numbers the sales journal posts to (PCG defaults)."""

    journal_code: str = "VT"
    journal_label: str = "Ventes"
    customers: str = "411"
    customers_label: str = "Clients"
    revenue: str = "706"
    revenue_label: str = "Prestations de services"
    vat_collected: str = "44571"
    vat_collected_label: str = "TVA collectée"


DEFAULT_ACCOUNTS = SalesAccounts()


def fec_export(
    entries_source: Iterable[InvoiceDocument],
    siren: str,
    closing_date: date,
    customer_accounts: Mapping[str, str],
    accounts: SalesAccounts = DEFAULT_ACCOUNTS,
) -> tuple[str, bytes]:
    """The sales journal of a fiscal year as a FEC: `({SIREN}FEC{YYYYMMDD}.txt, content)`.

    One balanced entry per document, in order of issue date then number: the customer
    (411, with the customer's auxiliary account from `customer_accounts[buyer_reference]`)
    debited the amount including VAT, revenue (706) credited per VAT rate, collected VAT
    (44571) credited per rate. A credit note is the same entry reversed. Pipe-separated,
    header first, dates YYYYMMDD, amounts with a decimal comma and no grouping, CRLF line
    ends, ISO 8859-15. Documents issued after `closing_date` are refused.
    """
    documents = sorted(entries_source, key=lambda doc: (doc.issue_date, doc.number))
    late = [doc.number for doc in documents if doc.issue_date > closing_date]
    if late:
        raise ValueError(f"issued after the closing date {closing_date}: {', '.join(late)}")
    rows: list[tuple[str, ...]] = [FEC_COLUMNS]
    for sequence, doc in enumerate(documents, start=1):
        entry_number = f"{accounts.journal_code}{sequence:06d}"
        rows += _fec_entry(doc, entry_number, customer_accounts, accounts)
    text = "".join(FEC_SEPARATOR.join(map(_fec_field, row)) + "\r\n" for row in rows)
    filename = f"{siren}FEC{closing_date.strftime('%Y%m%d')}.txt"
    return filename, _latin9(text).encode(FEC_ENCODING)


def _fec_entry(
    doc: InvoiceDocument,
    entry_number: str,
    customer_accounts: Mapping[str, str],
    accounts: SalesAccounts,
) -> list[tuple[str, ...]]:
    """The lines of one entry, as (account, label, aux account, aux label, signed amount).

    Signed amounts are debits when positive; a credit note flips every sign, and a negative
    amount (an invoice whose adjustments exceed its usage) lands in the other column.
    """
    ensure_valid(doc)
    if doc.currency != FEC_CURRENCY:
        raise ValueError(f"{doc.number}: the FEC is kept in {FEC_CURRENCY}, not {doc.currency}")
    reference = doc.buyer_reference
    if reference is None or reference not in customer_accounts:
        raise KeyError(f"{doc.number}: no customer account for {reference!r}")
    sign = -1 if doc.is_credit_note else 1
    kind = "Avoir" if doc.is_credit_note else "Facture"
    label = f"{kind} {doc.number} {doc.buyer.name}"
    postings = [
        (accounts.customers, accounts.customers_label,
         customer_accounts[reference], doc.buyer.name, sign * doc.total_gross),
    ]  # fmt: skip
    for group in doc.vat_breakdown:
        rate = format_percent(group.rate, "fr").replace("\u00a0", " ")
        suffix = "autoliquidation" if group.category == REVERSE_CHARGE else f"TVA {rate}"
        if group.base:
            postings.append((accounts.revenue, f"{accounts.revenue_label} {suffix}",
                             "", "", -sign * group.base))  # fmt: skip
        if group.amount:
            postings.append((accounts.vat_collected, f"{accounts.vat_collected_label} {rate}",
                             "", "", -sign * group.amount))  # fmt: skip
    day = doc.issue_date.strftime("%Y%m%d")
    return [
        (accounts.journal_code, accounts.journal_label, entry_number, day, account,
         account_label, aux, aux_label, doc.number, day, label,
         _fec_amount(max(amount, ZERO)), _fec_amount(max(-amount, ZERO)),
         "", "", day, "", "")
        for account, account_label, aux, aux_label, amount in postings
    ]  # fmt: skip


def _fec_amount(amount: Decimal) -> str:
    return format(round_money(amount, FEC_CURRENCY), "f").replace(".", ",")


def _fec_field(value: str) -> str:
    # The separator must be "unique and unambiguous" (A47 A-1 I 4°): never inside a field.
    return " ".join(value.replace(FEC_SEPARATOR, "/").split())


def _latin9(text: str) -> str:
    """`text` with what ISO 8859-15 lacks replaced: dashes by '-', accents stripped, else '?'."""
    if _fits_latin9(text):
        return text
    return "".join(char if _fits_latin9(char) else _transliterate(char) for char in text)


def _transliterate(char: str) -> str:
    if unicodedata.category(char) == "Pd":
        return "-"
    # Letters with a stroke have no Unicode decomposition, so NFKD alone would lose them.
    char = char.translate(_STROKED_LETTERS)
    base = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode("ascii")
    return base or "?"


def _fits_latin9(text: str) -> bool:
    try:
        text.encode(FEC_ENCODING)
    except UnicodeEncodeError:
        return False
    return True


# --- CSV -----------------------------------------------------------------------------------
# Amounts are exact decimals with a dot, dates ISO 8601, as stored: credit notes keep their
# positive amounts (EN 16931 convention) and are told apart by `kind`.

INVOICE_COLUMNS = (
    "number", "kind", "type_code", "issue_date", "due_date", "period_start", "period_end",
    "buyer_reference", "buyer_name", "buyer_vat_number", "currency", "total_net",
    "total_vat", "total_gross", "amount_due", "preceding_invoice_number",
)  # fmt: skip
LINE_COLUMNS = (
    "number", "kind", "line_id", "vehicle_id", "description", "metric", "quantity",
    "unit_code", "unit_price", "amount", "vat_category", "vat_rate", "period_start",
    "period_end", "usage_quantity", "usage_unit_code", "currency",
)  # fmt: skip


def invoices_csv(docs: Iterable[InvoiceDocument]) -> str:
    """One row per invoice or credit note, with a header row."""
    return _csv(INVOICE_COLUMNS, (_invoice_row(doc) for doc in docs))


def invoice_lines_csv(docs: Iterable[InvoiceDocument]) -> str:
    """One row per document line, with a header row; `number` links it to its document."""
    return _csv(LINE_COLUMNS, (_line_row(doc, line) for doc in docs for line in doc.lines))


def _invoice_row(doc: InvoiceDocument) -> tuple[object, ...]:
    return (
        doc.number, doc.kind, doc.type_code, doc.issue_date, doc.due_date, doc.period_start,
        doc.period_end, doc.buyer_reference, doc.buyer.name, doc.buyer.vat_number,
        doc.currency, doc.total_net, doc.total_vat, doc.total_gross, doc.amount_due,
        doc.preceding_invoice_number,
    )  # fmt: skip


def _line_row(doc: InvoiceDocument, line: DocumentLine) -> tuple[object, ...]:
    return (
        doc.number, doc.kind, line.line_id, line.vehicle_id, line.description, line.metric,
        line.quantity, line.unit_code, line.unit_price, line.amount, line.vat_category,
        line.vat_rate, line.period_start, line.period_end, line.usage_quantity,
        line.usage_unit_code, doc.currency,
    )  # fmt: skip


def _csv(header: Sequence[str], rows: Iterable[tuple[object, ...]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(tuple(map(_csv_value, row)) for row in rows)
    return buffer.getvalue()


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")  # never an exponent: 1E+2 → "100"
    if isinstance(value, date):
        return value.isoformat()
    return spreadsheet_safe(str(value))
