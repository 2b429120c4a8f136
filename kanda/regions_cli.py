"""`kanda regions`: see the configured regions, draft a new one from a sample, dry-run a file, export the schema.

`check` is how an operator finishes a spec: it runs a file through the region's reader and the ingestion
boundary's contract (`quality.boundary`) exactly as ingestion would, and shows each contract field's source and
first values, what failed to parse per column, and which rows would be loaded, quarantined (with the rules),
held or ignored. It opens no store and writes nothing: not even the installation's buyer salt is created (a
throwaway salt is used when there is none yet), so running it on a fresh machine leaves the data folder as it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kanda.cli_support import console, err, fail, usage_error

regions_app = typer.Typer(help="Regions: list them, draft one from a sample, dry-run a file, spec schema.")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _home() -> Path:
    """KANDA_HOME as `load_settings` reads it, without `load_settings` (which creates the buyer salt)."""
    return Path(os.environ.get("KANDA_HOME", ".kanda")).expanduser().resolve()


def _load_regions() -> dict:
    from regions import all_regions
    from regions.spec import SpecError

    try:
        return all_regions()
    except SpecError as exc:
        fail(f"a region file does not validate: {exc}")


@regions_app.command("list")
def list_regions(as_json: JsonOpt = False) -> None:
    """Every region: code, country, currency and its ISO 4217 exponent, zone, rail (and whether its files state the
    rail's fees), landing folder, store size."""
    from regions.rails import states_fees

    home = _home()
    rows = []
    for region in _load_regions().values():
        store = home / "stores" / f"{region.code.lower()}.duckdb"
        rows.append(
            {
                "code": region.code,
                "country": region.name,
                "currency": region.currency,
                "exponent": region.exponent,
                "zone": region.zone,
                "rail": region.source_format,
                "spec": "inline" if region.rail_spec is not None else _rail_kind(region.source_format),
                "fees_stated": states_fees(region),
                "landing": str(region.landing_folder(home / "landing")),
                "store_bytes": store.stat().st_size if store.exists() else None,
                "defined_in": region.origin,
            }
        )
    if as_json:
        console.print_json(json.dumps(rows))
        _report_broken()
        return
    table = Table("code", "country", "currency", "exp", "zone", "rail", "fees", "landing", "store")
    for r in rows:
        size = "-" if r["store_bytes"] is None else f"{r['store_bytes'] / 1e6:,.1f} MB"
        rail = r["rail"] + (f" ({r['spec']})" if r["spec"] != "code" else "")
        fees = "stated" if r["fees_stated"] else "not stated"
        cells = (r["code"], r["country"], r["currency"], str(r["exponent"]), r["zone"], rail, fees, r["landing"], size)
        table.add_row(*cells)
    console.print(table)
    if any(not r["fees_stated"] for r in rows):
        console.print("fees not stated: the rail's files carry no fee, so fees are 0 and net is before its charges")
    _report_broken()


def _report_broken() -> None:
    """Region files that did not load: each named with its problem, and exit 1 (the others were listed)."""
    from regions import broken_regions

    broken = broken_regions()
    for path, reason in broken.items():
        err.print(f"not loaded: {path}: {reason}", markup=False, soft_wrap=True)
    if broken:
        raise typer.Exit(1)


def _rail_kind(name: str) -> str:
    from regions.rails import spec_rail_path

    return "spec" if spec_rail_path(name) is not None else "code"


@regions_app.command("new")
def new_region(
    code: Annotated[str, typer.Argument(help="Two-letter region code, e.g. RW.")],
    sample: Annotated[Path, typer.Option("--sample", exists=True, dir_okay=False, help="A sample file of the rail.")],
    out: Annotated[Path | None, typer.Option(help="Write the draft here (default: print it).")] = None,
    name: Annotated[str | None, typer.Option(help="Country name.")] = None,
    currency: Annotated[str | None, typer.Option(help="ISO 4217 currency code.")] = None,
    zone: Annotated[str | None, typer.Option(help="IANA time zone of the region's day.")] = None,
    calling_code: Annotated[str | None, typer.Option(help="Telephone country code, e.g. 250.")] = None,
) -> None:
    """Draft a region file with its rail spec from a sample, for a person to finish (TODOs mark guesses)."""
    from regions.spec.draft import draft_region

    if len(code) != 2 or not code.isalpha():
        usage_error(f"a region code is two letters, not {code!r}", "CODE")
    text = draft_region(code, sample, name=name, currency=currency, zone=zone, calling_code=calling_code)
    if out is None:
        typer.echo(text, nl=False)
        return
    if out.exists():
        fail(f"{out} exists; not overwritten")
    out.write_text(text)
    err.print(f"Draft written to {out}. Finish the TODOs, put it in KANDA_REGIONS_DIR, then `kanda regions check`.")


@regions_app.command("schema")
def schema() -> None:
    """The rail spec's JSON Schema, for editors: `kanda regions schema > rail-spec.schema.json`."""
    from regions.spec import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


@regions_app.command("check")
def check(
    code: Annotated[str, typer.Argument(help="Region code.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A file as it would land.")],
    rows: Annotated[int, typer.Option(min=0, help="How many rows to list one by one.")] = 30,
    as_json: JsonOpt = False,
) -> None:
    """Dry run: what ingesting FILE into region CODE would do, row by row. Writes nothing, opens no store."""
    from regions import unavailable_regions

    regions = _load_regions()
    if code.upper() in unavailable_regions():
        fail(unavailable_regions()[code.upper()])
    if code.upper() not in regions:
        usage_error(f"unknown region {code}; known: {', '.join(regions)}", "CODE")
    result = dry_run(regions[code.upper()], file, shown=rows)
    if as_json:
        typer.echo(json.dumps(result, default=str, indent=2))
        raise typer.Exit(1 if result["rejected"] else 0)
    _print_check(result)
    raise typer.Exit(1 if result["rejected"] else 0)


# ------------------------------------------------------------------------------------------------------- dry run
def dry_run(region: Any, path: Path, *, shown: int = 30) -> dict:
    """Reader + contract + holds over one file, in memory. The answer says what ingestion would do and why."""
    import polars as pl

    from quality.boundary import (
        REPEATED_COLUMNS,
        canonicalise,
        differing_repeats,
        hold_unknown_creators,
        recorded_column,
        split_by_contract,
    )
    from regions.rails import FileRejected, ReadContext, get_adapter
    from regions.rails.base import DEFAULT_BATCH_ROWS
    from regions.spec.engine import SpecAdapter

    home = _home()
    salt = os.environ.get("KANDA_BUYER_SALT") or (
        (home / "buyer_salt").read_text().strip() if (home / "buyer_salt").exists() else "kanda-dry-run"
    )
    adapter = get_adapter(region.source_format)
    ctx = ReadContext(region=region, salt=salt, batch_rows=int(os.environ.get("KANDA_BATCH_ROWS", DEFAULT_BATCH_ROWS)))
    result: dict = {"region": region.code, "file": str(path), "rail": region.source_format, "rejected": None}
    if isinstance(adapter, SpecAdapter):
        try:
            result["fields"] = _field_sources(adapter, path, ctx)
        except FileRejected as exc:
            result["rejected"] = exc.reason
            return result
    known = _known_creators(home / "registry" / "creators.csv", region.code)
    frames, quarantine, held, ignored = [], [], [], 0
    try:
        for chunk in adapter.read(path, ctx):
            ignored += chunk.ignored
            frame = canonicalise(
                chunk.frame, region, source=region.source_format, source_file=path.name, batch_id="dry-run"
            )
            split = split_by_contract(frame)
            valid = split.valid
            if known is not None:
                holds = hold_unknown_creators(valid, known)
                valid, held_rows = holds.valid, holds.quarantine
                held.append(held_rows)
            frames.append(valid.drop("raw_record"))
            quarantine.append(split.quarantine)
    except FileRejected as exc:
        result["rejected"] = exc.reason
        return result
    valid = pl.concat(frames) if frames else pl.DataFrame()
    bad = pl.concat(quarantine) if quarantine else pl.DataFrame()
    holds = pl.concat(held) if held else bad.clear()
    # a bad record repeated in the file is quarantined once, as ingestion does (`StagedBatch._load_quarantine`)
    bad, bad_repeats = _first_of_each_record(bad)
    holds, held_repeats = _first_of_each_record(holds)
    repeat = valid.select(pl.col("event_id").is_duplicated() & ~pl.col("event_id").is_first_distinct()).to_series()
    # a repeat that states other money, or another creator or product, than the event's first delivery is
    # quarantined, as ingestion does (`quality.boundary.REPEATED_COLUMNS`)
    first = valid.select([pl.col(c).first().over("event_id").alias(recorded_column(c)) for c in REPEATED_COLUMNS])
    differs = pl.repeat(False, valid.height, eager=True)
    for column in REPEATED_COLUMNS:
        differs = differs | valid[column].ne_missing(first[recorded_column(column)])
    duplicate, differing = repeat & ~differs, repeat & differs
    differing_again = valid.clear()
    if differing.any():
        rows = pl.concat([valid, first], how="horizontal").filter(differing)
        # each record once, as ingestion keeps it: the same line again reads the same in every field but its number
        # (this run keeps no raw text of loadable rows, so two spellings of the same values count as one here)
        once = rows.select(pl.struct(pl.exclude("source_row")).is_first_distinct()).to_series()
        differing_again = rows.filter(~once).select(valid.columns)
        rows = rows.filter(once)
        bad = pl.concat([bad, differing_repeats(rows.with_columns(raw_record=pl.lit("{}")))], how="vertical_relaxed")
        valid, duplicate = valid.filter(~differing), duplicate.filter(~differing)
    outcomes = [
        valid.select(
            "source_row",
            pl.when(duplicate).then(pl.lit("duplicate")).otherwise(pl.lit("load")).alias("outcome"),
            pl.lit(None, pl.String).alias("why"),
        ),
        bad.select("source_row", pl.lit("quarantine").alias("outcome"), pl.col("reasons").alias("why")),
        holds.select("source_row", pl.lit("hold").alias("outcome"), pl.col("reasons").alias("why")),
        pl.concat(
            [pl.DataFrame(schema={"source_row": pl.Int64})]
            + [r.select("source_row") for r in (bad_repeats, held_repeats, differing_again) if r.width],
            how="vertical_relaxed",
        ).select("source_row", pl.lit("duplicate").alias("outcome"), pl.lit(None, pl.String).alias("why")),
    ]
    listing = pl.concat([o for o in outcomes if o.width], how="vertical_relaxed").sort("source_row")
    result["counts"] = {
        "load": int(valid.height - duplicate.sum()),
        "duplicate_in_file": int(duplicate.sum()) + bad_repeats.height + held_repeats.height + differing_again.height,
        "quarantine": bad.height,
        "hold": holds.height,
        "ignored": ignored,
    }
    result["registry"] = "no registry yet: unknown creators are not held" if known is None else "checked"
    result["rules"] = _rule_counts(bad)
    result["parse_failures"] = _parse_failures(bad)
    seen = set(listing["source_row"].to_list())
    last = max(seen, default=0)
    result["ignored_rows"] = [n for n in range(1, last + 1) if n not in seen][:shown]
    result["rows"] = listing.head(shown).to_dicts()
    for row in result["rows"]:
        if row["why"]:
            row["why"] = "; ".join(f"{r['rule']} ({r['column']}={r['value']!r})" for r in json.loads(row["why"]))
    return result


def _first_of_each_record(rows: Any) -> tuple[Any, Any]:
    """Quarantine rows split into the first of each record (its raw text and the event of its line) and the
    repeats, which ingestion counts as duplicates."""
    import polars as pl

    if rows.is_empty():
        return rows, rows
    record = pl.struct(
        pl.col("raw_record").cast(pl.String), pl.col("parsed").str.json_path_match("$.event_type").alias("event")
    )
    first = rows.select(record.is_first_distinct()).to_series()
    return rows.filter(first), rows.filter(~first)


def _known_creators(path: Path, region: str):
    import polars as pl

    if not path.exists():
        return None
    return pl.read_csv(path, infer_schema_length=0).filter(pl.col("region") == region)["creator_id"]


def _field_sources(adapter: Any, path: Path, ctx: Any) -> list[dict]:
    """Each contract field: the spec's source for it, the file's column behind it, its first parsed values."""
    from regions.spec.engine import columns_of

    spec = adapter.spec
    layout = adapter.layout(path, ctx)
    first = next(iter(adapter.read(path, ctx)), None)
    frame = first.frame if first is not None else None
    out = []
    for name, value in spec.fields:
        if value is None:
            continue
        source = value.model_dump(by_alias=True, exclude_none=True) if hasattr(value, "model_dump") else value
        if name == "buyer":
            columns_used = [layout.columns.get(c, f"{c} (absent)") for c in columns_of(value.of)]
        else:
            columns_used = [layout.columns.get(c, f"{c} (absent)") for c in columns_of(value)]
        contract = {
            "amount": "amount_minor",
            "fee": "fee_minor",
            "net": "net_minor",
            "reference": "creator_id",
            "buyer": "buyer_ref",
        }.get(name, name)
        shown = frame[contract].head(5).to_list() if frame is not None and contract in frame.columns else []
        out.append({"field": name, "source": source, "columns": columns_used, "first_values": shown})
    if spec.vocabulary is not None:
        out.append(
            {
                "field": "event_type/status",
                "source": "vocabulary",
                "columns": columns_of(spec.vocabulary.of),
                "first_values": list(zip(frame["event_type"].head(5), frame["status"].head(5), strict=True))
                if frame is not None
                else [],
            }
        )
    return out


def _rule_counts(bad: Any) -> list[dict]:
    import polars as pl

    if bad.is_empty():
        return []
    reasons = bad.select(
        pl.col("reasons").str.json_decode(
            pl.List(pl.Struct({"rule": pl.String, "column": pl.String, "value": pl.String}))
        )
    ).explode("reasons")
    flat = reasons.unnest("reasons")
    return flat.group_by("rule", "column").agg(pl.len().alias("rows")).sort("rows", descending=True).to_dicts()


def _parse_failures(bad: Any) -> list[dict]:
    """Per column: rows whose value could not be read (null after parsing), with a few raw values."""
    import polars as pl

    if bad.is_empty():
        return []
    schema = pl.List(pl.Struct({"rule": pl.String, "column": pl.String, "value": pl.String}))
    flat = bad.select("source_row", "raw_record", pl.col("reasons").str.json_decode(schema)).explode("reasons")
    flat = flat.unnest("reasons").filter(pl.col("rule") == "missing_or_unreadable")
    return (
        flat.group_by("column")
        .agg(pl.len().alias("rows"), pl.col("source_row").head(5).alias("example_rows"))
        .sort("rows", descending=True)
        .to_dicts()
    )


def _print_check(result: dict) -> None:
    console.print(f"[bold]{result['file']}[/] as region {result['region']} (rail {result['rail']}) — dry run")
    if result.get("fields"):
        table = Table("field", "source", "file column(s)", "first parsed values")
        for f in result["fields"]:
            table.add_row(
                f["field"],
                json.dumps(f["source"]),
                ", ".join(f["columns"]),
                ", ".join(map(str, f["first_values"]))[:80],
            )
        console.print(table)
    if result["rejected"]:
        console.print(f"[red]The whole file would be rejected:[/] {result['rejected']}")
        return
    c = result["counts"]
    console.print(
        f"load {c['load']:,}  quarantine {c['quarantine']:,}  hold {c['hold']:,}  ignored {c['ignored']:,}"
        f"  duplicate in file {c['duplicate_in_file']:,}  ({result['registry']})"
    )
    if result["parse_failures"]:
        table = Table("column", "unreadable rows", "e.g. rows")
        for p in result["parse_failures"]:
            table.add_row(str(p["column"]), str(p["rows"]), ", ".join(map(str, p["example_rows"])))
        console.print(table)
    if result["rules"]:
        table = Table("rule", "column", "rows")
        for r in result["rules"]:
            table.add_row(r["rule"], str(r["column"]), str(r["rows"]))
        console.print(table)
    table = Table("row", "outcome", "why")
    for r in result["rows"]:
        table.add_row(str(r["source_row"]), r["outcome"], r["why"] or "")
    console.print(table)
    if result["ignored_rows"]:
        console.print(f"ignored record numbers: {', '.join(map(str, result['ignored_rows']))}")
