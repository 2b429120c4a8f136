"""Store-level checks shared by `kanda verify` and the Dagster asset checks.

Each returns a `CheckResult`: whether it passed, a sentence a person can act on, and numbers for the record.
They read a store through a connection the caller opened (under the region lock), never open one themselves.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from kanda.checks import money_terms, payment_figures, row_counts, usd_figures
from kanda.checks.differences import key_text, rows_differ
from kanda.regional import ledger
from kanda.regional.ingest import DOLLAR_RECORD_SQL
from kanda.regional.models import published_fingerprint
from kanda.regional.store import registered
from regions import RegionConfig
from warehouse_models import published

#: Rollups with money columns: their net and orders must equal the loaded events.
MONEY_TABLES = ("creator_daily", "product_daily", "region_daily")
#: What reconciliation sums per rollup besides its row count: money where the table has it, else its counts.
RECONCILED: dict[str, tuple[str, str]] = {name: ("net_minor", "net_usd_minor") for name in MONEY_TABLES} | {
    "channel_daily": ("payments", "failed_payments")
}
#: Rollups counting payments (sale transactions) by the day they were first seen.
PAYMENT_TABLES = ("region_daily", "channel_daily")


@dataclass
class CheckResult:
    name: str
    passed: bool
    message: str
    severity: str = "error"  # error | warn
    metadata: dict = field(default_factory=dict)


def ledger_chain(con: duckdb.DuckDBPyConnection, region: RegionConfig) -> CheckResult:
    problems = ledger.verify_chain(con)
    batches = con.execute("SELECT count(*) FROM ledger").fetchall()[0][0]
    if problems:
        return CheckResult(
            "ledger_chain", False, f"{region.code}: " + "; ".join(problems[:5]), metadata={"batches": batches}
        )
    return CheckResult(
        "ledger_chain", True, f"{region.code}: {batches} batches, chain intact", metadata={"batches": batches}
    )


def ledger_money(con: duckdb.DuckDBPyConnection, region: RegionConfig) -> CheckResult:
    """Each batch's events still hold the money the ledger recorded for them (`kanda.regional.ledger.BatchMoney`):
    when they loaded, or as a store upgrade restated it.

    Rollups are compared with the events (`rollups_match_events`) only until the models are rebuilt from the edited
    events; the ledger's money, hashed into the chain that publications anchor, keeps saying what was loaded. A
    batch whose money the ledger never recorded (loaded before it did, by a store not yet opened since) is counted
    as not checked."""
    recorded = ledger.recorded_money(con)
    held = ledger.batch_money(con)
    names = {
        b: file_name or kind
        for b, file_name, kind in con.execute("SELECT batch_id, file_name, kind FROM ledger").fetchall()
    }
    differ = []
    for batch_id, (seq, line) in sorted(recorded.items(), key=lambda item: item[1][0]):
        now = held.get(batch_id) or ledger.BatchMoney.empty(batch_id)
        if now != line:
            where = f"batch {batch_id} ({names.get(batch_id, 'not in the ledger')}, money recorded by ledger row {seq})"
            differ.append(f"{where}: {_money_change(line, now)}")
    (unchecked,) = con.execute(
        "SELECT count(*) FROM ledger WHERE kind <> 'upgrade' AND batch_id NOT IN (SELECT batch_id FROM batch_money)"
    ).fetchall()[0]
    meta = {"batches": len(recorded), "differ": len(differ), "unchecked": unchecked}
    if differ:
        headline = (
            f"{region.code}: the events of {len(differ)} batch(es) no longer hold the money the ledger recorded for"
            " them: "
        )
        return CheckResult(
            "ledger_money",
            False,
            rows_differ(headline, differ[:SHOWN], len(differ))
            + ". An event was changed in place after it loaded (kanda does not:"
            " a steward's fix is a batch of its own, and a store upgrade records in the ledger what it changes), so"
            " the rollups built since, and what was published from them, carry the edit; rebuilding them does not"
            " clear this. Compare the batch's events with its file in the region's processed/ folder, and restore"
            " the store from a backup taken before the change",
            metadata=meta,
        )
    text = f"{region.code}: the events of all {len(recorded)} batch(es) hold the money the ledger recorded"
    if unchecked:
        text += f"; {unchecked} batch(es) loaded before the ledger recorded money are not checked"
    return CheckResult("ledger_money", True, text, metadata=meta)


def _money_change(recorded: ledger.BatchMoney, held: ledger.BatchMoney) -> str:
    """What differs between a batch's recorded money and its events', in words."""
    figures = ("events", "amount_minor", "fee_minor", "net_minor")
    changed = [
        f"{name} {getattr(recorded, name):,} in the ledger, {getattr(held, name):,} in sale_events"
        for name in figures
        if getattr(recorded, name) != getattr(held, name)
    ]
    if changed:
        return ", ".join(changed)
    return (
        "the same events and totals, but money moved between days, creators, products, event types or statuses,"
        " or between its events"
    )


def batch_conservation(con: duckdb.DuckDBPyConnection, region: RegionConfig) -> CheckResult:
    """Every batch balances, and the store holds exactly what the ledger says was loaded and quarantined."""
    totals = con.execute(
        "SELECT coalesce(sum(rows_in), 0), coalesce(sum(loaded), 0), coalesce(sum(quarantined), 0),"
        " coalesce(sum(duplicates), 0), count(*) FILTER (WHERE rows_in <> loaded + quarantined + duplicates)"
        " FROM ledger"
    ).fetchall()[0]
    rows_in, loaded, quarantined, duplicates, unbalanced = totals
    events = con.execute("SELECT count(*), count(DISTINCT event_id) FROM sale_events").fetchall()[0]
    quarantine_rows = con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0]
    meta = {
        "rows_in": rows_in,
        "loaded": loaded,
        "quarantined": quarantined,
        "duplicates": duplicates,
        "events_in_store": events[0],
        "quarantine_rows_in_store": quarantine_rows,
    }
    problems = []
    if unbalanced:
        problems.append(f"{unbalanced} ledger batch(es) do not balance")
    if events[0] != loaded:
        problems.append(f"store holds {events[0]} events but the ledger loaded {loaded}")
    if events[0] != events[1]:
        problems.append(f"{events[0] - events[1]} events are stored twice")
    if quarantine_rows != quarantined:
        problems.append(f"store holds {quarantine_rows} quarantine rows but the ledger quarantined {quarantined}")
    if problems:
        return CheckResult("batch_conservation", False, f"{region.code}: " + "; ".join(problems), metadata=meta)
    return CheckResult(
        "batch_conservation",
        True,
        f"{region.code}: {rows_in} rows in = {loaded} loaded + {quarantined} quarantined + {duplicates} duplicates",
        metadata=meta,
    )


def quarantine_rate(
    con: duckdb.DuckDBPyConnection, region: RegionConfig, since: dt.datetime | None = None
) -> CheckResult:
    """Share of input rows quarantined (held rows included), against the region's warn and error thresholds.

    Over the store's whole history (`kanda verify`), or over the files loaded `since` a moment (a Dagster run's
    start): a file half of whose rows are quarantined is news for the run that loaded it, and a long history
    would dilute it below any threshold. The lifetime rate is kept beside it."""
    lifetime_in, lifetime_quarantined = con.execute(
        "SELECT coalesce(sum(rows_in), 0), coalesce(sum(quarantined), 0) FROM ledger WHERE kind = 'file'"
    ).fetchall()[0]
    lifetime = lifetime_quarantined / lifetime_in if lifetime_in else 0.0
    rows_in, quarantined = lifetime_in, lifetime_quarantined
    if since is not None:
        rows_in, quarantined = con.execute(
            "SELECT coalesce(sum(rows_in), 0), coalesce(sum(quarantined), 0) FROM ledger"
            " WHERE kind = 'file' AND finished_at >= ?",
            [since],
        ).fetchall()[0]
    rate = quarantined / rows_in if rows_in else 0.0
    meta = {
        "rate": round(rate, 6),
        "lifetime_rate": round(lifetime, 6),
        "warn": region.quarantine_warn,
        "error": region.quarantine_error,
    }
    thresholds = f"(warn at {region.quarantine_warn:.0%}, error at {region.quarantine_error:.0%})"
    if since is None:
        text = f"{region.code}: {rate:.2%} of rows quarantined {thresholds}"
    elif rows_in:
        text = f"{region.code}: {rate:.2%} of this run's rows quarantined {thresholds}; {lifetime:.2%} of all rows"
    else:
        text = f"{region.code}: no file loaded in this run; {lifetime:.2%} of all rows quarantined"
    if rate >= region.quarantine_error:
        return CheckResult("quarantine_rate", False, text, "error", meta)
    if rate >= region.quarantine_warn:
        return CheckResult("quarantine_rate", False, text, "warn", meta)
    return CheckResult("quarantine_rate", True, text, "warn", meta)


def rollups_match_events(con: duckdb.DuckDBPyConnection, region: RegionConfig) -> CheckResult:
    """The rollups equal the loaded events, row by row, computed independently of the models but for `voided` (a
    reversal a won dispute gave back), which the staging view marks once for every reader.

    Compared at each rollup's own grain (day; day and creator; day, creator and product), not only in total: an
    event changed in place (moved to another day or creator, money moved between two sales) leaves the totals and
    the build's store version as they were, so the rollups, and what was published from them, kept the old
    figures while verify passed. Payment figures too, every one of them: channel_daily's per day and channel, and
    region_daily's per day (`payment_figures`): summed per day only, a channel's payments or failed payments
    miscounted, or a channel's row moved to another day, published a plausible wrong figure that verify passed.
    And region_daily's rows loaded and quarantined per day (`row_counts`), which nothing compared: a miscount
    there published a plausible wrong quarantine rate. And what the money rollups' rows say besides their sums,
    which was taken as built: their currency and `fees_stated` (`money_terms`), and their USD net and rate date
    recomputed from the events at the rates seed (`usd_figures`): compared only across rollups, a rate every rollup
    took alike was passed.

    The repair named is a rebuild, which mends rollups left behind by the store or edited; a difference that
    stays after it is a model's, and the message says both."""
    problems = [problem for name, keys in MONEY_KEYS.items() if (problem := _rollup_differs(con, name, keys))]
    problems += [
        problem
        for name in PAYMENT_TABLES
        if (problem := payment_figures.payments_differ(con, name, region.currency, SHOWN))
    ]
    if counts := row_counts.counts_differ(con, region, SHOWN):
        problems.append(counts)
    for name, keys in MONEY_KEYS.items():
        problems += [
            problem
            for problem in (
                money_terms.currency_differs(con, name, keys, region, SHOWN),
                money_terms.fees_stated_differs(con, name, keys, region, SHOWN),
                usd_figures.usd_differs(con, name, keys, SHOWN),
            )
            if problem
        ]
    if problems:
        problems[-1] += (
            ". Either the store changed without a build or a rollup was edited (outside kanda), or a model"
            " miscounts: check the store's events and quarantined rows; if they are right,"
            f" `kanda publish --region {region.code} --rebuild` builds every day again from them and republishes"
            " it, which mends an edit; a difference still there after the rebuild is a model's miscount (report it)"
        )
    missing_fx = _missing_usd(con, region)
    if missing_fx:
        problems.append(missing_fx)
    if problems:
        return CheckResult("rollups_match_events", False, f"{region.code}: " + "; ".join(problems))
    (net,) = con.execute(
        "SELECT coalesce(sum(net_minor), 0) FROM stg_sale_events WHERE status = 'success' AND NOT voided"
    ).fetchall()[0]
    return CheckResult("rollups_match_events", True, f"{region.code}: rollups equal the events (net {net})")


