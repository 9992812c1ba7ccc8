"""The FEC accounting file and the CSV exports of invoices and lines."""

import csv
import io
from collections import defaultdict
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from billing.invoicing.exports import (
    FEC_COLUMNS,
    INVOICE_COLUMNS,
    LINE_COLUMNS,
    fec_export,
    invoice_lines_csv,
    invoices_csv,
)

ACCOUNTS = {"CUST-0042": "C0042", "CUST-0099": "C0099"}
CLOSING = date(2026, 12, 31)
FEC_HEADER = (
    "JournalCode|JournalLib|EcritureNum|EcritureDate|CompteNum|CompteLib|CompAuxNum|"
    "CompAuxLib|PieceRef|PieceDate|EcritureLib|Debit|Credit|EcritureLet|DateLet|ValidDate|"
    "Montantdevise|Idevise"
)


@pytest.fixture
def year_documents(samples):
    """A year of sales: invoices (one reverse-charged, one adjusted) and a credit note."""
    return [
        samples["reverse_charge"](),
        samples["simple"](),
        replace(samples["adjusted"](), number="F-2026-000125"),
        samples["credit_note"](),
    ]


def fec_rows(content: bytes) -> list[dict[str, str]]:
    lines = content.decode("iso-8859-15").split("\r\n")
    assert lines[-1] == ""
    return [dict(zip(FEC_COLUMNS, line.split("|"), strict=True)) for line in lines[1:-1]]


def amount(text: str) -> Decimal:
    return Decimal(text.replace(",", "."))


def test_the_fec_is_named_after_the_siren_and_the_closing_date(year_documents):
    filename, _ = fec_export(year_documents, "732829320", CLOSING, ACCOUNTS)

    assert filename == "732829320FEC20261231.txt"


def test_the_fec_starts_with_the_official_header(year_documents):
    _, content = fec_export(year_documents, "732829320", CLOSING, ACCOUNTS)

    assert content.decode("iso-8859-15").split("\r\n")[0] == FEC_HEADER


def test_every_fec_entry_balances_and_is_numbered_in_sequence(year_documents):
    _, content = fec_export(year_documents, "732829320", CLOSING, ACCOUNTS)
    rows = fec_rows(content)

    balance: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        balance[row["EcritureNum"]] += amount(row["Debit"]) - amount(row["Credit"])
    assert balance == {f"VT{n:06d}": 0 for n in range(1, 5)}
    assert [row["PieceRef"] for row in rows if row["CompteNum"] == "411"] == [
        "F-2026-000123", "F-2026-000124", "F-2026-000125", "AV-2026-000007",
    ]  # fmt: skip


def test_an_invoice_debits_the_customer_and_credits_revenue_and_vat(samples):
    doc = samples["simple"]()
    _, content = fec_export([doc], "732829320", CLOSING, ACCOUNTS)

    rows = {row["CompteNum"]: row for row in fec_rows(content)}

    assert (rows["411"]["Debit"], rows["411"]["Credit"]) == ("66,94", "0,00")
    assert (rows["411"]["CompAuxNum"], rows["411"]["CompAuxLib"]) == (
        "C0042",
        "Livraisons Picardes SAS",
    )
    assert (rows["706"]["Credit"], rows["44571"]["Credit"]) == ("55,78", "11,16")
    assert rows["706"]["CompteLib"] == "Prestations de services TVA 20 %"
    assert {row["EcritureDate"] for row in rows.values()} == {"20261201"}
    assert {row["ValidDate"] for row in rows.values()} == {"20261201"}
    assert {row["JournalCode"] + "/" + row["JournalLib"] for row in rows.values()} == {"VT/Ventes"}


def test_a_credit_note_is_the_reversed_entry(samples):
    _, content = fec_export([samples["credit_note"]()], "732829320", CLOSING, ACCOUNTS)

    rows = {row["CompteNum"]: row for row in fec_rows(content)}

    assert (rows["411"]["Debit"], rows["411"]["Credit"]) == ("0,00", "9,60")
    assert (rows["706"]["Debit"], rows["44571"]["Debit"]) == ("8,00", "1,60")
    assert rows["411"]["EcritureLib"] == "Avoir AV-2026-000007 Livraisons Picardes SAS"


def test_a_reverse_charge_invoice_posts_no_vat(samples):
    _, content = fec_export([samples["reverse_charge"]()], "732829320", CLOSING, ACCOUNTS)

    rows = fec_rows(content)

    assert [row["CompteNum"] for row in rows] == ["411", "706"]
    assert rows[1]["CompteLib"] == "Prestations de services autoliquidation"


def test_the_fec_totals_match_the_documents(year_documents):
    _, content = fec_export(year_documents, "732829320", CLOSING, ACCOUNTS)
    rows = fec_rows(content)

    def net(account: str) -> Decimal:
        return sum(
            (amount(r["Credit"]) - amount(r["Debit"]) for r in rows if r["CompteNum"] == account),
            Decimal(0),
        )

    signed = [(-1 if doc.is_credit_note else 1) for doc in year_documents]
    assert -net("411") == sum(
        s * d.total_gross for s, d in zip(signed, year_documents, strict=True)
    )
    assert net("706") == sum(s * d.total_net for s, d in zip(signed, year_documents, strict=True))
    assert net("44571") == sum(s * d.total_vat for s, d in zip(signed, year_documents, strict=True))


def test_the_fec_is_latin9_and_transliterates_what_latin9_lacks(samples):
    doc = samples["simple"]()
    doc = replace(doc, buyer=replace(doc.buyer, name="Łódź Œuvres — Vélos | Cie"))

    _, content = fec_export([doc], "732829320", CLOSING, ACCOUNTS)

    assert "Lódz Œuvres - Vélos / Cie".encode("iso-8859-15") in content
    assert all(line.count(b"|") == 17 for line in content.split(b"\r\n")[:-1])


def test_the_fec_refuses_documents_after_the_closing_date_or_without_an_account(samples):
    doc = samples["simple"]()

    with pytest.raises(ValueError, match="issued after the closing date"):
        fec_export([doc], "732829320", date(2026, 11, 30), ACCOUNTS)
    with pytest.raises(KeyError, match="CUST-0042"):
        fec_export([doc], "732829320", CLOSING, {})


def test_the_invoices_csv_has_one_row_per_document_with_exact_decimals(year_documents):
    rows = list(csv.DictReader(io.StringIO(invoices_csv(year_documents))))

    assert tuple(rows[0]) == INVOICE_COLUMNS
    assert [row["number"] for row in rows] == [doc.number for doc in year_documents]
    credit = rows[3]
    assert (credit["kind"], credit["type_code"], credit["total_gross"]) == (
        "credit_note",
        "381",
        "9.60",
    )
    assert (credit["issue_date"], credit["preceding_invoice_number"]) == (
        "2026-12-10",
        "F-2026-000123",
    )


def test_the_lines_csv_has_one_row_per_line_linked_to_its_document(year_documents):
    rows = list(csv.DictReader(io.StringIO(invoice_lines_csv(year_documents))))

    assert tuple(rows[0]) == LINE_COLUMNS
    assert len(rows) == sum(len(doc.lines) for doc in year_documents)
    adjustment = next(r for r in rows if r["number"] == "F-2026-000125" and r["line_id"] == "4")
    assert (adjustment["quantity"], adjustment["unit_price"], adjustment["amount"]) == (
        "-12.5",
        "0.08",
        "-1.00",
    )
    assert adjustment["period_start"] == "2026-10-01"
    assert adjustment["description"] == "Régularisation distance — plan Urbain v2"


def test_csv_decimals_never_use_an_exponent(make_document, make_line):
    doc = make_document([make_line("1", quantity=Decimal("1E+3"), amount=Decimal("80.00"))])

    rows = list(csv.DictReader(io.StringIO(invoice_lines_csv([doc]))))

    assert rows[0]["quantity"] == "1000"
