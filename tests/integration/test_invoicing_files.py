"""The files of issued documents are rendered once, after issue, and only ever read after:
a download or an export never renders, and says so while a document is not ready."""

import datetime as dt
import io
import zipfile

import facturx
import pytest
from sqlalchemy import func, select

from billing.auth import Principal
from billing.invoicing import document_files, files, services
from billing.invoicing.document_files import render_missing_documents
from billing.invoicing.facturx_xml import invoice_xml
from billing.invoicing.models import Invoice, InvoiceFile
from billing.invoicing.rendering import invoice_document
from billing.payments import collection
from billing.scheduler import invoice as invoice_job
from billing.settings import load_settings
from tests.databases import SEEDED_AT
from tests.integration.invoicing import CLOSED, DUE, NOVEMBER, assign, november_rides
from tests.integration.test_invoicing_cli import on_urbain_since

FINANCE = Principal(key_id="test", role="finance")
DECEMBER = NOVEMBER.next()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def month_run(session, settings, fleet):
    """November invoiced and finalized by the month's run, as the scheduler does it."""
    assign(session, "VEH-B", "urbain", "2026-11-01T00:00:00+01:00")
    november_rides(session, fleet)
    services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)
    report = collection.finalize_due_invoices(session, DUE, settings=settings)
    assert len(report.finalized) == 2
    return session.scalars(select(Invoice).order_by(Invoice.number)).all()


def kept_files(session) -> int:
    return session.scalar(select(func.count()).select_from(InvoiceFile))


def test_the_month_run_leaves_its_documents_to_the_background_rendering(session, month_run):
    assert kept_files(session) == 0
    with pytest.raises(files.DocumentNotReady, match="F-2026-000001 are being rendered"):
        files.document_file(session, FINANCE, month_run[0].id, files.FACTURX_PDF)

    rendered = render_missing_documents(session, DUE)

    assert rendered == 4 and kept_files(session) == 4
    assert render_missing_documents(session, DUE) == 0
    served = files.document_file(session, FINANCE, month_run[0].id, files.FACTURX_PDF)
    kept = session.get(InvoiceFile, (month_run[0].id, files.FACTURX_PDF))
    assert served.content == kept.content
    _name, xml = facturx.get_xml_from_pdf(served.content, check_xsd=True)
    assert xml == invoice_xml(invoice_document(month_run[0]))


def test_a_document_not_rendered_yet_answers_503_and_the_zip_export_refuses_at_once(
    client, keys, session, month_run
):
    finance = auth(keys["finance"])

    pdf = client.get(f"/api/v1/invoices/{month_run[0].id}/pdf", headers=finance)
    archive = client.get(f"/api/v1/exports/facturx.zip?period={DECEMBER}", headers=finance)
    xml = client.get(f"/api/v1/invoices/{month_run[0].id}/facturx.xml", headers=finance)

    assert pdf.status_code == 503
    assert pdf.json["error"]["code"] == "document_not_ready"
    assert archive.status_code == 503
    assert archive.json["error"]["message"] == (
        "2 document(s) issued in 2026-12 are being rendered; try again in a few minutes"
    )
    assert xml.status_code == 200  # made from the invoice, cheap: never kept
    render_missing_documents(session, DUE)
    archive = client.get(f"/api/v1/exports/facturx.zip?period={DECEMBER}", headers=finance)
    assert zipfile.ZipFile(io.BytesIO(archive.data)).namelist() == [
        "F-2026-000001-facturx.pdf", "F-2026-000002-facturx.pdf",
    ]  # fmt: skip


def test_a_kept_file_is_served_as_kept_even_if_the_renderer_changed(session, month_run):
    render_missing_documents(session, DUE)
    kept = session.get(InvoiceFile, (month_run[1].id, files.PDF))
    kept.content = b"%PDF-1.7 as sent in 2026"
    session.commit()

    served = files.document_file(session, FINANCE, month_run[1].id, files.PDF)

    assert served.content == b"%PDF-1.7 as sent in 2026"
    assert render_missing_documents(session, DUE) == 0


def test_the_rendering_stops_when_its_budget_is_spent_and_the_next_run_goes_on(
    session, month_run, monkeypatch
):
    monkeypatch.setattr(document_files, "BATCH_SIZE", 1)

    assert render_missing_documents(session, DUE, budget=dt.timedelta(0)) == 0
    assert document_files.missing_count(session) == 2
    progress = []
    assert render_missing_documents(session, DUE, progress=lambda *a: progress.append(a)) == 4
    assert progress == [(1, 2), (2, 2)]
    assert document_files.missing_count(session) == 0


def test_the_scheduler_invoice_job_renders_what_was_issued(database, session, settings, month_run):
    invoice_job(database, settings)

    assert document_files.missing_count(session) == 0
    assert kept_files(session) == 4


def test_a_document_issued_one_at_a_time_has_its_files_when_the_call_returns(
    session, settings, fleet
):
    november_rides(session, fleet)
    services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)
    draft = session.scalars(select(Invoice).where(Invoice.customer_id == fleet.customer_id)).one()

    collection.finalize_invoice(session, draft.id, DUE, settings=settings)

    formats = session.scalars(
        select(InvoiceFile.format).where(InvoiceFile.invoice_id == draft.id)
    ).all()
    assert sorted(formats) == ["facturx.pdf", "pdf"]


def test_billing_invoices_documents_renders_what_is_missing(cli, fresh_db, fresh_url, tmp_path):
    on_urbain_since(fresh_db, ["DOC-1"], SEEDED_AT)
    assert cli("invoices", "run", "--period", "2026-10").exit_code == 0
    with fresh_db.session() as session:
        report = collection.finalize_due_invoices(
            session, DUE, settings=load_settings(data_dir=tmp_path)
        )
        assert len(report.finalized) == 1

    result = cli("invoices", "documents")

    assert result.exit_code == 0, result.output
    assert "2 file(s) rendered" in result.stderr
    with fresh_db.session() as session:
        assert document_files.missing_count(session) == 0


def test_the_openapi_document_says_a_kept_document_may_not_be_ready(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]

    for path in ("/api/v1/invoices/{invoice_id}/pdf", "/api/v1/invoices/{invoice_id}/facturx.pdf",
                 "/api/v1/exports/facturx.zip"):  # fmt: skip
        assert "503" in paths[path]["get"]["responses"], path
    assert "503" not in paths["/api/v1/invoices/{invoice_id}/facturx.xml"]["get"]["responses"]


def test_a_rendering_that_fails_leaves_the_document_issued_for_the_next_run(
    session, settings, fleet, monkeypatch, caplog
):
    november_rides(session, fleet)
    services.generate_invoices(session, NOVEMBER, CLOSED, settings=settings)
    draft = session.scalars(select(Invoice).where(Invoice.customer_id == fleet.customer_id)).one()

    def broken(_document):
        raise RuntimeError("no fonts")

    monkeypatch.setitem(document_files.RENDERERS, files.PDF, broken)
    issued = collection.finalize_invoice(session, draft.id, DUE, settings=settings)

    assert issued.number == "F-2026-000001" and issued.status == "finalized"
    assert "the documents of F-2026-000001 could not be rendered" in caplog.text
    assert document_files.missing_count(session) == 1
    monkeypatch.undo()
    assert render_missing_documents(session, DUE) == 2
