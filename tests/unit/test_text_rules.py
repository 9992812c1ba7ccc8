"""The text rule (`clean_text`) and CSV cell escaping (`spreadsheet_safe`)."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.csv_cells import spreadsheet_safe
from billing.text import UnsafeText, clean_text


def test_text_comes_back_in_nfc():
    assert clean_text("Ame\u0301lie") == "Amélie"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a\x00", "control character U+0000 at position 1"),
        ("\x7f", "control character U+007F"),
        ("\x9b", "control character U+009B"),
        ("a\u202eb", "bidirectional control U+202E at position 1"),
        ("\u2069", "bidirectional control U+2069"),
        ("\ud800", "lone surrogate U+D800"),
        ("a\nb", "control character U+000A"),
    ],
)
def test_control_bidirectional_and_surrogate_characters_are_refused_by_name(text, message):
    with pytest.raises(UnsafeText, match=re.escape(message)):
        clean_text(text)


def test_multiline_text_keeps_tabs_and_line_breaks_only():
    assert clean_text("a\r\n\tb", multiline=True) == "a\r\n\tb"
    with pytest.raises(UnsafeText, match=re.escape("U+000B")):
        clean_text("a\vb", multiline=True)


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+33 1 23", "'+33 1 23"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-12.50", "-12.50"),
        ("+3", "+3"),
        ("Urbain", "Urbain"),
        ("", ""),
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_written_as_text(cell, written):
    assert spreadsheet_safe(cell) == written


@given(st.text())
def test_a_cell_is_written_unchanged_or_behind_an_apostrophe_never_as_a_formula(cell):
    escaped = spreadsheet_safe(cell)

    assert escaped in (cell, "'" + cell)
    if escaped == cell and cell.startswith(("=", "+", "-", "@", "\t", "\r")):
        assert re.fullmatch(r"[+-][0-9]+(\.[0-9]+)?", cell)
