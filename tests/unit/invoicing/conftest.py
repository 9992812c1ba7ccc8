"""Sample invoice documents: one per kind the XML, the PDF and the exports must handle."""

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from billing.invoicing.documents import (
    CREDIT_NOTE,
    Address,
    DocumentLine,
    InvoiceDocument,
    Party,
    TierDetail,
    document_totals,
    usage_line,
)

D = Decimal
NOVEMBER = (date(2026, 11, 1), date(2026, 11, 30))

SELLER = Party(
    name="Trottinettes Durables SAS",
    address=Address("3 rue des Trois Cailloux", "80000", "Amiens", "FR", line2="Bâtiment B"),
    siren="732829320",
    vat_number="FR44732829320",
    email="facturation@trottinettes-durables.example",
    iban="FR76 3000 6000 0112 3456 7890 189",
    bic="BNPAFRPPXXX",
    legal_form="SAS au capital de 50 000 €",
    rcs="RCS Amiens 732 829 320",
)
FRENCH_BUYER = Party(
    name="Livraisons Picardes SAS",
    address=Address("12 rue des Jacobins", "80000", "Amiens", "FR"),
    siren="812345678",
    vat_number="FR25812345678",
    email="compta@lp.example",
)
GERMAN_BUYER = Party(
    name="Stadtwerke Freiburg GmbH",
    address=Address("Heinrich-von-Stephan-Straße 2", "79100", "Freiburg im Breisgau", "DE"),
    vat_number="DE811234567",
    email="rechnung@stadtwerke.example",
)


def line(line_id: str, vehicle_id: str | None = "MOB-000123", **fields) -> DocumentLine:
    """A per-unit usage line at 20 % for November, with fields overridable."""
    values = {
        "description": "Distance parcourue — plan Urbain v2",
        "metric": "distance_km",
        "quantity": D("412.3"),
        "unit_code": "KMT",
        "unit_price": D("0.08"),
        "amount": D("32.98"),
        "currency": "EUR",
        "vat_category": "S",
        "vat_rate": D("20"),
        "period_start": NOVEMBER[0],
        "period_end": NOVEMBER[1],
    }
    return usage_line(line_id=line_id, vehicle_id=vehicle_id, **{**values, **fields})


def vehicle_lines(first_id: int, vehicle_id: str) -> list[DocumentLine]:
    """A vehicle's month: the monthly fee, distance and trips."""
    return [
        line(str(first_id), vehicle_id, description="Forfait mensuel — plan Urbain v2",
             metric="vehicle_days", quantity=D(1), unit_code="C62", unit_price=D("19.00"),
             amount=D("19.00")),
        line(str(first_id + 1), vehicle_id),
        line(str(first_id + 2), vehicle_id, description="Trajets — plan Urbain v2",
             metric="trips", quantity=D(38), unit_code="C62", unit_price=D("0.10"),
             amount=D("3.80")),
    ]  # fmt: skip


def tiered_line(line_id: str, vehicle_id: str = "MOB-000123") -> DocumentLine:
    """620 km on graduated tiers: 50 included, 0–100 free, 101–500 at 0.08 + 1.00, then 0.05."""
    tiers = (
        TierDetail("0–100 km offerts", D(100), D(0), D(0), D("0.00")),
        TierDetail("101–500 km à 0,08 € + 1,00 €", D(400), D("0.08"), D("1.00"), D("33.00")),
        TierDetail("au-delà de 500 km à 0,05 €", D(70), D("0.05"), D(0), D("3.50")),
    )
    return line(line_id, vehicle_id, quantity=D(620), unit_price=None, amount=D("36.50"),
                tiers=tiers, note="50 km inclus déduits")  # fmt: skip


def build_document(lines: list[DocumentLine], **fields) -> InvoiceDocument:
    """An invoice of `lines` with consistent totals; any InvoiceDocument field can be set."""
    currency = fields.get("currency", "EUR")
    totals = document_totals(lines, currency)
    values = {
        "kind": "invoice",
        "number": "F-2026-000123",
        "issue_date": date(2026, 12, 1),
        "due_date": date(2026, 12, 31),
        "currency": currency,
        "seller": SELLER,
        "buyer": FRENCH_BUYER,
        "language": "fr",
        "period_start": NOVEMBER[0],
        "period_end": NOVEMBER[1],
        "lines": tuple(lines),
        "vat_breakdown": totals.vat_breakdown,
        "total_net": totals.total_net,
        "total_vat": totals.total_vat,
        "total_gross": totals.total_gross,
        "amount_due": totals.total_gross,
        "payment_terms": "Paiement à 30 jours par virement",
        "late_penalty_rate": "taux directeur BCE + 10 points",
        "buyer_reference": "CUST-0042",
        "usage_summary": (
            ("MOB-000123", "Distance", "412,3 km"),
            ("MOB-000123", "Trajets", "38"),
        ),
    }
    return InvoiceDocument(**{**values, **fields})