#: Each money rollup's grain, and the figures compared at it with the events'.
MONEY_KEYS: dict[str, tuple[str, ...]] = {
    "creator_daily": ("local_date", "creator_id"),
    "product_daily": ("local_date", "creator_id", "product_id"),
    "region_daily": ("local_date",),
}
MONEY_FIGURES = ("orders", "gross_minor", "refunds_minor", "reversals_minor", "fees_minor", "net_minor")
#: Rows named per rollup when its figures differ from the events'.
SHOWN = 3


def _rollup_differs(con: duckdb.DuckDBPyConnection, name: str, keys: tuple[str, ...]) -> str | None:
    """The rows of a money rollup whose figures are not the events' (a row missing on either side counts as 0)."""
    listed = ", ".join(keys)
    differs = " OR ".join(f"coalesce(e.{f}, 0) <> coalesce(b.{f}, 0)" for f in MONEY_FIGURES)
    figures = ", ".join(f"coalesce(b.{f}, 0), coalesce(e.{f}, 0)" for f in MONEY_FIGURES)
    rows = con.execute(
        f"WITH e AS (SELECT {listed},"
        "  count(*) FILTER (WHERE event_type = 'sale') AS orders,"
        "  coalesce(sum(amount_minor) FILTER (WHERE event_type = 'sale'), 0) AS gross_minor,"
        "  coalesce(-sum(amount_minor) FILTER (WHERE event_type = 'refund'), 0) AS refunds_minor,"
        "  coalesce(-sum(amount_minor) FILTER (WHERE event_type IN ('reversal', 'chargeback')), 0) AS reversals_minor,"
        "  sum(fee_minor) AS fees_minor, sum(net_minor) AS net_minor"
        f" FROM stg_sale_events WHERE status = 'success' AND NOT voided GROUP BY {listed}),"
        f" b AS (SELECT {listed}, {', '.join(MONEY_FIGURES)} FROM {name})"
        f" SELECT {listed}, {figures} FROM e FULL JOIN b USING ({listed}) WHERE {differs} ORDER BY {listed}"
    ).fetchall()
    if not rows:
        return None
    shown = []
    for row in rows[:SHOWN]:
        key, values = row[: len(keys)], row[len(keys) :]
        pairs = [(f, values[2 * i], values[2 * i + 1]) for i, f in enumerate(MONEY_FIGURES)]
        changed = ", ".join(
            f"{f} {built:,} where the events say {events:,}" for f, built, events in pairs if built != events
        )
        shown.append(f"{key_text(key)}: {changed}")
    return rows_differ(f"{name} differs from the events on {len(rows)} row(s): ", shown, len(rows))


