"""`kanda regions new CODE --sample FILE`: a first draft of a region file with its rail spec, from one sample.

The draft is a starting point for a person, not a guess the pipeline trusts: it records what can be read off the
file (encoding, delimiter, where the header is, each column's apparent type and time format, the status words
seen) and proposes a mapping by column names and types, marking every proposal it is unsure of with `# TODO`.
`kanda regions check` then shows what the finished spec would do with the sample.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from regions.parsing import detect_encoding
from regions.spec.engine import DELIMITERS

#: Time formats tried on sample values, most specific first.
TIME_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%d-%m-%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%Y-%m-%d",
    "%d/%m/%Y",
]
#: Contract field -> header words that suggest it (normalised, tried in order).
NAME_HINTS: dict[str, list[str]] = {
    "transaction_id": ["transactionid", "txnid", "receipt", "trxid", "paymentid", "purchaseid", "chargeid", "id"],
    "amount": ["amount", "paidin", "saleprice", "gross", "total", "price", "value"],
    "fee": ["fee", "fees", "charge", "charges", "commission"],
    "net": ["net", "nettotal"],
    "occurred_at": ["completiontime", "created", "date", "time", "timestamp", "paidat", "when"],
    "status": ["status", "state", "transactionstatus", "type"],
    "currency": ["currency"],
    "reference": ["reference", "ref", "narrative", "details", "description", "itemname", "metadata", "account"],
    "channel": ["channel", "paymenttype", "method", "paymentmethod"],
}
_WORDS = {
    r"complet|success|paid|succeed|approved": ("sale", "success"),
    r"pend|process|progress|queued|ongoing": ("sale", "pending"),
    r"fail|declin|reject|cancel|abandon|expired|blocked": ("sale", "failed"),
    r"refund": ("refund", "success"),
    r"revers|disput|chargeback": ("reversal", "success"),
}


@dataclass
class Column:
    name: str
    kind: str  # empty | integer | decimal | decimal_comma | time | email | phone | text
    examples: list[str]
    time_format: str | None = None
    distinct: list[str] = field(default_factory=list)


@dataclass
class SampleProfile:
    format: str
    encoding: str
    delimiter: str
    header_line: int
    columns: list[Column]


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _value_kind(v: str) -> tuple[str, str | None]:
    if re.fullmatch(r"[^@\s]+@[^@\s]+\.\w+", v):
        return "email", None
    if re.fullmatch(r"\+?0?[\d\s\-*]{9,16}", v) and (v.startswith(("+", "0"))):
        return "phone", None
    if re.fullmatch(r"-?\d+", v):
        return "integer", None
    if re.fullmatch(r"-?[\d,.]*\d", v):
        return "decimal", None  # dot or comma decimals: decided over the whole column (`_kind`)
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)", v):
        return "time", "iso"
    for fmt in TIME_FORMATS:
        try:
            dt.datetime.strptime(v, fmt.replace("%.f", ""))
        except ValueError:
            continue
        return "time", fmt
    return "text", None


def _kind(values: list[str]) -> tuple[str, str | None]:
    """The type most sample values have (80 %): a sample is dirty, which is why it is worth drafting from."""
    values = [v.strip() for v in values if v and v.strip()]
    if not values:
        return "empty", None
    counts = Counter(_value_kind(v) for v in values[:200])
    numbers = counts[("integer", None)] + counts[("decimal", None)]
    if counts[("decimal", None)] and numbers >= 0.8 * sum(counts.values()):
        comma = any(re.search(r",\d{1,2}$", v) for v in values) and not any(re.search(r"\.\d{1,2}$", v) for v in values)
        return ("decimal_comma" if comma else "decimal"), None
    (kind, fmt), n = counts.most_common(1)[0]
    return (kind, fmt) if n >= 0.8 * sum(counts.values()) else ("text", None)


def _flatten(doc: object, prefix: str = "") -> dict[str, str]:
    """A JSON document as dotted paths -> text (objects below two levels and lists stay JSON text)."""
    if isinstance(doc, dict) and prefix.count(".") < 2:
        out: dict[str, str] = {}
        for key, value in doc.items():
            out.update(_flatten(value, f"{prefix}{key}" if not prefix else f"{prefix}.{key}"))
        return out
    if doc is None:
        return {prefix: ""}
    return {prefix: doc if isinstance(doc, str) else json.dumps(doc)}


def profile_sample(path: Path, *, search_lines: int = 30) -> SampleProfile:
    """What the sample looks like: format, encoding, delimiter, header position and each column's type."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        docs = [json.loads(line) for line in path.read_text(encoding="utf-8-sig").splitlines()[:200] if line.strip()]
        rows = [_flatten(d) for d in docs]
        names = list(dict.fromkeys(k for r in rows for k in r))
        table = pl.DataFrame([{n: r.get(n) for n in names} for r in rows], schema=dict.fromkeys(names, pl.String))
        return SampleProfile("ndjson", "utf-8", "", 0, _columns(table))
    if suffix in (".xlsx", ".xlsm"):
        raw = pl.read_excel(path, engine="calamine", has_header=False, infer_schema_length=0)
        lines = [["" if v is None else str(v) for v in row] for row in raw.rows()]
        index = _header_index(lines[:search_lines])
        table = _table(lines[index], lines[index + 1 :])
        return SampleProfile("xlsx", "binary", "", index, _columns(table))
    encoding = detect_encoding(path)
    with path.open("r", encoding=encoding, newline="") as handle:
        text = [line for _, line in zip(range(500), handle, strict=False)]
    delimiter = max(DELIMITERS, key=lambda d: sum(line.count(d) for line in text[:search_lines]))
    lines = [[c.strip().lstrip("\ufeff") for c in row] for row in csv.reader(text, delimiter=delimiter)]
    index = _header_index(lines[:search_lines])
    width = len(lines[index])
    body = [row for row in lines[index + 1 :] if len(row) == width and row != lines[index]]
    return SampleProfile("csv", encoding, delimiter, index, _columns(_table(lines[index], body)))


