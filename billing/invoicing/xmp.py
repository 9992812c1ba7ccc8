"""The Factur-X XMP metadata of a PDF/A-3 file written by Typst.

Factur-X (and ZUGFeRD) readers find the embedded invoice through the XMP metadata: the
`fx:` properties (document type, file name, version, conformance level), declared by a
PDF/A extension schema as PDF/A requires for any property outside the standard schemas.
Typst writes a PDF/A-3b file with its own XMP, the XML already attached; this adds the
Factur-X schema and properties to that XMP, and changes nothing else.

Typst's output has a known shape: a classic cross-reference table and uncompressed
objects, the metadata stream written as `N 0 obj <</Length L/Type/Metadata/Subtype/XML>>`.
The metadata object is rewritten in place and every offset after it moved by the
difference, so that the file stays a single revision. Anything unexpected raises
`UnexpectedPdf` rather than producing a damaged file.
"""

import re

FACTURX_NAMESPACE = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
FACTURX_VERSION = "1.0"
FACTURX_CONFORMANCE_LEVEL = "EN 16931"

_PROPERTIES = (
    ("DocumentFileName", "The name of the embedded XML document"),
    ("DocumentType", "The type of the hybrid document in capital letters, e.g. INVOICE or ORDER"),
    ("Version", "The actual version of the standard applying to the embedded XML document"),
    ("ConformanceLevel", "The conformance level of the embedded XML document"),
)
_SCHEMA = (
    '<rdf:li rdf:parseType="Resource">'
    "<pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>"
    f"<pdfaSchema:namespaceURI>{FACTURX_NAMESPACE}</pdfaSchema:namespaceURI>"
    "<pdfaSchema:prefix>fx</pdfaSchema:prefix>"
    "<pdfaSchema:property><rdf:Seq>"
    + "".join(
        '<rdf:li rdf:parseType="Resource">'
        f"<pdfaProperty:name>{name}</pdfaProperty:name>"
        "<pdfaProperty:valueType>Text</pdfaProperty:valueType>"
        "<pdfaProperty:category>external</pdfaProperty:category>"
        f"<pdfaProperty:description>{description}</pdfaProperty:description>"
        "</rdf:li>"
        for name, description in _PROPERTIES
    )
    + "</rdf:Seq></pdfaSchema:property></rdf:li>"
)
_SCHEMAS_END = "</rdf:Bag></pdfaExtension:schemas>"
_RDF_END = "</rdf:RDF>"

_METADATA = re.compile(rb"\n(\d+) 0 obj\n<</Length (\d+)/Type/Metadata/Subtype/XML>>\nstream\n")
_STARTXREF = re.compile(rb"\nstartxref\n(\d+)\n%%EOF\s*\Z")
_SUBSECTION = re.compile(rb"xref\n0 (\d+)\n")
_XREF_ENTRY = re.compile(rb"(\d{10}) (\d{5}) ([nf])( \n|\r\n| \r)")
# A cross-reference table: its subsection header, its entries and the startxref.
_XrefTable = tuple[re.Match[bytes], list[re.Match[bytes]], re.Match[bytes]]


class UnexpectedPdf(ValueError):
    """The PDF is not shaped as this module expects Typst to write it."""


def with_facturx_metadata(pdf: bytes, xml_filename: str) -> bytes:
    """`pdf` with the Factur-X extension schema and properties in its XMP metadata."""
    found = list(_METADATA.finditer(pdf))
    if len(found) != 1:
        raise UnexpectedPdf(f"expected one XMP metadata stream, found {len(found)}")
    header = found[0]
    start, length = header.end(), int(header.group(2))
    if pdf[start + length : start + length + 10] != b"\nendstream":
        raise UnexpectedPdf("the XMP metadata stream does not end where its length says")
    tail = pdf[start + length :]
    table = _xref_table(tail)
    xmp = _facturx_xmp(pdf[start : start + length].decode("utf-8"), xml_filename).encode()
    new_header = b"\n%s 0 obj\n<</Length %d/Type/Metadata/Subtype/XML>>\nstream\n" % (
        header.group(1),
        len(xmp),
    )
    rewritten = pdf[: header.start()] + new_header + xmp
    shift = len(rewritten) - (start + length)
    return rewritten + _shifted(tail, table, moved_from=start, shift=shift)


def _facturx_xmp(xmp: str, xml_filename: str) -> str:
    if FACTURX_NAMESPACE in xmp:
        raise UnexpectedPdf("the XMP metadata has Factur-X properties already")
    if xmp.count(_SCHEMAS_END) != 1 or xmp.count(_RDF_END) != 1:
        raise UnexpectedPdf("the XMP metadata has no single PDF/A extension schema list")
    values = (
        f'<rdf:Description rdf:about="" xmlns:fx="{FACTURX_NAMESPACE}">'
        "<fx:DocumentType>INVOICE</fx:DocumentType>"
        f"<fx:DocumentFileName>{xml_filename}</fx:DocumentFileName>"
        f"<fx:Version>{FACTURX_VERSION}</fx:Version>"
        f"<fx:ConformanceLevel>{FACTURX_CONFORMANCE_LEVEL}</fx:ConformanceLevel>"
        "</rdf:Description>"
    )
    xmp = xmp.replace(_SCHEMAS_END, _SCHEMA + _SCHEMAS_END)
    return xmp.replace(_RDF_END, values + _RDF_END)


def _xref_table(tail: bytes) -> _XrefTable:
    """The cross-reference table after the metadata: its subsection header, its entries
    and the startxref at the end of the file."""
    ending = _STARTXREF.search(tail)
    if ending is None:
        raise UnexpectedPdf("no startxref at the end of the file")
    xref_at = tail.rfind(b"\nxref\n", 0, ending.start()) + 1
    subsection = _SUBSECTION.match(tail, xref_at) if xref_at else None
    if subsection is None:
        raise UnexpectedPdf("no classic cross-reference table of one subsection from object 0")
    entries = []
    for offset in range(subsection.end(), subsection.end() + 20 * int(subsection.group(1)), 20):
        entry = _XREF_ENTRY.fullmatch(tail, offset, offset + 20)
        if entry is None:
            raise UnexpectedPdf("a cross-reference entry is malformed")
        entries.append(entry)
    return subsection, entries, ending


def _shifted(tail: bytes, table: _XrefTable, moved_from: int, shift: int) -> bytes:
    """`tail` with the offsets of the objects at or after `moved_from` moved by `shift`."""
    subsection, entries, ending = table
    shifted = []
    for entry in entries:
        position = int(entry.group(1))
        if entry.group(3) == b"n" and position >= moved_from:
            position += shift
        shifted.append(b"%010d %s %s%s" % (position, entry.group(2), entry.group(3),
                                           entry.group(4)))  # fmt: skip
    return (
        tail[: subsection.end()]
        + b"".join(shifted)
        + tail[entries[-1].end() if entries else subsection.end() : ending.start()]
        + b"\nstartxref\n%d\n%%%%EOF\n" % (int(ending.group(1)) + shift)
    )
