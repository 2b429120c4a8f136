"""The report catalogues: complete for every shipped language, and the committed `.mo` files are what the `.po`
files compile to (a fresh clone needs no build step, so a stale `.mo` would silently show old wording)."""

from __future__ import annotations

import re
from gettext import GNUTranslations

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from kanda.reports.i18n import LOCALES_DIR, available_languages, resolve_language, translations

SOURCES = LOCALES_DIR.parent
PO_FILES = sorted(LOCALES_DIR.glob("*/LC_MESSAGES/messages.po"))
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def read(path):
    with path.open("rb") as f:
        return read_po(f, locale=path.parent.parent.name)


def source_messages() -> set[str]:
    """Every string the report code and templates ask to translate, extracted as `scripts/i18n.sh` does."""
    with (LOCALES_DIR / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(SOURCES), method_map, options_map):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_english_and_swahili_are_shipped():
    assert {path.parent.parent.name for path in PO_FILES} >= {"en", "sw"}
    assert set(available_languages()) >= {"en", "sw"}


@pytest.mark.parametrize("po", PO_FILES, ids=lambda p: p.parent.parent.name)
def test_committed_mo_says_what_the_po_says(po):
    """Compared through gettext itself, so that another Babel version's byte layout cannot fail the test."""
    with po.with_suffix(".mo").open("rb") as f:
        committed = GNUTranslations(f)
    stale = f"stale {po.with_suffix('.mo')}: run scripts/i18n.sh"
    for message in read(po):
        if not message.id or message.fuzzy:
            continue
        if message.pluralizable:
            singular, plural = message.id[0], message.id[1]
            assert committed.ngettext(singular, plural, 1) == message.string[0], stale
            assert committed.ngettext(singular, plural, 2) == message.string[-1], stale
        else:
            assert committed.gettext(message.id) == message.string, stale


@pytest.mark.parametrize("po", PO_FILES, ids=lambda p: p.parent.parent.name)
def test_every_report_string_is_translated_with_its_placeholders(po):
    catalog = read(po)
    wanted = source_messages()
    assert len(wanted) > 30  # the extraction found the templates and the code
    have = {(m.id[0] if isinstance(m.id, tuple) else m.id): m for m in catalog if m.id}
    assert sorted(wanted - set(have)) == [], f"untranslated in {po}: run scripts/i18n.sh and translate"
    for msgid in wanted:
        message = have[msgid]
        assert not message.fuzzy, msgid
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for string in strings:
            assert string, f"{po}: empty translation of {msgid!r}"
            assert set(PLACEHOLDER.findall(string)) == set(PLACEHOLDER.findall(ids[-1])), (msgid, string)


def test_languages_resolve_to_a_catalogue_or_fall_back_to_english():
    assert resolve_language("sw") == "sw"
    assert resolve_language("sw_TZ") == "sw"
    assert resolve_language("SW-ke") == "sw"
    assert resolve_language("fr_SN") == "fr"
    assert resolve_language("am_ET") == "am" and resolve_language("vi") == "vi"
    assert resolve_language("rw") == "en"  # Kinyarwanda has no catalogue: English
    assert resolve_language(None) == "en"
    assert translations("sw").gettext("Net") == "Mapato halisi"
    assert translations("zz").gettext("Net") == "Net"
    assert (
        translations("sw")
        .ngettext(
            "%(num)s record of this day is held for review, so its money is not in these figures yet.",
            "%(num)s records of this day are held for review, so their money is not in these figures yet.",
            2,
        )
        .startswith("Rekodi %(num)s za siku hii")
    )


def test_the_english_fill_takes_the_source_where_pybabel_guessed_and_keeps_real_edits(tmp_path):
    """`pybabel update` pre-fills a changed string with its nearest old one's text, marked fuzzy; English must then
    show the new source string, not the old wording. Deliberate English edits stay."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "i18n_fill_source", SOURCES.parent.parent / "scripts/i18n_fill_source.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    po = tmp_path / "messages.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Language: en\\n"\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
        '#, fuzzy\nmsgid "Net sales per day"\nmsgstr "Net per day"\n\n'
        'msgid "Fees"\nmsgstr "Fees and charges"\n\n'
        'msgid "Orders"\nmsgstr ""\n\n'
        '#, fuzzy\nmsgid "%(num)s order"\nmsgid_plural "%(num)s orders"\n'
        'msgstr[0] "%(num)s sale"\nmsgstr[1] "%(num)s sales"\n',
        encoding="utf-8",
    )
    assert module.fill(po) == 3
    with po.open("rb") as f:
        catalog = read_po(f, locale="en")
    assert catalog["Net sales per day"].string == "Net sales per day" and not catalog["Net sales per day"].fuzzy
    assert catalog["Fees"].string == "Fees and charges"  # an English edit, kept
    assert catalog["Orders"].string == "Orders"
    assert catalog["%(num)s order"].string == ("%(num)s order", "%(num)s orders")
