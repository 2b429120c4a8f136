"""Run the Great Expectations suites on pandas frames read from kanda's stores, and keep their Data Docs.

GX's SQL datasource fails on DuckDB, so each region's days are read under the store lock (read-only), the lock
is released, and GX validates the frames through a pandas datasource. The central rollups are read at the
newest publication with `kanda.central.query`, never from a regional store.

A GX validation has a fixed cost of a few tenths of a second, far more than judging a few thousand rows, so
`run_suites` makes one validation per suite: all stored days of all the regions asked for in one frame, and each
rollup table over those regions in one frame (region- and day-specific values are columns, see
`quality.expectations`). GX reports every unexpected row's index (result format COMPLETE), and the runner splits
each validation back into one `SuiteResult` per region and day (per region and table for the rollups), so that a
failure still names its region, day, rule and example rows. The results of one validation share its Data Docs
page; the stored GX result keeps only GX's partial lists of unexpected values.

Everything GX writes lives in one File Data Context at `settings.gx_dir` (suites, results, the Data Docs site).
Several processes (Dagster runs of different regions, the CLI) may use it at once, and GX rewrites its files
without locking, so every use holds `locks/gx.lock`. Besides GX's own results, the summary of the newest result
per suite, region and day is kept as small JSON files (`gx_dir/latest/`): the steward pages read those without
importing GX, which takes seconds. Old results are pruned (`KEEP_RESULTS` per suite, region and day) so that
the Data Docs index stays small.

Over many regions (`kanda expectations`), a region whose store cannot be read (corrupted) or is busy (another run
holds it past the lock wait) is named with its cause in `run_suites(..., failed=[...])`, and the other regions are
still validated and their Data Docs built (docs/reliability.md: one region never stops another).

Data Docs pages link jQuery, Bootstrap and a tracking image on public CDNs; they are rewritten to the copies in
`quality/data_docs_vendor/` so that the site works offline and loads nothing from the internet.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from kanda.regional.status import RegionFailure
from kanda.regional.store import StoreBusy, open_store, store_exists
from kanda.settings import Settings
from quality import expectations as suites
from regions import RegionConfig, all_regions, get_region

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.data_context import FileDataContext

log = logging.getLogger(__name__)

#: The newest local days of a region validated when no days are given (plus the days of its latest batch).
DEFAULT_DAYS = 7
#: Validation results kept per suite and set of regions validated together; older ones and their pages are
#: deleted unless a region's day still has its newest result there.
KEEP_RESULTS = 5
#: Rows of stored events judged in one validation. A validation costs GX ~0.25 s however small, so regions are
#: validated together; past this many rows that cost is negligible and one frame per batch bounds the memory.
MAX_BATCH_ROWS = 500_000
DATASOURCE = "kanda"
SITE = "local_site"
VENDOR_DIR = Path(__file__).parent / "data_docs_vendor"

#: CDN address in GX 1.24's page templates -> the vendored file (under the site's `static/vendor/`).
VENDORED = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery-3.7.1.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper-1.12.9.min.js",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap-4.3.1.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap-4.3.1.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table-1.19.1.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table-1.19.1.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": (
        "bootstrap-table-filter-control-1.19.1.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": (
        "bootstrap-table-filter-control-1.19.1.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": (
        "bootstrap-table-filter-control-1.19.1.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker-1.9.0.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker-1.9.0.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome-6.6.0/css/all.min.css",
}
_GX_IMAGES = re.compile(r"https://great-expectations-web-assets\.s3\.[\w.-]+\.amazonaws\.com/([\w.-]+)(\?[^\"']*)?")
# Whatever still points at the internet after the mapping (Vega, the dark-mode stylesheet) is dropped.
_REMOTE_TAGS = re.compile(
    r"<script[^>]+src=\"https?://[^\"]*\"[^>]*>\s*</script>|<link[^>]+href=\"https?://[^\"]*\"[^>]*>"
)


@dataclass
class SuiteResult:
    """The verdict of a suite on one region's day (or on a region's rows of a central rollup). The verdicts of the
    regions and days validated together share one GX validation result and its Data Docs page."""

    suite: str
    region: str
    local_date: str | None
    success: bool
    evaluated: int
    unsuccessful: int
    rows: int
    run_at: str
    #: The result's page, relative to the Data Docs root (`data_docs_dir(settings)`).
    docs_path: str
    failures: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def label(self) -> str:
        return f"{self.region} {self.local_date or 'central'} {self.suite}"

    def message(self) -> str:
        """One line a steward can act on: what failed, on how many rows, with examples."""
        if self.success:
            return f"{self.label}: {self.evaluated} expectations met on {self.rows} rows"
        return f"{self.label}: {self.unsuccessful} of {self.evaluated} failed: " + "; ".join(
            f["summary"] for f in self.failures
        )


def data_docs_dir(settings: Settings) -> Path:
    """The root of the static Data Docs site (its `index.html`), served by the web app at `/data-docs/`."""
    return settings.gx_dir / "uncommitted" / "data_docs" / SITE


def _latest_dir(settings: Settings) -> Path:
    return settings.gx_dir / "latest"


# --- the GX context -----------------------------------------------------------------------------------------------


@contextmanager
def gx_context(settings: Settings) -> Iterator[FileDataContext]:
    """kanda's File Data Context, held under the GX lock; set up (quietly, offline) on first use."""
    settings.ensure_dirs()
    lock = FileLock(str(settings.locks_dir / "gx.lock"))
    try:
        lock.acquire(timeout=settings.lock_wait_seconds)
    except Timeout:
        raise StoreBusy(f"the Great Expectations context is busy (another run holds {lock.lock_file})") from None
    try:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        # GX logs a line per rendered page and warns about its own deprecations; kanda's logs keep the results.
        logging.getLogger("great_expectations").setLevel(logging.ERROR)
        if settings.gx_dir.name != "gx":  # GX always names its folder `gx` under the project root
            raise ValueError(f"the GX context must live in a folder named gx, not {settings.gx_dir}")
        context = gx.get_context(mode="file", project_root_dir=str(settings.gx_dir.parent))
        if context.variables.progress_bars is None:  # first use: no progress bars in logs, no analytics
            context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
            context.config.analytics_enabled = False
            site = dict(context.config.data_docs_sites[SITE])
            site["show_how_to_buttons"] = False  # the walkthrough pop-up links GX's online tutorials
            context.update_data_docs_site(SITE, site)
            context.variables.save()
        yield context
    finally:
        lock.release()