def _missing_usd(con: duckdb.DuckDBPyConnection, region: RegionConfig) -> str | None:
    """The days whose money has no USD figure (no rate on or before the day, or only one over 14 days older),
    named with their currency and the rate the first of them would have had."""
    rows = con.execute(
        "WITH missing AS (SELECT currency, list(DISTINCT local_date ORDER BY local_date) AS days, count(*) AS rows"
        " FROM creator_daily WHERE net_usd_minor IS NULL GROUP BY currency)"
        " SELECT currency, days, rows, (SELECT max(rate_date) FROM fx_rates AS f"
        "  WHERE f.currency = missing.currency AND f.rate_date <= days[1])"
        " FROM missing ORDER BY currency"
    ).fetchall()
    if not rows:
        return None
    count = sum(row[2] for row in rows)
    named = []
    for currency, days, _, newest in rows:
        listed = ", ".join(str(d) for d in days[:SHOWN]) + (
            f" and {len(days) - SHOWN} more" if len(days) > SHOWN else ""
        )
        latest = (
            f"the latest rate on or before {days[0]} is of {newest}" if newest else f"no rate on or before {days[0]}"
        )
        named.append(f"{currency} on {listed} ({latest})")
    return (
        f"{count} creator-days have no USD rate on or before their date (or only one over 14 days older), so their"
        f" USD figures are missing: " + "; ".join(named) + " (warehouse_models/seeds/fx_rates.csv)"
    )


