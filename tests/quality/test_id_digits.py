"""Creator and product ids are written in ASCII digits only.

Regex `\\d` matches any Unicode digit, so a payment reference naming its product as `EG-P٠٠٠٠٥` (Arabic-Indic
digits) or `EG-P０００００５` (full-width) passed the contract and loaded under a product that no registry, report
or later delivery of the same payment (written `EG-P00005`) knows: its money sat in product_daily under a phantom
id. Such an id is now unreadable, and its row is quarantined for a steward instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kanda.regional.ingest import ingest_files
from kanda.regional.store import open_store
from kanda.settings import Settings
from regions import creator_pattern, product_pattern
from tests.support.builders import paid, stripe_file
from tests.support.files import make_files

ARABIC_INDIC = "٠٠٠٠٥"
FULL_WIDTH = "０００００５"


@pytest.mark.parametrize("digits", [ARABIC_INDIC, FULL_WIDTH, "\u0f20\u0f20\u0f20\u0f20\u0f25"])
def test_an_id_in_other_digits_is_quarantined_not_loaded_under_a_phantom_product(
    settings: Settings, tmp_path: Path, digits: str
):
    make_files(settings, regions=["EG"], rows=20)
    lines = [
        paid("ch_ascii", "2026-10-05 10:00:00"),
        paid("ch_other", "2026-10-05 11:00:00").replace("EG-P00005", f"EG-P{digits}"),
    ]
    (result,) = ingest_files(settings, "EG", [stripe_file(tmp_path / "in", "digits.csv", lines)]).files
    assert (result.loaded, result.quarantined) == (1, 1), result
    with open_store(settings, "EG", read_only=True) as con:
        products = con.execute("SELECT DISTINCT product_id FROM sale_events WHERE transaction_id LIKE 'ch_%'")
        assert products.fetchall() == [("EG-P00005",)]
        (held,) = con.execute("SELECT transaction_id FROM quarantine WHERE transaction_id = 'ch_other'").fetchall()
    assert held == ("ch_other",)


def test_the_id_patterns_take_ascii_digits_only():
    assert re.fullmatch(product_pattern("EG"), "EG-P00005")
    assert re.fullmatch(creator_pattern("EG"), "EG-C0002")
    assert not re.fullmatch(product_pattern("EG"), f"EG-P{ARABIC_INDIC}")
    assert not re.fullmatch(creator_pattern("EG"), "EG-C٠٠٠٢")
