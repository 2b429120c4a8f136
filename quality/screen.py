"""The contract's row rules run as one polars query: which rows pandera would pass, without pandera's per-rule cost.

pandera validates a frame rule by rule, collecting each rule's result and its failure cases separately: about 190
small queries for a chunk of the contract, most of its time spent per query rather than per row (70-90 ms for
100,000 rows, whatever their content). At the ingestion boundary almost every row passes, and what a steward needs
(every reason, per row) matters only for the few that do not. So the boundary first screens a chunk with the
contract's own rules, taken from the pandera schema (the same check functions with the same arguments, the same
null handling), in a single query (about 25 ms), and sends only the rows that fail the screen through pandera,
which judges them and gives the reasons. Nothing here restates a rule: a rule added to `SaleEvent` is screened as
soon as it exists.

The screen answers only for a frame of exactly the contract's columns and dtypes; for anything else (an adapter
bug, a check kind it cannot run as an expression) it answers `None`, and pandera sees the whole frame as before.
`tests/quality/test_screen.py` holds it to pandera's verdict, row by row, on generated frames.
"""

from __future__ import annotations

from functools import cache

import pandera.backends.polars.builtin_checks  # noqa: F401  (registers the polars forms of pandera's built-in checks)
import polars as pl
from pandera.api.checks import Check
from pandera.api.function_dispatch import Dispatcher
from pandera.api.polars.types import PolarsData

from quality.contract import CONTRACT_COLUMNS, SaleEvent, contract_dtypes


def passes_contract(frame: pl.DataFrame) -> pl.Series | None:
    """Per row of `frame`, whether it passes every rule of the contract; `None` when only pandera can tell."""
    if any(frame.schema.get(name) != dtype for name, dtype in contract_dtypes().items()):
        return None
    contract = frame.lazy().select(CONTRACT_COLUMNS)
    verdicts = _rule_verdicts(contract)
    if verdicts is None:
        return None
    columns = [verdict.select(pl.first().alias(f"rule{i}")) for i, verdict in enumerate(verdicts)]
    return pl.concat(columns, how="horizontal").select(pl.all_horizontal(pl.all()).alias("passes")).collect()["passes"]


def _rule_verdicts(contract: pl.LazyFrame) -> list[pl.LazyFrame] | None:
    """One boolean column per rule (True = the row passes it), as pandera's polars backend would judge it."""
    schema = _schema()
    verdicts: list[pl.LazyFrame] = []
    for name, column in schema.columns.items():
        if not column.nullable:
            verdicts.append(contract.select(pl.col(name).is_not_null()))
        for check in column.checks:
            verdict = _check_verdict(check, PolarsData(contract, name))
            if verdict is None:
                return None
            verdicts.append(verdict)
    for check in schema.checks:
        verdict = _check_verdict(check, PolarsData(contract, "*"))
        if verdict is None:
            return None
        verdicts.append(verdict)
    return verdicts


def _check_verdict(check: Check, data: PolarsData) -> pl.LazyFrame | None:
    """A check's per-row result with pandera's null rule: with `ignore_na` a null result passes, else it fails."""
    if check.element_wise or check.groupby is not None:
        return None
    function = check._check_fn
    if isinstance(function, Dispatcher):
        # A built-in check (isin, str_length, ...): the model's copy of the dispatcher predates the registration of
        # the polars forms, so the live one is looked up by name.
        function = Check.CHECK_FUNCTION_REGISTRY.get(check.name)
        if function is None:
            return None
    try:
        out = function(data, **check._check_kwargs)
    except (KeyError, TypeError):  # no polars form of this check: pandera judges the frame
        return None
    if isinstance(out, bool):
        return data.lazyframe.select(pl.repeat(out, pl.len()).alias("passed"))
    names = out.collect_schema().names()
    passed = pl.all_horizontal([pl.col(n) for n in names]) if len(names) > 1 else pl.col(names[0])
    passed = (passed | passed.is_null()) if check.ignore_na else passed.fill_null(False)
    return out.select(passed.alias("passed"))


@cache
def _schema():  # -> pandera.polars.DataFrameSchema
    return SaleEvent.to_schema()