def usd_agrees_across_rollups(con: duckdb.DuckDBPyConnection, region: RegionConfig) -> CheckResult:
    """region_daily, creator_daily and product_daily say the same USD net, to the cent, for every day.

    Each sums the events' own USD cents (int_usd_amounts rounds once per event), so any difference means a model
    converted or rounded on its own again. Compared per (local_date, currency); a day missing from a table counts
    as 0 there, and a day without a rate (NULL) must be NULL in all three.
    """
    per_table = " UNION ALL ".join(
        f"SELECT '{name}' AS model, local_date, currency, sum(net_usd_minor) AS usd,"
        f" count(*) FILTER (WHERE net_usd_minor IS NULL) AS unconverted FROM {name} GROUP BY ALL"
        for name in MONEY_TABLES
    )
    rows = con.execute(
        f"WITH sums AS ({per_table})"
        " SELECT local_date, currency,"
        "  coalesce(sum(usd) FILTER (WHERE model = 'region_daily'), 0) AS region_usd,"
        "  coalesce(sum(usd) FILTER (WHERE model = 'creator_daily'), 0) AS creator_usd,"
        "  coalesce(sum(usd) FILTER (WHERE model = 'product_daily'), 0) AS product_usd,"
        "  list(DISTINCT unconverted > 0) AS unconverted"
        " FROM sums GROUP BY ALL"
        " HAVING region_usd <> creator_usd OR region_usd <> product_usd OR len(unconverted) > 1"
        " ORDER BY local_date, currency"
    ).fetchall()
    meta = {"days_differing": len(rows)}
    if rows:
        shown = "; ".join(
            f"{day} {currency}: region_daily {r} vs creator_daily {c} vs product_daily {p} US cents"
            for day, currency, r, c, p, _ in rows[:5]
        )
        more = f" (and {len(rows) - 5} more days)" if len(rows) > 5 else ""
        return CheckResult(
            "usd_agrees_across_rollups",
            False,
            f"{region.code}: USD net differs between rollups on {len(rows)} day(s): {shown}{more}",
            metadata=meta,
        )
    return CheckResult(
        "usd_agrees_across_rollups",
        True,
        f"{region.code}: region_daily, creator_daily and product_daily agree in USD to the cent on every day",
        metadata=meta,
    )


