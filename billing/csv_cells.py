"""CSV cells that a spreadsheet shows as text, never runs (CSV injection).

Excel, LibreOffice and Google Sheets read a cell starting with `=`, `+`, `-` or `@` as a
formula, and some do so after a leading tab or carriage return: a plan named
`=HYPERLINK("http://…")` would become a live link in finance's spreadsheet. Such a cell is
written with a leading apostrophe, as OWASP recommends, except a plain number ("-12.50": a
credit note's amount), which no spreadsheet runs.
"""

import re

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def spreadsheet_safe(cell: str) -> str:
    """`cell` as it can be written to any CSV export."""
    if cell.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell
