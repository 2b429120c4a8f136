"""A webhook log is written by a receiver one delivery per line, so one line the rail never meant says nothing about
the others: an object the rail reads that arrives as another kind of value (`"data": [...]`, `"meta": ""`), or a
line that is no JSON object at all, is read around, never a reason to refuse the whole log."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import polars as pl
import pytest

from kanda.settings import Settings
from regions import all_regions, get_region
from regions.rails import get_adapter
from regions.rails.base import ADAPTER_SCHEMA, ReadContext
from regions.spec.engine import _json_schema, json_paths
from tests.support.builders import paystack_event
from tests.support.files import ingest_written
from tests.support.roundtrip import SALT

RAILS = Path(__file__).parents[2] / "regions" / "rails"
#: Lines a receiver's log holds besides deliveries: an error page's status line, a bare string, an array, two
#: documents run together by a crash and a resumed write, a NaN that Python's json module writes for a float.
NOT_OBJECTS = [
    "HTTP/1.1 502 Bad Gateway",
    '"ping"',
    "[1, 2]",
    '{"id": "a"}{"id": "b"}',
    '{"amount": NaN}',
    '{"event": "charge.success", "data": {',
]


def ndjson_rails() -> dict[str, str]:
    """Each JSON-lines rail once, with a region that reads it."""
    rails: dict[str, str] = {}
    for code, region in sorted(all_regions().items()):
        spec = getattr(get_adapter(region.source_format), "spec", None)
        if spec is not None and spec.format == "ndjson":
            rails.setdefault(region.source_format, code)
    return rails


def read(rail: str, code: str, path: Path, batch_rows: int = 500) -> tuple[list[pl.DataFrame], int]:
    context = ReadContext(region=get_region(code), salt=SALT, batch_rows=batch_rows)
    chunks = list(get_adapter(rail).read(path, context))
    return [c.frame for c in chunks], sum(c.ignored for c in chunks)


def fields(frames: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat([f.select(list(ADAPTER_SCHEMA)) for f in frames]).sort("source_row", maintain_order=True)


@pytest.mark.parametrize(("rail", "code"), sorted(ndjson_rails().items()))
def test_a_line_the_rail_never_meant_is_read_around_and_the_rest_reads_as_before(
    rail: str, code: str, tmp_path: Path
) -> None:
    folder = next(
        p.parent for p in RAILS.glob("*/spec.yaml") if p.parent.name == rail or f"name: {rail}\n" in p.read_text()
    )
    (sample,) = sorted((folder / "samples").glob("*.*json*"))
    records = [line for line in sample.read_text().splitlines() if line.strip()]
    first = json.loads(records[0])
    schema = _json_schema(json_paths(get_adapter(rail).spec))
    parents = [name for name, dtype in schema.items() if isinstance(dtype, pl.Struct) and name in first]
    reshaped = []
    for name in parents:
        for other in ([], "", 0):
            document = copy.deepcopy(first)
            document[name] = other
            reshaped.append(json.dumps(document))
    (tmp_path / "clean.ndjson").write_text("\n".join(records) + "\n")
    (tmp_path / "dirty.ndjson").write_text("\n".join([*records, *reshaped, *NOT_OBJECTS, records[0]]) + "\n")

    clean, clean_ignored = read(rail, code, tmp_path / "clean.ndjson")
    dirty, dirty_ignored = read(rail, code, tmp_path / "dirty.ndjson")
    read_as_before = fields(dirty).filter(pl.col("source_row") <= len(records))
    assert read_as_before.equals(fields(clean))

    # every reshaped delivery is accounted for: a row (quarantined or a duplicate at ingest) or ignored
    reshaped_rows = set(range(len(records) + 1, len(records) + len(reshaped) + 1))
    mapped = set(fields(dirty)["source_row"].to_list()) & reshaped_rows
    assert len(mapped) + dirty_ignored - clean_ignored == len(reshaped), (mapped, dirty_ignored, clean_ignored)

    # each line that is no object is one row that reads nothing, its number, fault and text kept as its record
    start = len(records) + len(reshaped) + 1
    lines = [f for f in dirty if f.schema["raw_record"] != clean[0].schema["raw_record"]]
    unreadable = pl.concat(lines).sort("source_row")
    assert unreadable["source_row"].to_list() == list(range(start, start + len(NOT_OBJECTS)))
    assert unreadable.select(pl.exclude("source_row", "raw_record").is_null().all()).row(0) == (True,) * (
        len(ADAPTER_SCHEMA) - 1
    )
    raw = unreadable["raw_record"].to_list()
    assert [r["text"] for r in raw] == NOT_OBJECTS
    assert [r["line"] for r in raw] == unreadable["source_row"].to_list()  # the file has no blank lines
    assert all(r["problem"].startswith(f"line {r['line']} is ") for r in raw)
    assert "NaN" in raw[4]["problem"] and "an array" in raw[2]["problem"]
    # the delivery after them reads as the first did
    last = fields(dirty).filter(pl.col("source_row") == start + len(NOT_OBJECTS)).drop("source_row")
    assert last.equals(fields(clean).filter(pl.col("source_row") == 1).drop("source_row"))


def test_paystacks_expiring_cards_event_is_ignored_and_a_broken_line_quarantined_with_its_text(
    settings: Settings,
) -> None:
    """Paystack sends `subscription.expiring_cards` with `"data": [...]` (a list of cards, PaystackOSS's
    doc-code-snippets): that one event made every sale of the day's log refused. A line cut off by a receiver's
    crash and written on after it is quarantined with its line number and text, for a steward to reject."""
    from kanda.regional.store import open_store

    expiring = {
        "event": "subscription.expiring_cards",
        "data": [{"expiry_date": "12/2021", "description": "visa ending with 4081", "brand": "visa"}],
    }
    content = "".join(
        [
            json.dumps(paystack_event(1)) + "\n",
            json.dumps(expiring) + "\n",
            '{"event": "charge.success", "data": {"id": 40\n',
            json.dumps(paystack_event(2)) + "\n",
        ]
    )
    report = ingest_written(settings, "NG", settings.home / "webhooks.ndjson", content)
    assert (report.status, report.loaded, report.quarantined, report.ignored) == ("loaded", 2, 1, 1), report
    with open_store(settings, "NG", read_only=True) as con:
        ((source_row, raw),) = con.execute("SELECT source_row, raw_record FROM quarantine").fetchall()
    assert source_row == 3
    assert json.loads(raw) == {
        "line": 3,
        "problem": "line 3 is not valid JSON (an error message, a line cut off, or two documents run together)",
        "text": '{"event": "charge.success", "data": {"id": 40',
    }


@pytest.mark.parametrize("batch_rows", [500, 20_000])  # the line longer than a block read, or inside one
def test_a_line_longer_than_any_delivery_is_quarantined_unread_and_the_rest_reads(tmp_path: Path, batch_rows: int):
    """A 100 MB line took the process to 3 GB and failed the ingest (a 1 GB one to 22 GB, and the kernel killed
    it), every rerun the same, the region's other files never loaded. A line longer than `MAX_LINE_BYTES` is read
    past and quarantined with its start."""
    from regions.parsing import MAX_LINE_BYTES

    first, second = json.dumps(paystack_event(1)), json.dumps(paystack_event(2))
    huge = '{"event": "charge.success", "data": {"note": "' + "x" * (MAX_LINE_BYTES + 10) + '"}}'
    (tmp_path / "log.ndjson").write_text("\n".join([first, huge, second]) + "\n")
    frames, _ = read("paystack_webhook", "NG", tmp_path / "log.ndjson", batch_rows)
    read_rows = fields([f for f in frames if "line" not in f.schema["raw_record"].to_schema()])
    assert read_rows["transaction_id"].to_list() == ["ps_000001", "ps_000002"]
    (unread,) = [f for f in frames if "line" in f.schema["raw_record"].to_schema()]
    record = unread["raw_record"][0]
    assert record["line"] == 2 and "longer than any delivery" in record["problem"]
    assert record["text"].startswith('{"event": "charge.success"') and record["text"].endswith("bytes in all)")
    assert len(record["text"]) < 3_000