def money_back_within_sale(con: duckdb.DuckDBPyConnection, region: RegionConfig) -> CheckResult:
    """No payment has more money gone back (refunds, reversals, chargebacks) than it was sold for.

    Each event can be valid while their sum is not (two refunds of one payment that together exceed it, a refund
    file read twice under two names): the contract judges rows one at a time, so this is checked on the payments.
    A warning, not an error: a rail may really have refunded more (a goodwill refund), and a steward decides.
    A payment whose sale has not arrived yet is not judged."""
    return _payments_warning(
        con,
        region,
        "money_back_within_sale",
        "gross_minor IS NOT NULL AND refunded_minor + reversed_minor > gross_minor",
        found="had more money go back than they were sold for",
        none="had more money go back than it was sold for",
    )


def failed_after_success(con: duckdb.DuckDBPyConnection, region: RegionConfig) -> CheckResult:
    """No payment reported failed after it succeeded.

    The success moved money and stays counted (gross and net, on its day: money is counted as the events say),
    while the payment's latest status, failed, counts it among the day's failed payments. Which one is true only
    the rail's account can tell, so the figures are flagged, not changed. A warning, as above."""
    return _payments_warning(
        con,
        region,
        "failed_after_success",
        "sale_date IS NOT NULL AND sale_status = 'failed'",
        found="were reported failed after they succeeded; their money is still counted as sold (check them with"
        " the rail)",
        none="was reported failed after it succeeded",
    )


def dollar_records(con: duckdb.DuckDBPyConnection, region: RegionConfig) -> CheckResult:
    """No record waiting for review was read from a `($)` file, whose money is US dollars.

    An older kanda read Gumroad's `($)` as the region's currency. Today's reader refuses such files, and a held
    one is not released, but the rows kept from before wait with amounts that may be dollars: a steward approves
    them with the region's amounts or rejects them. Events an older kanda loaded from such files keep no raw
    record, so they cannot be named here."""
    count, examples = con.execute(
        "SELECT count(*), list(quarantine_id ORDER BY quarantine_id)[1:5] FROM quarantine"
        f" WHERE status IN ('open', 'held') AND coalesce({DOLLAR_RECORD_SQL}, false)"
    ).fetchall()[0]
    if count:
        message = (
            f"{region.code}: {count} record(s) waiting for review were read from a ($) file, whose money is US"
            f" dollars, not {region.currency}; approve each with the {region.currency} amounts or reject it, e.g. "
            + ", ".join(examples)
        )
        return CheckResult("dollar_records", False, message, "warn", {"records": count, "examples": examples})
    return CheckResult("dollar_records", True, f"{region.code}: no record from a ($) file waits", "warn")


def _payments_warning(
    con: duckdb.DuckDBPyConnection, region: RegionConfig, name: str, where: str, *, found: str, none: str
) -> CheckResult:
    """A warning naming the payments of `fct_sales` that match `where` (five of them, by id)."""
    count, examples = con.execute(
        f"SELECT count(*), list(transaction_id ORDER BY transaction_id)[1:5] FROM fct_sales WHERE {where}"
    ).fetchall()[0]
    if count:
        message = f"{region.code}: {count} payment(s) {found}, e.g. " + ", ".join(examples)
        return CheckResult(name, False, message, "warn", {"payments": count, "examples": examples})
    return CheckResult(name, True, f"{region.code}: no payment {none}", "warn", {"payments": 0})


def regional_totals(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int, int]]:
    """Per rollup table: (rows, and the sums of its two `RECONCILED` columns) as the regional store has it."""
    return {
        name: tuple(
            con.execute(
                f"SELECT count(*), coalesce(sum({first}), 0), coalesce(sum({second}), 0) FROM {name}"
            ).fetchall()[0]
        )
        for name, (first, second) in RECONCILED.items()
    }


