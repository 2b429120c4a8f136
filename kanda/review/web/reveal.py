"""Raw text with its invisible and look-alike characters made visible, for the record page.

`12,3O0.00` (a letter O), `1 000` with a no-break space, a zero-width space pasted into a transaction id, `৫০০` in
Bengali digits: each reads as a number to a person and not to a parser, which is why the row is in the queue. Each
such character is wrapped in a marked span whose title names it (code point and Unicode name); invisible ones are
drawn as a visible symbol. Everything else is HTML-escaped as usual.
"""

from __future__ import annotations

import unicodedata

from markupsafe import Markup, escape

#: Letters that pass for digits (0, 1) when they sit among digits.
_DIGIT_LOOKALIKES = frozenset("OoIl")
_SEPARATORS = frozenset(",. '")
#: Zero-width and other invisible formatting characters, drawn as this symbol.
_INVISIBLE_SYMBOL = "\u2423"  # ␣ for spaces that are not plain spaces
_ZERO_WIDTH_SYMBOL = "\u2038"  # ‸


def _neighbour_digit(text: str, index: int, step: int) -> bool:
    i = index + step
    while 0 <= i < len(text) and text[i] in _SEPARATORS:
        i += step
    return 0 <= i < len(text) and text[i].isascii() and text[i].isdigit()


def oddity(text: str, index: int) -> tuple[str, str] | None:
    """(why, symbol to draw) if the character at `index` is one a person would misread, else None."""
    char = text[index]
    code = ord(char)
    category = unicodedata.category(char)
    if char in _DIGIT_LOOKALIKES and (_neighbour_digit(text, index, -1) or _neighbour_digit(text, index, 1)):
        return "a letter among digits", char
    if category == "Nd" and not char.isascii():
        return f"a non-ASCII digit (reads as {unicodedata.digit(char)})", char
    if category == "Zs" and char != " ":
        return "a space that is not a plain space", _INVISIBLE_SYMBOL
    if category in {"Cf", "Zl", "Zp"} or code in {0x200B, 0x2060, 0xFEFF, 0x00AD}:
        return "an invisible character", _ZERO_WIDTH_SYMBOL
    if category == "Cc":
        return "a control character", chr(0x2400 + code) if code < 0x20 else "\u2421"
    if not char.isascii() and category.startswith("L"):
        name = unicodedata.name(char, "")
        if any(script in name for script in ("CYRILLIC", "GREEK", "FULLWIDTH")):
            return "a look-alike letter from another script", char
    return None


def reveal(value: object) -> Markup:
    """`value` as HTML with odd characters marked (`<mark class="odd" title="U+004F ...">O</mark>`)."""
    if value is None:
        return Markup('<span class="null">null</span>')
    text = str(value)
    parts: list[str] = []
    for index, char in enumerate(text):
        odd = oddity(text, index)
        if odd is None:
            parts.append(str(escape(char)))
            continue
        why, symbol = odd
        name = unicodedata.name(char, "unnamed")
        title = f"U+{ord(char):04X} {name}: {why}"
        parts.append(
            f'<mark class="odd" title="{escape(title)}" data-codepoint="U+{ord(char):04X}">{escape(symbol)}</mark>'
        )
    return Markup("".join(parts))


def has_oddities(value: object) -> bool:
    text = "" if value is None else str(value)
    return any(oddity(text, i) for i in range(len(text)))
