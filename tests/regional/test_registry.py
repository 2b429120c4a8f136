"""The shared creator and product registry: one region's broken record never stops another region's ingest, and a
broken record of the region being ingested is an error naming the file, the line and the cause (docs/reliability.md,
"One region never stops another")."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl
import pytest

from kanda import flow
from kanda.regional.ingest import RegistryError, ingest_landing, sync_registry
from kanda.regional.store import open_store
from kanda.settings import Settings
from regions import get_region
from tests.support.files import make_files

#: The line from the defect report: a stray quote and two fields too many, in an NG creator record.
BROKEN_NG_CREATOR = 'NG-C0099,NG,Bad "Name,x@y.z,en,en_NG,NGN,extra,extra2'


@pytest.fixture
def two_regions(settings: Settings) -> Settings:
    make_files(settings, regions=["KE", "NG"], rows=60)
    return settings


def append(path: Path, *lines: str | bytes) -> int:
    """Append lines to a registry file; the 1-based line number of the first one."""
    before = path.read_bytes()
    first = before.count(b"\n") + 1
    text = b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)
    path.write_bytes(before + text)
    return first


def registry(settings: Settings, table: str, code: str) -> pl.DataFrame:
    """The region's rows of a registry file as the store should hold them (read whole by polars, as before)."""
    rows = pl.read_csv(settings.registry_dir / f"{table}.csv", infer_schema_length=0).filter(pl.col("region") == code)
    if table == "products":
        rows = rows.with_columns(pl.col("price_minor").cast(pl.Int64))
    return rows


def stored(settings: Settings, table: str, code: str) -> pl.DataFrame:
    with open_store(settings, code, read_only=True) as con:
        return con.sql(f"SELECT * FROM {table}").pl()


def synced(settings: Settings, code: str) -> None:
    with open_store(settings, code) as con:
        sync_registry(con, settings, get_region(code))


def key(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns[0])


def test_a_clean_registry_is_copied_as_polars_reads_it(two_regions: Settings):
    """Quoted fields, a line break inside a name, an empty field (null) and an empty quoted field: as before."""
    settings = two_regions
    creators = settings.registry_dir / "creators.csv"
    append(creators, 'KE-C0901,KE,"Wanjiru, ""Shiro""",w@x.example,sw,sw_KE,KES', 'KE-C0902,KE,"Two\nLines",,"",,KES')
    synced(settings, "KE")
    for table in ("creators", "products"):
        assert key(stored(settings, table, "KE")).equals(key(registry(settings, table, "KE")), null_equal=True)
    names = dict(stored(settings, "creators", "KE").select("creator_id", "name").iter_rows())
    assert names["KE-C0901"] == 'Wanjiru, "Shiro"' and names["KE-C0902"] == "Two\nLines"


def test_another_regions_broken_creator_does_not_stop_this_region(
    two_regions: Settings, caplog: pytest.LogCaptureFixture
):
    settings = two_regions
    creators = settings.registry_dir / "creators.csv"
    expected = registry(settings, "creators", "KE")
    line = append(creators, BROKEN_NG_CREATOR)
    with caplog.at_level(logging.WARNING, logger="kanda.regional.ingest"):
        (result,) = ingest_landing(settings, "KE").files
    assert result.status == "loaded" and result.loaded > 0
    assert key(stored(settings, "creators", "KE")).equals(key(expected))
    assert f"{creators} line {line} skipped" in caplog.text and "9 fields where the header has 7" in caplog.text


def test_this_regions_broken_creator_is_named_by_file_line_and_cause(two_regions: Settings):
    settings = two_regions
    creators = settings.registry_dir / "creators.csv"
    synced(settings, "NG")
    before = stored(settings, "creators", "NG")
    line = append(creators, BROKEN_NG_CREATOR)
    with pytest.raises(RegistryError) as caught:
        ingest_landing(settings, "NG")
    message = str(caught.value)
    assert str(creators) in message and f"line {line}: 9 fields where the header has 7" in message
    assert message.startswith("NG: ") and "\n" not in message
    assert stored(settings, "creators", "NG").equals(before)  # the store is as it was
    assert list(settings.landing("NG").glob("*.ndjson"))  # its file still waits in the landing folder


def test_a_bad_price_of_this_region_is_named_and_other_regions_go_on(two_regions: Settings):
    settings = two_regions
    products = settings.registry_dir / "products.csv"
    line = append(products, "NG-P09999,NG-C0001,NG,Broken price,12.5x,NGN")
    with pytest.raises(RegistryError, match=rf"products\.csv: .*line {line}: price_minor '12\.5x' is not a whole"):
        ingest_landing(settings, "NG")
    (result,) = ingest_landing(settings, "KE").files
    assert result.status == "loaded"


