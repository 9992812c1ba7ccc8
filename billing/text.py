"""The text rule every name, address, reason and message id follows, on plain strings:
used by the API's fields (billing.validators), plan files, users and mail."""

import re
import unicodedata

# Text refused in every name, address, reason and message id: C0 and C1 control characters
# (NUL included) and DEL, which break files, terminals and PDF text; lone surrogates, which
# no UTF-8 store can hold; and the bidirectional embedding, override and isolate controls,
# which make a name display differently from what it holds ("Trojan Source").
_REFUSED = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# Multi-line text (notes) may also hold tabs and line breaks.
_REFUSED_MULTILINE = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


class UnsafeText(ValueError):
    """Text holding a character the text rule refuses; the message names it."""


def clean_text(value: str, *, multiline: bool = False) -> str:
    """`value` in Unicode NFC, the one form text is stored and compared in.

    Raise UnsafeText naming the first control, bidirectional-control or lone-surrogate
    character and its position. The rule of every text field of the API and of plan
    files; `multiline` also lets tabs and line breaks through.
    """
    refused = (_REFUSED_MULTILINE if multiline else _REFUSED).search(value)
    if refused is not None:
        char = refused.group()
        raise UnsafeText(
            f"holds the {_character_kind(char)} U+{ord(char):04X} at position "
            f"{refused.start()}; control and bidirectional characters are refused"
        )
    return unicodedata.normalize("NFC", value)


def _character_kind(char: str) -> str:
    if "\ud800" <= char <= "\udfff":
        return "lone surrogate"
    if unicodedata.category(char) == "Cf":
        return "bidirectional control"
    return "control character"
