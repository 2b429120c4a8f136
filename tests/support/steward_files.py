"""Hand-written Egypt (Stripe) files with known dirt, for the review tests: every row's fate is known in advance."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from kanda.regional.ingest import ingest_files
from kanda.settings import Settings
from tests.support.files import make_files

HEADER = (
    "id;Description;Created date (UTC);Amount;Amount Refunded;Currency;Converted Amount;Converted Currency;Fee;"
    "Status;Customer Email;Card Brand;kanda_ref (metadata)\n"
)


def line(charge: str, when: str, amount: str = "250,00", creator: str = "EG-C0002") -> str:
    """One paid Stripe charge: 250,00 EGP with a 3,75 fee unless told otherwise."""
    return (
        f"{charge};Payment;{when};{amount};0,00;egp;{amount};egp;3,75;Paid;buyer@mail.example;Visa;{creator}.EG-P00005"
    )


def future_time(days: int = 30) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")


def write(folder: Path, name: str, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(HEADER + "".join(x + "\n" for x in lines))
    return path


def ingest_dirty_egypt(settings: Settings, folder: Path) -> Path:
    """Registry plus one file: ch_good loads; ch_bad has an unreadable amount (error); ch_future is dated a month
    ahead (warning); ch_wrong has a zero amount (error); ch_new's creator is not onboarded (held)."""
    make_files(settings, regions=["EG"], rows=50)
    path = write(
        folder,
        "eg-dirty.csv",
        [
            line("ch_good", "2026-10-05 09:00:00"),
            line("ch_bad", "2026-10-05 10:00:00", amount="25O,00"),
            line("ch_future", future_time()),
            line("ch_wrong", "2026-10-06 11:00:00", amount="0,00"),
            line("ch_new", "2026-10-06 12:00:00", creator="EG-C0777"),
        ],
    )
    (result,) = ingest_files(settings, "EG", [path]).files
    assert (result.loaded, result.quarantined) == (1, 4), result
    return path


MPESA_HEADER = (
    "MPESA BUSINESS STATEMENT\nCustomer Name: KANDA LTD,Till 123456\n"
    "Receipt No,Completion Time,Details,Transaction Status,Paid In,Withdrawn,Balance\n"
)


def mpesa_line(receipt: str, when: str, paid_in: str, *, name: str = "JANE WANJIKU", ref: str = "KE-C0001.KE-P00001"):
    return f'{receipt},{when},Pay Bill Online from 0712345678 - {name} Acc. {ref},Completed,"{paid_in}",,"{paid_in}"'


def ingest_dirty_kenya(settings: Settings, folder: Path) -> Path:
    """Registry plus one M-Pesa statement: SKE0000001 loads; SKE0000002 pays `12,3O0.00` (a letter O);
    SKE0000003 pays `1,500.00` with a zero-width space in it; SKE0000004's time is unreadable."""
    make_files(settings, regions=["KE"], rows=50)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ke-dirty.csv"
    lines = [
        mpesa_line("SKE0000001", "2026-10-05 09:00:00", "1,000.00"),
        mpesa_line("SKE0000002", "2026-10-05 21:30:00", "12,3O0.00", name="PETER KAMAU"),
        mpesa_line("SKE0000003", "2026-10-05 22:00:00", "1,500\u200b.00", name="MERCY ACHIENG"),
        mpesa_line("SKE0000004", "2026-10-05 25:61:00", "2,000.00", name="JOHN OTIENO"),
    ]
    path.write_text(MPESA_HEADER + "".join(x + "\n" for x in lines), encoding="utf-8")
    (result,) = ingest_files(settings, "KE", [path]).files
    assert (result.loaded, result.quarantined) == (1, 3), result
    return path