def test_a_product_or_creator_recorded_twice_is_named_not_counted_twice(two_regions: Settings):
    """A second record of a product (a new price appended instead of edited) listed each of its sales twice in the
    creator's report, so the attached lines no longer added up to the net the message stated; a second record of a
    creator sent two reports. Each is named with its lines, and the other regions go on."""
    settings = two_regions
    products = settings.registry_dir / "products.csv"
    original = next(line for line in products.read_text().splitlines() if line.startswith("NG-P"))
    product_id = original.split(",")[0]
    first = 1 + products.read_text().splitlines().index(original)
    line = append(products, original.replace(original.split(",")[3], "New title", 1))
    with pytest.raises(RegistryError, match=rf"products\.csv: .*product_id {product_id} is on lines {first}, {line}"):
        ingest_landing(settings, "NG")
    (result,) = ingest_landing(settings, "KE").files
    assert result.status == "loaded"

    products.write_text("".join(f"{text}\n" for text in products.read_text().splitlines()[:-1]))
    creators = settings.registry_dir / "creators.csv"
    original = next(line for line in creators.read_text().splitlines() if line.startswith("NG-C"))
    line = append(creators, original.replace("@", "+second@", 1))
    with pytest.raises(RegistryError, match=rf"creator_id {original.split(',')[0]} is on lines \d+, {line}"):
        ingest_landing(settings, "NG")


def test_reports_refuse_a_store_that_holds_a_creator_twice(two_regions: Settings):
    """A store synced before the registry check may still hold a repeated record: its region's reports fail naming
    it, instead of sending two reports or listing each sale twice."""
    import datetime as dt

    from kanda.reports.data import build_reports

    settings = two_regions
    ingest_landing(settings, "NG")
    with open_store(settings, "NG") as con:
        con.execute("INSERT INTO products SELECT * FROM products WHERE region = 'NG' LIMIT 1")
        (product_id,) = con.execute("SELECT product_id FROM products GROUP BY 1 HAVING count(*) > 1").fetchone()
        with pytest.raises(ValueError, match=rf"NG: the store's creator registry has product {product_id} more"):
            build_reports(con, get_region("NG"), dt.date(2026, 10, 5))


def test_an_unclosed_quote_in_another_region_does_not_swallow_the_records_after_it(two_regions: Settings):
    settings = two_regions
    creators = settings.registry_dir / "creators.csv"
    text = creators.read_text()
    header, first_ke = text.splitlines()[0], next(r for r in text.splitlines() if r.startswith("KE-"))
    expected = registry(settings, "creators", "KE")
    # the broken NG record first, then every KE record: a reader that followed the quote would lose them all
    others = [r for r in text.splitlines()[1:] if not r.startswith("KE-")]
    ke = [r for r in text.splitlines()[1:] if r.startswith("KE-")]
    creators.write_text("\n".join([header, *others, 'NG-C0098,NG,"Unclosed,x@y.z,en,en_NG,NGN', *ke]) + "\n")
    synced(settings, "KE")
    assert first_ke.split(",")[0] in stored(settings, "creators", "KE")["creator_id"].to_list()
    assert key(stored(settings, "creators", "KE")).equals(key(expected))
    with pytest.raises(RegistryError, match=r"line \d+: broken quoting"):
        synced(settings, "NG")


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"garbage without commas", id="cannot be attributed"),
        pytest.param(b"NG-C0097,NG,Ad\xe9,x@y.z,en,en_NG,NGN", id="not UTF-8, another region"),
        pytest.param(b'NG-C0096,NG,"Bad"quote,x@y.z,en,en_NG,NGN', id="text after a closing quote"),
        pytest.param(b"NG-C0095,NG,Short", id="too few fields"),
    ],
)
def test_lines_that_are_not_this_regions_are_skipped(two_regions: Settings, line: bytes):
    settings = two_regions
    expected = registry(settings, "creators", "KE")
    append(settings.registry_dir / "creators.csv", line)
    synced(settings, "KE")
    assert key(stored(settings, "creators", "KE")).equals(key(expected))


@pytest.mark.parametrize(
    ("line", "cause"),
    [
        (b"KE-C0097,KE,Ad\xe9,x@y.z,en,sw_KE,KES", "not UTF-8 text"),
        (b'KE-C0096,KE,"Bad"quote,x@y.z,en,sw_KE,KES', "broken quoting"),
        (b"KE-C0095,KE,Short", "3 fields where the header has 7"),
        (b"KE-C0094,,Region missing,x@y.z,en,sw_KE,KES,extra", "8 fields"),  # told by its creator id
    ],
)
def test_this_regions_unreadable_lines_are_errors(two_regions: Settings, line: bytes, cause: str):
    settings = two_regions
    number = append(settings.registry_dir / "creators.csv", line)
    with pytest.raises(RegistryError, match=rf"line {number}: {cause}"):
        synced(settings, "KE")


def test_a_header_without_a_column_the_store_needs_is_named(two_regions: Settings):
    settings = two_regions
    creators = settings.registry_dir / "creators.csv"
    frame = pl.read_csv(creators, infer_schema_length=0)
    frame.drop("currency").write_csv(creators)
    with pytest.raises(RegistryError, match=r"creators\.csv: the header \(line 1\) lacks column\(s\) currency"):
        synced(settings, "KE")


def test_run_regions_names_the_broken_region_and_ingests_the_healthy_one(two_regions: Settings):
    settings = two_regions
    append(settings.registry_dir / "creators.csv", BROKEN_NG_CREATOR)
    ke, ng = flow.run_regions(settings, ["KE", "NG"], steps=("ingest",))
    assert not ke.failed and ke.ingest is not None and ke.ingest.files[0].status == "loaded"
    assert ng.failed and ng.error is not None
    assert ng.error.startswith("RegistryError: NG: registry file") and "9 fields" in ng.error
