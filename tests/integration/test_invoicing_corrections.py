"""Issued invoices are corrected by credit notes, never changed: voids, partial credits."""

from decimal import Decimal

import pytest

from billing.errors import Conflict, Invalid
from billing.invoicing import services
from billing.invoicing.credit_notes import CreditedLine
from billing.invoicing.models import IssuedDocumentChanged
from billing.payments import collection
from tests.integration.invoicing import (
    CLOSED,
    DUE,
    NOVEMBER,
    invoice_of,
    november_rides,
)

D = Decimal
LATER = DUE.replace(day=10)


@pytest.fixture
def issued(session, settings, fleet):
    """Customer A's November invoice, finalized: lines 1-6 are 3.45, 15.00, 19.00, 13.96,
    1.80 and 7.50 (see test_invoicing_run); 60.71 HT, 12.14 VAT, 72.85 TTC."""
    november_rides(session, fleet)
    services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)
    invoice = invoice_of(session, fleet.customer_id)
    return collection.finalize_invoice(session, invoice.id, DUE, settings=settings)


def test_voiding_issues_a_full_credit_note_citing_the_invoice(session, settings, issued):
    note = collection.void_invoice(session, issued.id, "Client facturé par erreur", LATER,
                                   settings=settings)  # fmt: skip

    assert issued.status == "void"
    assert note.kind == "credit_note" and note.status == "finalized"
    assert note.number == "AV-2026-000001"
    assert note.credited_invoice.number == "F-2026-000001"
    assert note.credited_invoice.issue_date == issued.issue_date
    assert [line.amount for line in note.lines] == [line.amount for line in issued.lines]
    assert (note.total_net, note.total_vat, note.total_gross) == (
        D("60.71"), D("12.14"), D("72.85"),
    )  # fmt: skip
    assert note.reason == "Client facturé par erreur"


def test_an_issued_invoice_is_never_discarded_nor_voided_twice(session, settings, issued):
    with pytest.raises(Conflict):
        services.discard_draft(session, issued.id)
    collection.void_invoice(session, issued.id, "erreur", LATER, settings=settings)
    with pytest.raises(Conflict):
        collection.void_invoice(session, issued.id, "erreur", LATER, settings=settings)
    assert invoice_of(session, issued.customer_id).number == "F-2026-000001"


def test_partial_credit_notes_credit_chosen_lines_and_never_more_than_billed(
    session, settings, issued
):
    first = collection.issue_credit_note(
        session, issued.id, "Kilomètres comptés deux fois", LATER, settings=settings,
        lines=[CreditedLine(2), CreditedLine(3, D("5.00"))],
    )  # fmt: skip

    # Line 2 in full (15.00, as billed: 100 km at 0.15), 5.00 of line 3: 20.00 HT, 4.00 VAT.
    assert [(line.credited_position, line.amount, line.quantity) for line in first.lines] == [
        (2, D("15.00"), D("100")),
        (3, D("5.00"), D("1")),
    ]
    assert (first.total_net, first.total_vat, first.total_gross) == (
        D("20.00"), D("4.00"), D("24.00"),
    )  # fmt: skip
    assert issued.status == "finalized"
    with pytest.raises(Invalid) as error:
        collection.issue_credit_note(
            session, issued.id, "encore", LATER, settings=settings,
            lines=[CreditedLine(3, D("14.01"))],
        )  # fmt: skip
    assert error.value.details == {
        "lines.0.amount": ["14.01 is more than the 14.00 left to credit"]
    }


def test_a_credit_note_of_an_amount_is_spread_over_the_vat_rates(session, settings, issued):
    note = collection.issue_credit_note(
        session, issued.id, "Geste commercial", LATER, settings=settings, amount=D("10.00")
    )

    assert [(line.description, line.amount, line.vat_rate) for line in note.lines] == [
        ("Avoir commercial", D("10.00"), D("20.00"))
    ]
    assert note.number == "AV-2026-000001"
    with pytest.raises(Invalid):
        collection.issue_credit_note(
            session, issued.id, "trop", LATER, settings=settings, amount=D("50.72")
        )


def test_voiding_after_partial_credits_credits_exactly_what_is_left(session, settings, issued):
    collection.issue_credit_note(session, issued.id, "geste", LATER, settings=settings,
                                 amount=D("10.00"))  # fmt: skip
    collection.issue_credit_note(session, issued.id, "km", LATER, settings=settings,
                                 lines=[CreditedLine(2)])  # fmt: skip

    note = collection.void_invoice(session, issued.id, "résiliation", LATER, settings=settings)

    # 60.71 - 10.00 - 15.00 = 35.71: every line but the 2nd, less the 10.00 already credited.
    assert note.number == "AV-2026-000003"
    assert note.total_net == D("35.71")
    assert [line.amount for line in note.lines][-1] == D("-10.00")


def test_drafts_and_credit_notes_cannot_be_credited(session, settings, fleet):
    november_rides(session, fleet)
    services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)
    draft = invoice_of(session, fleet.customer_id)

    with pytest.raises(Conflict):
        collection.issue_credit_note(session, draft.id, "x", LATER, settings=settings,
                                     amount=D(1))  # fmt: skip
    with pytest.raises(Conflict):
        collection.void_invoice(session, draft.id, "x", LATER, settings=settings)


def test_the_database_session_refuses_to_change_an_issued_invoice(session, issued):
    issued.total_net = D("1.00")
    with pytest.raises(IssuedDocumentChanged):
        session.flush()
    session.rollback()
    issued.lines[0].amount = D("1.00")
    with pytest.raises(IssuedDocumentChanged):
        session.flush()
