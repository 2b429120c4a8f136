"""What the landing folder keeps: every file read stays, whole, under `processed/` or `rejected/`."""

from __future__ import annotations

from kanda.regional.ingest import ingest_landing
from kanda.settings import Settings
from tests.regional.test_money_back import MPESA, mpesa
from tests.support.files import make_files

SALE = ("SKA0000001", "Pay Bill Online from 0703212279 - MERCY ACHIENG", "10,000.00")


def test_two_exports_of_the_same_name_are_both_kept(settings: Settings):
    """Rails reuse export names (`statement.csv` every month): the second file moved over the first in
    `processed/`, so the archived input of the first batch was gone."""
    make_files(settings, regions=["KE"], rows=20)
    landing = settings.landing("KE")
    contents = []
    for n, when in enumerate(("2026-11-04 09:00:10", "2026-12-04 09:00:10"), start=1):
        text = "\n".join([MPESA, mpesa(f"SKA000000{n}", when, SALE[1], paid_in=SALE[2])]) + "\n"
        (landing / "statement.csv").write_text(text)
        contents.append(text)
        (result,) = [f for f in ingest_landing(settings, "KE").files if f.file == "statement.csv"]
        assert result.status == "loaded", result
    kept = sorted(p.read_text() for p in (landing / "processed").glob("statement*.csv"))
    assert kept == sorted(contents)


def test_a_copy_of_a_rejected_file_cut_short_by_a_crash_is_made_whole(settings: Settings):
    """A kill while a rejected file was copied left part of it under `rejected/`; the rerun trusted that copy and
    deleted the landing original. The copy is now written aside and renamed, and an existing one is compared."""
    make_files(settings, regions=["KE"], rows=20)
    broken = "this is not a statement\n" + "x" * 100_000 + "\n"
    landing = settings.landing("KE")
    (landing / "broken.csv").write_text(broken)
    (first,) = [f for f in ingest_landing(settings, "KE").files if f.file == "broken.csv"]
    assert first.status == "rejected"
    (copy,) = (settings.rejected_dir / "ke").glob("*_broken.csv")
    copy.write_text(broken[:4096])  # as a crash mid-copy left it
    (landing / "broken.csv").write_text(broken)
    (again,) = [f for f in ingest_landing(settings, "KE").files if f.file == "broken.csv"]
    assert again.status == "rejected" and not (landing / "broken.csv").exists()
    assert copy.read_text() == broken
    assert not list((settings.rejected_dir / "ke").glob(".*.part"))
