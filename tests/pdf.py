"""What a PDF says, for tests that check a document's content rather than its bytes."""

import io

from pypdf import PdfReader


def pdf_text(pdf: bytes) -> str:
    """The text of every page, any run of spaces (no-break ones too) as one plain space."""
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())