def central_totals(tables: dict[str, pa.Table], region: str) -> dict[str, tuple[int, int, int]]:
    import pyarrow.compute as pc

    result = {}
    for name, table in tables.items():
        rows = table.filter(pc.equal(table["region"], region))
        first, second = RECONCILED[name]
        result[name] = (
            rows.num_rows,
            int(pc.sum(rows[first]).as_py() or 0),
            int(pc.sum(rows[second]).as_py() or 0),
        )
    return result


def central_rows(
    con: duckdb.DuckDBPyConnection, region: RegionConfig, central: dict[str, pa.Table] | None
) -> CheckResult:
    """Central rollups equal the regional ones row by row, every column, on every published day.

    The totals of `reconciliation` pass money moved between days, a rate or a `fees_stated` flag that differs, or
    counts other than the two summed: a publish that missed a restated day leaves exactly that. Days changed since
    the last publish are left out here (`reconciliation` names them)."""
    import pyarrow.compute as pc

    published_with = con.execute("SELECT fingerprint FROM published_models").fetchall()
    if published_with and published_with[0][0] != published_fingerprint(con):
        return CheckResult(
            "central_rows",
            False,
            f"{region.code}: the store's rollups are by other models or region settings than its last publication"
            f" (kanda or the region file changed since): run `kanda publish -r {region.code}`, which sends every day",
        )
    problems, compared = [], 0
    for name in published():
        table = (central or {}).get(name)
        if table is None:
            continue  # reconciliation names a table the publication lacks
        rows = table.filter(pc.equal(table["region"], region.code))
        columns = [c for (c, *_) in con.execute(f"DESCRIBE {name}").fetchall() if c in rows.column_names]
        listed = ", ".join(f'"{c}"' for c in columns)
        published_days = "local_date NOT IN (SELECT local_date FROM dirty_days)"
        with registered(con, "kanda_central_rows", rows.select(columns)):
            differ = con.execute(
                f"WITH regional AS (SELECT {listed} FROM {name} WHERE {published_days}),"
                f" centre AS (SELECT {listed} FROM kanda_central_rows WHERE {published_days})"
                " SELECT 'regional' AS side, local_date FROM (FROM regional EXCEPT ALL FROM centre)"
                " UNION ALL SELECT 'central', local_date FROM (FROM centre EXCEPT ALL FROM regional)"
            ).fetchall()
            compared += rows.num_rows
        if differ:
            only = {side: sum(1 for s, _ in differ if s == side) for side in ("regional", "central")}
            days = sorted({str(day) for _, day in differ})
            shown = ", ".join(days[:3]) + (f" and {len(days) - 3} more" if len(days) > 3 else "")
            problems.append(
                f"{name}: {only['regional']} regional row(s) not in the centre and {only['central']} central row(s)"
                f" not in the store, on {shown}"
            )
    if problems:
        repair = f" (republish every day: `kanda publish -r {region.code} --all-days`)"
        return CheckResult("central_rows", False, f"{region.code}: " + "; ".join(problems) + repair)
    return CheckResult(
        "central_rows", True, f"{region.code}: all {compared} central rollup rows equal the regional ones, every column"
    )


def reconciliation(
    region: RegionConfig,
    regional: dict[str, tuple[int, int, int]],
    central: dict[str, tuple[int, int, int]],
    unpublished_days: int,
) -> CheckResult:
    """Central rollups equal the regional ones, row count and money to the minor unit."""
    problems = [
        f"{name}: regional {regional[name]} vs central {central.get(name)} (rows, {', '.join(RECONCILED[name])})"
        for name in published()
        if regional[name] != central.get(name)
    ]
    if unpublished_days:
        problems.append(f"{unpublished_days} changed day(s) not yet published (run `kanda publish`)")
    meta = {"regional": {k: list(v) for k, v in regional.items()}, "central": {k: list(v) for k, v in central.items()}}
    if problems:
        return CheckResult("reconciliation", False, f"{region.code}: " + "; ".join(problems), metadata=meta)
    net = regional["creator_daily"][1]
    return CheckResult(
        "reconciliation", True, f"{region.code}: central equals regional (net {net} minor units)", metadata=meta
    )