def _validation(context: FileDataContext, asset_name: str, suite):
    """The validation definition of a suite on a dataframe asset, registered (or updated) in the context."""
    import great_expectations as gx

    try:
        source = context.data_sources.get(DATASOURCE)
    except KeyError:
        source = context.data_sources.add_pandas(DATASOURCE)
    try:
        asset = source.get_asset(asset_name)
    except LookupError:
        asset = source.add_dataframe_asset(asset_name)
    try:
        batch = asset.get_batch_definition("whole")
    except KeyError:
        batch = asset.add_batch_definition_whole_dataframe("whole")
    suite = context.suites.add_or_update(suite)
    return context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite.name, data=batch, suite=suite)
    )


@dataclass
class _Batch:
    """One validation: a suite on a frame of many regions (and days), split back into one result per region (and
    day) by the rows GX reports unexpected."""

    asset: str
    suite: str
    frame: pd.DataFrame
    parameters: dict[str, Any]
    #: The columns naming a result's region (and day): rows with equal values make one result.
    keys: list[str]

    @property
    def run_name(self) -> str:
        """The regions validated together (one run name per set of regions, pruned on its own)."""
        return "+".join(dict.fromkeys(self.frame[self.keys[0]]))


def _validate(context: FileDataContext, definition, batch: _Batch) -> list[SuiteResult]:
    """Validate the whole frame once; one SuiteResult per region (and day), each with its own failing rules,
    row counts and example rows, all pointing at the one Data Docs page of the validation."""
    import numpy as np
    import pandas as pd
    from great_expectations.core.run_identifier import RunIdentifier

    frame = batch.frame
    codes, groups = pd.factorize(pd.MultiIndex.from_frame(frame[batch.keys]))
    rows = np.bincount(codes, minlength=len(groups))
    run_at = dt.datetime.now(dt.UTC)
    run_id = RunIdentifier(run_name=batch.run_name, run_time=run_at)
    # COMPLETE: every unexpected row's index, so that each failure is told to the region and day it is in.
    result = definition.run(
        batch_parameters={"dataframe": frame},
        expectation_parameters=batch.parameters,
        result_format={"result_format": "COMPLETE"},
        run_id=run_id,
    )
    failures: list[list[dict[str, Any]]] = [[] for _ in groups]
    for outcome in result.results:
        if outcome.success:
            continue
        unexpected = (outcome.result or {}).get("unexpected_index_list")
        if not unexpected:
            for found in failures:  # not told by rows (it could not run): every region and day shares it
                found.append(_failure(outcome, frame, None))
            continue
        index = np.asarray(unexpected, dtype=np.int64)
        where = codes[index]
        for group in np.unique(where):
            failures[group].append(_failure(outcome, frame, index[where == group]))
    _store_trimmed(context, definition, result, run_id)
    stats = result.statistics
    docs_path = f"validations/{batch.suite}/{batch.run_name}/{run_at:%Y%m%dT%H%M%S.%fZ}/{_batch_id(result)}.html"
    return [
        SuiteResult(
            suite=batch.suite,
            region=str(group[0]),
            local_date=group[1].isoformat() if len(group) > 1 else None,
            success=not failures[i],
            evaluated=int(stats["evaluated_expectations"]),
            unsuccessful=len(failures[i]),
            rows=int(rows[i]),
            run_at=run_at.isoformat(timespec="seconds"),
            docs_path=docs_path,
            failures=failures[i],
        )
        for i, group in enumerate(groups)
    ]


