"""What a steward types, checked at the edge before it reaches the review service: the web form and `kanda review`.

Two things the contract does not catch, because a file could not have caused them:

- **Length.** Reasons, notes and justifications go into the audit log, which can never be shortened (it is
  append-only), and edits into it and the item. A pasted document, or a script posting a megabyte per record of a
  bulk action, would stay there for good; a value longer than any field of a sale, or a reason longer than a
  paragraph, is refused with its length instead.
- **Characters a person cannot see or tell apart, typed into an id.** A transaction id pasted with a zero-width
  space or a right-to-left mark, or typed in full-width or Cyrillic letters, passes the contract (it checks only
  the length), loads as an event of its own, and the rail's next delivery of that payment is then counted a second
  time instead of as a duplicate. The same characters in a product id file the sale under a product no report
  knows. Only a changed value is checked: an id the file itself carries (shown with its odd characters marked)
  can be left as it is while other fields are fixed.

Money and times are not checked here: they are read by the rail's own parsing (`kanda.review.notation`), which
decides what it accepts, and the page shows what they will store before anything is saved.
"""

from __future__ import annotations

import unicodedata

#: The longest reason, note or justification kept (a paragraph).
MAX_REASON_CHARS = 2000
#: The longest value typed into a field (the contract's longest, a transaction id, is 128 characters).
MAX_VALUE_CHARS = 256
#: Columns that hold an identifier or a code, where an invisible or look-alike character makes another value.
ID_COLUMNS = frozenset({"transaction_id", "event_type", "status", "creator_id", "product_id", "channel", "currency"})


def reason_problem(text: str | None, label: str = "reason") -> str | None:
    """Why a reason cannot be kept, or None."""
    if text is not None and len(text) > MAX_REASON_CHARS:
        return f"the {label} has {len(text):,} characters; at most {MAX_REASON_CHARS:,} are kept: shorten it"
    return None


def value_problem(column: str, text: str) -> str | None:
    """Why a typed value cannot be taken for `column`, or None."""
    if len(text) > MAX_VALUE_CHARS:
        return f"{len(text):,} characters; a field takes at most {MAX_VALUE_CHARS}"
    if column in ID_COLUMNS:
        for char in text.strip():
            why = _unseen(char)
            if why:
                name = unicodedata.name(char, "unnamed")
                return f"contains U+{ord(char):04X} {name} ({why}): type the id in plain characters"
    return None


def _unseen(char: str) -> str | None:
    """Why a character in an id would not be seen or told apart from another, or None."""
    category = unicodedata.category(char)
    if category in {"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"}:
        return "an invisible or control character"
    if category == "Zs" and char != " ":
        return "a space that is not a plain space"
    if category == "Nd" and not char.isascii():
        return "a digit that is not 0-9"
    if not char.isascii() and category.startswith("L"):
        name = unicodedata.name(char, "")
        if any(script in name for script in ("CYRILLIC", "GREEK", "FULLWIDTH", "HALFWIDTH")):
            return "a letter that looks like a Latin one"
    return None