def _header_index(lines: list[list[str]]) -> int:
    """The header is the first row as wide as the widest row whose cells are all non-numeric text."""
    width = max((len(r) for r in lines), default=0)
    for index, row in enumerate(lines):
        cells = [c for c in row if c]
        if (
            len(row) == width
            and len(cells) >= max(2, width // 2)
            and not any(re.fullmatch(r"[\d.,\-]+", c) for c in cells)
        ):
            return index
    return 0


def _table(header: list[str], rows: list[list[str]]) -> pl.DataFrame:
    names = [h or f"column_{i + 1}" for i, h in enumerate(header)]
    return pl.DataFrame([dict(zip(names, r, strict=False)) for r in rows[:500]], schema=dict.fromkeys(names, pl.String))


def _columns(table: pl.DataFrame) -> list[Column]:
    columns = []
    for name in table.columns:
        values = [v for v in table[name].to_list() if v is not None]
        kind, fmt = _kind(values)
        distinct = sorted({v.strip() for v in values if v.strip()})
        columns.append(Column(name, kind, values[:3], fmt, distinct if len(distinct) <= 12 else []))
    return columns


def propose(profile: SampleProfile) -> dict[str, Column]:
    """Contract field -> the column that most likely holds it, by header words and column type."""
    chosen: dict[str, Column] = {}
    used: set[str] = set()
    wanted_kind = {
        "amount": ("integer", "decimal", "decimal_comma"),
        "fee": ("integer", "decimal", "decimal_comma", "empty"),
        "net": ("integer", "decimal", "decimal_comma"),
        "occurred_at": ("time",),
        "reference": ("text",),
        "transaction_id": ("text", "integer", "decimal"),
    }
    for target, words in NAME_HINTS.items():
        for word in words:
            match = next(
                (
                    c
                    for c in profile.columns
                    if c.name not in used
                    and (word in _norm(c.name).split() or _norm(c.name) == word or word in _norm(c.name))
                    and (target not in wanted_kind or c.kind in wanted_kind[target])
                ),
                None,
            )
            if match is not None:
                chosen[target] = match
                used.add(match.name)
                break
    buyer = next((c for c in profile.columns if c.kind in ("email", "phone") and c.name not in used), None)
    if buyer is not None:
        chosen["buyer"] = buyer
    return chosen


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def draft_region(
    code: str,
    sample: Path,
    *,
    name: str | None = None,
    currency: str | None = None,
    zone: str | None = None,
    calling_code: str | None = None,
) -> str:
    """A region file with an inline rail spec, as YAML text with comments, for a person to finish."""
    profile = profile_sample(sample)
    picks = propose(profile)
    code = code.upper()
    out: list[str] = [
        f"# Drafted by `kanda regions new {code} --sample {sample.name}`. Check every TODO, then run",
        f"# `kanda regions check {code} <file>` until each field shows the values you expect.",
        f"code: {code}",
        f"name: {_q(name or 'TODO country name')}",
        f"currency: {currency or 'XXX'}  # ISO 4217 code{'' if currency else ' (TODO)'}",
        f"zone: {zone or 'Etc/UTC'}  # IANA zone of the region's local day{'' if zone else ' (TODO)'}",
        "locale: en  # TODO",
        "language: en  # TODO",
        f'calling_code: "{calling_code or "0"}"{"" if calling_code else "  # TODO"}',
        f"landing: {code.lower()}",
        f'file_glob: "*{sample.suffix.lower()}"',
        "reference:",
        "  # TODO: how the creator and product codes appear in the reference column",
        f"  pattern: '(?P<creator_id>{code}-C\\d{{4}})\\.(?P<product_id>{code}-P\\d{{5}})'",
        "quarantine_rate: {warn: 0.02, error: 0.10}",
        "rail:",
        f"  format: {profile.format}",
    ]
    if profile.format == "csv":
        out.append(f"  encoding: {profile.encoding}  # detected")
        out.append(f"  delimiter: {_q(profile.delimiter)}  # detected")
        if profile.header_line:
            out.append(f"  # the header is on line {profile.header_line + 1}; the lines above it are skipped")
    out.append("  # columns seen in the sample (type: first values):")
    for col in profile.columns:
        fmt = f" {col.time_format}" if col.time_format else ""
        out.append(f"  #   {col.name!r}: {col.kind}{fmt}: {', '.join(map(repr, col.examples))[:100]}")
    amount = picks.get("amount")
    decimal = "," if amount is not None and amount.kind == "decimal_comma" else "."
    unit = (
        "major  # TODO: 'minor' for integer minor units, 'minor_x100' for Stripe-style x100"
        if (amount is None or amount.kind != "integer")
        else "minor  # TODO: integers: minor units? ('major' if whole currency units, 'minor_x100' for x100)"
    )
    out.append(f"  amount: {{unit: {unit.split('  ')[0]}, decimal: {_q(decimal)}}}  # {unit.split('# ')[1]}")
    when = picks.get("occurred_at")
    fmt = (when.time_format if when else None) or "%Y-%m-%d %H:%M:%S"
    zone_kind = "offset" if fmt == "iso" else "local"
    out.append(f"  time: {{formats: [{_q(fmt)}], zone: {zone_kind}}}  # TODO: utc, local or offset?")
    status = picks.get("status")
    if status is not None and status.distinct:
        out += ["  vocabulary:", f"    of: {_q(status.name)}", "    map:"]
        for word in status.distinct:
            guess = next((v for k, v in _WORDS.items() if re.search(k, word.lower())), None)
            if guess:
                out.append(f"      {_q(word)}: [{guess[0]}, {guess[1]}]")
            else:
                out.append(f"      # {_q(word)}: [sale, success]  # TODO: map or list under ignore")
    out.append("  fields:")
    for target in ("transaction_id", "amount", "fee", "net", "occurred_at", "currency", "reference", "channel"):
        col = picks.get(target)
        required = target in ("transaction_id", "amount", "occurred_at", "reference")
        if col is not None:
            out.append(f"    {target}: {_q(col.name)}  # TODO check")
        elif required:
            first = profile.columns[0].name if profile.columns else "TODO"
            out.append(f"    {target}: {_q(first)}  # TODO: no likely column found")
    if "buyer" in picks:
        out.append(f"    buyer: {{of: {_q(picks['buyer'].name)}, kind: {picks['buyer'].kind}}}")
    return "\n".join(out) + "\n"