def simple_invoice() -> InvoiceDocument:
    return build_document(vehicle_lines(1, "MOB-000123"))


def tiered_invoice() -> InvoiceDocument:
    return build_document([*vehicle_lines(1, "MOB-000123")[:1], tiered_line("2")])


def adjusted_invoice() -> InvoiceDocument:
    adjustment = line("4", description="Régularisation distance — plan Urbain v2",
                      quantity=D("-12.5"), amount=D("-1.00"),
                      period_start=date(2026, 10, 1), period_end=date(2026, 10, 31),
                      note="Régularisation période 2026-10")  # fmt: skip
    return build_document([*vehicle_lines(1, "MOB-000123"), adjustment])


def reverse_charge_invoice() -> InvoiceDocument:
    lines = [replace(item, vat_category="AE", vat_rate=D(0))
             for item in vehicle_lines(1, "MOB-000777")]  # fmt: skip
    return build_document(lines, buyer=GERMAN_BUYER, buyer_reference="CUST-0099",
                          number="F-2026-000124")  # fmt: skip


def zero_rated_invoice() -> InvoiceDocument:
    """A French customer on a plan at 0 %: category Z, no exemption reason."""
    lines = [replace(item, vat_category="Z", vat_rate=D(0))
             for item in vehicle_lines(1, "MOB-000123")]  # fmt: skip
    return build_document(lines, number="F-2026-000125")


def credit_note() -> InvoiceDocument:
    refund = line("1", description="Avoir sur distance facturée en trop — plan Urbain v2",
                  quantity=D("100"), amount=D("8.00"))  # fmt: skip
    return build_document(
        [refund],
        kind=CREDIT_NOTE,
        number="AV-2026-000007",
        issue_date=date(2026, 12, 10),
        due_date=date(2026, 12, 10),
        payment_terms="Avoir imputé sur la prochaine facture",
        preceding_invoice_number="F-2026-000123",
        preceding_invoice_date=date(2026, 12, 1),
        usage_summary=(),
    )


def english_invoice() -> InvoiceDocument:
    return replace(simple_invoice(), language="en",
                   payment_terms="Payment within 30 days by bank transfer",
                   late_penalty_rate="the ECB refinancing rate + 10 points",
                   early_payment_discount="No discount for early payment")  # fmt: skip


def fleet_invoice() -> InvoiceDocument:
    """Three vehicles, one on tiered pricing, and a late-usage adjustment: a full page."""
    lines = [
        *vehicle_lines(1, "MOB-000123"),
        *vehicle_lines(4, "MOB-000124"),
        *vehicle_lines(7, "MOB-000125")[:1],
        tiered_line("8", "MOB-000125"),
        line("9", "MOB-000124", description="Régularisation distance — plan Urbain v2",
             quantity=D("-12.5"), amount=D("-1.00"), note="Régularisation période 2026-10"),
    ]  # fmt: skip
    summary = tuple(
        (vehicle, label, quantity)
        for vehicle in ("MOB-000123", "MOB-000124", "MOB-000125")
        for label, quantity in (("Distance", "412,3 km"), ("Trajets", "38"), ("Jours actifs", "21"))
    )
    return build_document(lines, usage_summary=summary)


SAMPLES: dict[str, Callable[[], InvoiceDocument]] = {
    "simple": simple_invoice,
    "tiered": tiered_invoice,
    "adjusted": adjusted_invoice,
    "reverse_charge": reverse_charge_invoice,
    "zero_rated": zero_rated_invoice,
    "credit_note": credit_note,
    "english": english_invoice,
    "fleet": fleet_invoice,
}


@pytest.fixture(params=sorted(SAMPLES))
def any_document(request: pytest.FixtureRequest) -> InvoiceDocument:
    """Each sample document in turn."""
    return SAMPLES[request.param]()


@pytest.fixture
def samples() -> dict[str, Callable[[], InvoiceDocument]]:
    return SAMPLES


@pytest.fixture
def make_document() -> Callable[..., InvoiceDocument]:
    """build_document: an invoice of the given lines, totals computed, fields overridable."""
    return build_document


@pytest.fixture
def make_line() -> Callable[..., DocumentLine]:
    """line: a 20 % usage line of vehicle MOB-000123, fields overridable."""
    return line