#: Parts of a COMPLETE result that grow with the failing rows; the stored result (and its page) keeps GX's
#: partial lists (the first 20 unexpected values and indices) and the counts.
_FULL_LISTS = ("unexpected_list", "unexpected_index_list", "unexpected_index_query")


def _store_trimmed(context: FileDataContext, definition, result, run_id) -> None:
    """Replace the result GX stored with one without the full unexpected lists, so that a badly broken column
    does not turn into a results file and a Data Docs page of millions of values."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    trimmed = False
    for outcome in result.results:
        for name in _FULL_LISTS:
            if outcome.result and name in outcome.result:
                trimmed = trimmed or bool(outcome.result[name])
                del outcome.result[name]
    if not trimmed:  # nothing failed: what GX stored is small already
        return
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=definition.suite.name),
        run_id=run_id,
        batch_identifier=_batch_id(result),
    )
    context.validation_results_store.set(key, result)


def _batch_id(result) -> str:
    batch = result.meta["active_batch_definition"]
    return f"{batch['datasource_name']}-{batch['data_asset_name']}"


def _failure(result, frame: pd.DataFrame, rows) -> dict[str, Any]:
    """A failed expectation as a steward reads it: which rule, on which columns, how many rows, examples.

    `rows`: the index of the unexpected rows of one region (and day); None when the failure is not told by rows."""
    config = result.expectation_config
    kwargs = config.kwargs
    columns = [kwargs[k] for k in ("column", "column_A", "column_B") if kwargs.get(k)] + list(
        kwargs.get("column_list") or []
    )
    details = result.result or {}
    count = None if rows is None else len(rows)
    examples = []
    if rows is not None:
        sample = frame.loc[rows[:5], columns]
        examples = [_plain(v[0] if len(columns) == 1 else list(v)) for v in sample.itertuples(index=False)]
    error = (result.exception_info or {}).get("exception_message") if result.exception_info else None
    if error:
        summary = f"{config.type} on {', '.join(columns)} could not run: {error}"
    elif count is not None:
        summary = f"{config.type} on {', '.join(columns)}: {count} row(s), e.g. {examples}"
    else:
        summary = f"{config.type} on {', '.join(columns) or 'the table'}: observed {details.get('observed_value')}"
    return {
        "expectation": config.type,
        "columns": columns,
        "unexpected_count": count,
        "examples": examples,
        "error": error,
        "summary": summary,
    }


def _plain(value: Any) -> Any:
    """Frames hold numpy scalars, pandas timestamps, dates and NaN for a missing value; keep them readable as JSON."""
    import pandas as pd

    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if pd.isna(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


# --- what to validate ---------------------------------------------------------------------------------------------


def default_days(con, last: int = DEFAULT_DAYS) -> list[dt.date]:
    """The region's newest `last` local days, and every day its latest batch touched (a late file). A ledger row of
    kind `upgrade` (a store upgrade restating batches' money) loaded nothing: the latest batch is the one before."""
    rows = con.execute(
        """
        SELECT DISTINCT local_date FROM (
            (SELECT DISTINCT local_date FROM sale_events ORDER BY local_date DESC LIMIT ?)
            UNION
            SELECT local_date FROM sale_events
            WHERE batch_id = (SELECT batch_id FROM ledger WHERE kind <> 'upgrade' ORDER BY seq DESC LIMIT 1)
        ) ORDER BY local_date
        """,
        [last],
    ).fetchall()
    return [r[0] for r in rows]


def _read_days(settings: Settings, region: RegionConfig, local_dates: Iterable[dt.date] | None) -> pd.DataFrame | None:
    """The region's events of its days, read read-only under the store lock (released before GX runs)."""
    if not store_exists(settings, region.code):
        return None
    with open_store(settings, region.code, read_only=True) as con:
        days = sorted(set(local_dates)) if local_dates is not None else default_days(con)
        if not days:
            return None
        params = suites.sale_events_sql_parameters(region, days)
        frame = con.sql(suites.sale_events_sql(), params=params).to_arrow_table().to_pandas()
    return frame if len(frame) else None


def _event_batches(
    settings: Settings,
    regions: list[RegionConfig],
    local_dates: Iterable[dt.date] | None,
    failed: list[RegionFailure] | None = None,
) -> Iterator[_Batch]:
    """The stored days of the regions, in as few frames as `MAX_BATCH_ROWS` allows (regions without a store or
    events are left out). Lazy: a region is read once the batches before it have been validated, so that memory
    stays bounded however many regions there are.

    A region whose store cannot be read (or is busy) is appended to `failed` with its cause and left out, and the
    others are still read; without `failed`, the error is raised."""
    days = list(local_dates) if local_dates is not None else None
    frames: dict[RegionConfig, pd.DataFrame] = {}
    for region in regions:
        try:
            frame = _read_days(settings, region, days)
        except Exception as exc:
            if failed is None:
                raise
            # isolation: name this region and its cause, go on with the healthy ones
            failed.append(RegionFailure.of(region.code, exc))
            log.warning("%s: events not validated: %s", region.code, failed[-1].cause)
            continue
        if frame is not None:
            frames[region] = frame
            if sum(len(f) for f in frames.values()) >= MAX_BATCH_ROWS:
                yield _events_batch(frames)
                frames = {}
    if frames:
        yield _events_batch(frames)


def _events_batch(frames: dict[RegionConfig, pd.DataFrame]) -> _Batch:
    import pandas as pd

    return _Batch(
        asset="sale_events",
        suite=suites.SALE_EVENTS_SUITE,
        frame=pd.concat(frames.values(), ignore_index=True),
        parameters=suites.sale_events_parameters(list(frames)),
        keys=["store_region", "local_date"],
    )


def _central_batches(settings: Settings, regions: list[RegionConfig]) -> list[_Batch]:
    """Each published rollup table over the regions in one frame, all read at the same (newest) publication."""
    from kanda.central.query import NothingPublished, central_reader, fetch

    batches = []
    params = suites.rollup_sql_parameters(regions)
    try:
        with central_reader(settings) as central:
            for table in suites.ROLLUP_SUITES:
                frame = fetch(central, suites.rollup_sql(table), params).table.to_pandas()
                if len(frame):
                    found = [r for r in regions if r.code in set(frame["region"])]
                    parameters = suites.rollup_parameters(found)
                    batches.append(_Batch(table, suites.ROLLUP_SUITES[table], frame, parameters, keys=["region"]))
    except NothingPublished:
        return []
    return batches


def run_suites(
    settings: Settings,
    regions: Iterable[str] | None = None,
    local_dates: Iterable[dt.date] | None = None,
    *,
    events: bool = True,
    central: bool = True,
    docs: bool = True,
    failed: list[RegionFailure] | None = None,
) -> tuple[list[SuiteResult], Path | None]:
    """Validate the regions' stored days (default: `default_days` of each) and their rows of the published rollups,
    and (with `docs`) refresh these results' Data Docs pages: one GX context, one validation per suite.

    Returns one result per region and local day (`sale_events_day`; days without events have none), then one per
    rollup table and region (a region with nothing published has none), and the Data Docs index (None when there
    was nothing to validate). Results are stored in the GX context and summarised for `latest_results`.

    `failed`: a list to which each region whose store cannot be read (or is busy) is appended, with its cause; the
    other regions are still validated. Without it (one region's asset check), such an error is raised."""
    configs = [get_region(code) for code in regions] if regions is not None else list(all_regions().values())
    # The first frame is read before GX is imported and its lock taken (nothing to validate: neither); further
    # ones, if the rows need more than one, as the validations go.
    event_batches = _event_batches(settings, configs, local_dates, failed) if events else iter(())
    first = next(event_batches, None)
    central_batches = _central_batches(settings, configs) if central else []
    if first is None and not central_batches:
        return [], None
    results: list[SuiteResult] = []
    with gx_context(settings) as context:
        for batch in itertools.chain([first] if first else [], event_batches, central_batches):
            suite = suites.sale_events_suite() if batch.asset == "sale_events" else suites.rollup_suite(batch.asset)
            results += _validate(context, _validation(context, batch.asset, suite), batch)
        _record(settings, context, results)
        index = _build_docs(settings, context, results) if docs else None
    return results, index


def run_region_suites(
    settings: Settings, region: str, local_dates: Iterable[dt.date] | None = None
) -> list[SuiteResult]:
    """Validate each local day of a region's stored events (default: `default_days`); days without events are
    skipped. Results are stored in the GX context and summarised for `latest_results`."""
    return run_suites(settings, [region], local_dates, central=False, docs=False)[0]


def run_central_suites(settings: Settings, regions: Iterable[str] | None = None) -> list[SuiteResult]:
    """Validate each region's rows of every published rollup, at the newest publication.

    One result per region and table; a region with nothing published has none. Nothing published at all: []."""
    return run_suites(settings, regions, events=False, docs=False)[0]


# --- results, retention and Data Docs -----------------------------------------------------------------------------


def _record(settings: Settings, context: FileDataContext, results: list[SuiteResult]) -> None:
    """Keep each result's summary as the newest for its suite, region and day; prune the oldest GX results."""
    folder = _latest_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    for result in results:
        path = folder / f"{result.suite}.{result.region}.{result.local_date or 'central'}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result.as_json(), indent=1))
        tmp.replace(path)
    _prune(settings, context, {(r.suite, r.docs_path.split("/")[2]) for r in results})


def _prune(settings: Settings, context: FileDataContext, runs: set[tuple[str, str]]) -> None:
    """Delete all but the newest `KEEP_RESULTS` results (and their pages) of each suite and run name, except those
    a newest summary still points at (a day validated last in an older run of more days)."""
    store = context.validation_results_store
    groups: dict[tuple[str, str], list] = {}
    for key in store.list_keys():
        group = (key.expectation_suite_identifier.name, key.run_id.run_name)
        if group in runs:
            groups.setdefault(group, []).append(key)
    site = data_docs_dir(settings)
    for (suite, run_name), keys in groups.items():
        keys.sort(key=lambda k: k.run_id.run_time)
        old = keys[:-KEEP_RESULTS]
        in_use = _pages_in_use(settings, suite, run_name) if old else set()
        for key in old:
            run_time = key.run_id.run_time.strftime("%Y%m%dT%H%M%S.%fZ")
            if f"validations/{suite}/{run_name}/{run_time}" in in_use:
                continue
            store.remove_key(key)
            shutil.rmtree(site / "validations" / suite / run_name / run_time, ignore_errors=True)


def _pages_in_use(settings: Settings, suite: str, run_name: str) -> set[str]:
    """The result folders (`validations/<suite>/<run name>/<time>`) that the newest summaries of the suite for the
    run's regions point at (a run name is its regions joined by `+`)."""
    used = set()
    for code in run_name.split("+"):
        for path in _latest_dir(settings).glob(f"{suite}.{code}.*.json"):
            used.add("/".join(json.loads(path.read_text())["docs_path"].split("/")[:4]))
    return used


def build_data_docs(settings: Settings, results: Iterable[SuiteResult] | None = None) -> Path:
    """Build the static Data Docs site and return its `index.html`.

    With `results`, only their pages, the suites' pages and the index are (re)built, which stays fast however
    much history is kept; without, every stored result is rendered. Pages are then made to work offline.
    """
    with gx_context(settings) as context:
        return _build_docs(settings, context, results)


def _build_docs(settings: Settings, context: FileDataContext, results: Iterable[SuiteResult] | None) -> Path:
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    identifiers = None
    if results is not None:
        wanted = {tuple(r.docs_path.split("/")[1:4]) for r in results}
        identifiers = [
            key
            for key in context.validation_results_store.list_keys()
            if isinstance(key, ValidationResultIdentifier)
            and (
                key.expectation_suite_identifier.name,
                key.run_id.run_name,
                key.run_id.run_time.strftime("%Y%m%dT%H%M%S.%fZ"),
            )
            in wanted
        ]
        identifiers += [ExpectationSuiteIdentifier(name=s) for s in {w[0] for w in wanted}]
    started = time.time()
    context.build_data_docs(site_names=[SITE], resource_identifiers=identifiers)
    site = data_docs_dir(settings)
    _make_offline(site, since=started - 2)
    return site / "index.html"


def _make_offline(site: Path, since: float) -> None:
    """Point the pages (re)built since `since` at the vendored scripts and styles; drop the CDN-only extras.

    Only fresh pages are read: the site keeps every day's results, and rewriting them all on each run would
    grow with the history."""
    shutil.copytree(VENDOR_DIR, site / "static" / "vendor", dirs_exist_ok=True)
    for page in site.rglob("*.html"):
        if page.stat().st_mtime < since:
            continue
        text = page.read_text(encoding="utf-8")
        root = "../" * (len(page.relative_to(site).parts) - 1)
        for url, local in VENDORED.items():
            text = text.replace(url, f"{root}static/vendor/{local}")
        text = _GX_IMAGES.sub(lambda m, root=root: f"{root}static/images/{_local_image(site, m.group(1))}", text)
        text = _REMOTE_TAGS.sub("", text)
        page.write_text(text, encoding="utf-8")


def _local_image(site: Path, name: str) -> str:
    return name if (site / "static" / "images" / name).exists() else "logo-long.png"


def latest_results(settings: Settings, region: str | None = None) -> list[dict[str, Any]]:
    """The newest result per suite, region and day (central rollups: `local_date` None), newest days first.

    Each dict: suite, region, local_date, success, evaluated, unsuccessful, rows, run_at, docs_path (relative to
    the Data Docs root) and failures. Reads small JSON files: no GX import, no store lock.
    """
    folder = _latest_dir(settings)
    if not folder.exists():
        return []
    rows = []
    for path in folder.glob("*.json"):
        row = json.loads(path.read_text())
        if region is None or row["region"] == region.upper():
            rows.append(row)
    rows.sort(key=lambda r: (r["region"], r["suite"]))
    rows.sort(key=lambda r: r["local_date"] or "central", reverse=True)  # central first, then newest days
    return rows
