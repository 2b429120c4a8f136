"""Give the English catalogue every source string as its own translation (English is the source language).

`pybabel update` adds new strings to `en` untranslated; an untranslated *plural* entry would compile to empty
strings and blank a sentence, so `scripts/i18n.sh` runs this before compiling. Existing English edits are kept,
except where `pybabel update` guessed them: a changed source string gets its nearest old one's text marked fuzzy,
and keeping that text would show the old wording, so a fuzzy entry takes its source string again.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po


def fill(path: Path) -> int:
    with path.open("rb") as f:
        catalog = read_po(f, locale="en")
    filled = 0
    for message in catalog:
        if not message.id:
            continue
        guessed = "fuzzy" in message.flags
        if isinstance(message.id, tuple | list):
            if guessed or not all(message.string):
                message.string = tuple(message.id)
                filled += 1
        elif guessed or not message.string:
            message.string = message.id
            filled += 1
        message.flags.discard("fuzzy")
    with path.open("wb") as f:
        write_po(f, catalog, width=0)
    return filled


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "kanda/reports/locales/en/LC_MESSAGES/messages.po")
    print(f"{target}: {fill(target)} source strings filled in")
