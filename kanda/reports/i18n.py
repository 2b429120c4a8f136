"""Languages and locales of creators' reports: gettext catalogues managed with Babel, Babel locales for formatting.

The text of a report follows the creator's *language* (`en`, `sw`); numbers, money and dates follow their *locale*
(`sw_TZ`, `en_NG`, ...). Catalogues live in `locales/<lang>/LC_MESSAGES/messages.po` beside their compiled `.mo`,
which is committed (a test compiles every `.po` and compares) so that `pip install -e .` on a fresh clone needs no
build step. `scripts/i18n.sh` re-extracts, updates and compiles them.

A language without a catalogue falls back to English, the language of the source strings; an unknown locale falls
back to the language's own, then English. Both are looked up once per process: building 10,000 reports must not
reread a catalogue 10,000 times.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.support import NullTranslations, Translations

LOCALES_DIR = Path(__file__).parent / "locales"
DOMAIN = "messages"
DEFAULT_LANGUAGE = "en"


@cache
def available_languages() -> tuple[str, ...]:
    """Languages with a compiled catalogue, English always included (it is the source language)."""
    found = {p.parent.parent.name for p in LOCALES_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.mo")}
    return tuple(sorted(found | {DEFAULT_LANGUAGE}))


def resolve_language(language: str | None) -> str:
    """The catalogue language to use for `language` ("sw", "sw_TZ", "SW-tz" -> "sw"; unknown -> "en")."""
    if not language:
        return DEFAULT_LANGUAGE
    code = language.replace("-", "_").split("_")[0].lower()
    return code if code in available_languages() else DEFAULT_LANGUAGE


@cache
def translations(language: str) -> NullTranslations:
    """The gettext translations of a (resolved) language; English reads its source strings as they are."""
    language = resolve_language(language)
    if not (LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo").exists():
        return NullTranslations()
    return Translations.load(str(LOCALES_DIR), [language], domain=DOMAIN)


@cache
def babel_locale(locale: str | None, language: str | None = None) -> Locale:
    """The Babel locale for formatting: the creator's, else their language's, else English."""
    for candidate in (locale, language, DEFAULT_LANGUAGE):
        if not candidate:
            continue
        try:
            return Locale.parse(candidate.replace("-", "_"))
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse(DEFAULT_LANGUAGE)


@cache
def date_locale(locale: str | None, language: str) -> Locale:
    """The locale for words inside numbers' company (month and day names): the text's language, in the creator's
    territory where Babel knows that pair (`sw` + `sw_KE`), else the language alone.

    An English report for an `ar_EG` or `fr_SN` creator keeps Egyptian or Senegalese money formatting but must not
    name the month in Arabic or French in the middle of an English sentence.
    """
    given = babel_locale(locale, language)
    if given.language == language:
        return given
    if given.territory:
        try:
            return Locale.parse(f"{language}_{given.territory}")
        except (UnknownLocaleError, ValueError):
            pass
    return babel_locale(language)
