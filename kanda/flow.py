"""The region flow: the one place where the order of a region run is written.

    ingest waiting files -> load approved fixes -> build models once -> publish -> refresh readers -> queue review

The CLI, the demo, review reprocessing and the Dagster assets all call these steps; nothing else composes them.
Each step is idempotent and resumable on its own: ingestion skips files it has seen (by content hash), fixes are
loaded exactly once (the store is the source of truth), a build is skipped when the store has not changed since
the last one, a publish sends only days still marked dirty, the BI snapshot is rewritten from the newest
publication, and enqueueing skips rows already in the queue. So a run cut short anywhere is finished by the next.

Front ends that are not Dagster (the CLI, the demo) pass `observers`: callables told about every step that
changed something. The Dagster code location registers one under the `kanda.observers` entry point that records
each step as a runless asset materialization, so the Dagster UI shows the true state whichever front end ran.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING

from kanda.regional.ingest import IngestReport, Progress, ingest_files, ingest_landing
from kanda.regional.models import BuildResult, ensure_built
from kanda.regional.store import open_store, store_exists
from kanda.review.enqueue import enqueue_region
from kanda.review.reprocess import ReprocessResult, decided_rows, load_approved_fixes
from kanda.settings import Settings
from regions import get_region

if TYPE_CHECKING:
    from kanda.central.publish import PublishResult

log = logging.getLogger(__name__)

#: The steps of a region run, in the only order they run in.
STEPS = ("ingest", "load_fixes", "build", "publish", "refresh_readers", "queue_review")
#: What a steward's reprocess runs: the flow without looking at the landing folder.
AFTER_REVIEW = STEPS[1:]


@dataclass(frozen=True)
class StepEvent:
    """One finished step that changed something, for observers (e.g. the Dagster instance)."""

    region: str
    step: str
    metadata: dict
    home: Path  # the data directory the run used (`KANDA_HOME`), where an observer finds its own state


Observer = Callable[[StepEvent], None]


@dataclass
class RegionRun:
    """What one region run did, step by step (None: the step was not asked for)."""

    region: str
    ingest: IngestReport | None = None
    fixes: ReprocessResult | None = None
    build: BuildResult | None = None
    publish: PublishResult | None = None
    queued: int = 0
    steps: list[str] = field(default_factory=list)
    error: str | None = None  # set by `run_regions` when the region failed; the other regions still ran
    readers_error: str | None = None  # the BI snapshot was not refreshed after this run's publish: why

    @property
    def failed(self) -> bool:
        return self.error is not None


# --- the steps ---------------------------------------------------------------------------------------------------


def ingest(
    settings: Settings, region: str, files: Sequence[Path] | None = None, *, progress: Progress | None = None
) -> IngestReport:
    """Every waiting file of the landing folder (or the files named), each in one transaction. Held rows whose
    creator is now onboarded are released, except those a steward has decided, and a file's copy of a decided row
    is not loaded as it came: the next `load_fixes` applies the decision instead."""
    keep = partial(decided_rows, settings, region)
    if files:
        return ingest_files(settings, region, list(files), progress=progress, keep_held=keep)
    return ingest_landing(settings, region, progress=progress, keep_held=keep)


def load_fixes(settings: Settings, region: str, *, actor: str | None = None) -> ReprocessResult:
    """Stewards' approved fixes and waivers into the store, their rejections recorded; nothing published yet.
    The audit names `actor` (the steward who asked for the reprocess), or the system when nobody did."""
    return load_approved_fixes(settings, region, **({"actor": actor} if actor else {}))


def build(settings: Settings, region: str, *, full_refresh: bool = False) -> BuildResult:
    """The SQL models over the store as it is now; skipped when the last build saw this same store. Incremental
    (only the changed and restated days) unless `full_refresh` asks for every model rebuilt whole."""
    with open_store(settings, region) as con:
        return ensure_built(con, full_refresh=full_refresh)


def publish(settings: Settings, region: str, *, all_days: bool = False, rebuild: bool = False) -> PublishResult:
    """The built rollups' changed days to the central layer, made visible by one publication row."""
    from kanda.central.publish import publish_region  # pyiceberg: about 1 s to import, for the commands that publish

    return publish_region(settings, region, all_days=all_days, rebuild=rebuild)


def refresh_readers(settings: Settings) -> str | None:
    """What reads a publication as a file (the BI snapshot); a failure is logged and returned, never undoes the
    publish."""
    from kanda.analyst.snapshot import refresh_after_publish  # imports the catalog (pyiceberg) too

    return refresh_after_publish(settings)


def queue_review(settings: Settings, region: str) -> int:
    """New quarantine rows into the stewards' review queue (each row once)."""
    return enqueue_region(settings, region)


# --- composing them ----------------------------------------------------------------------------------------------


def run_region(
    settings: Settings,
    region: str,
    *,
    files: Sequence[Path] | None = None,
    steps: Iterable[str] = STEPS,
    all_days: bool = False,
    full_refresh: bool = False,
    rebuild: bool = False,
    observers: Sequence[Observer] = (),
    progress: Progress | None = None,
    actor: str | None = None,
) -> RegionRun:
    """Run the asked-for steps of one region in flow order. Raises on the first failing step."""
    code = get_region(region).code
    wanted = set(steps)
    unknown = wanted - set(STEPS)
    if unknown:
        raise ValueError(f"unknown step(s) {sorted(unknown)}; the steps are {', '.join(STEPS)}")
    run = RegionRun(code)

    def done(step: str, metadata: dict, changed: bool = True) -> None:
        run.steps.append(step)
        if changed:
            for observer in observers:
                _tell(observer, StepEvent(code, step, metadata, settings.home))

    if "ingest" in wanted:
        run.ingest = ingest(settings, code, files, progress=progress)
        done("ingest", ingest_metadata(run.ingest), changed=bool(run.ingest.files or run.ingest.released))
    if "load_fixes" in wanted:
        run.fixes = load_fixes(settings, code, actor=actor)
        done("load_fixes", run.fixes.as_dict(), changed=run.fixes.changed)
    if "build" in wanted and store_exists(settings, code):
        run.build = build(settings, code, full_refresh=full_refresh)
        metadata = {"models": run.build.models, "built": run.build.built, "full": run.build.full}
        done("build", metadata, changed=run.build.built)
    if "publish" in wanted and store_exists(settings, code):
        run.publish = publish(settings, code, all_days=all_days, rebuild=rebuild)
        if run.fixes is not None:
            run.fixes.publish_id = run.publish.publish_id
        done("publish", publish_metadata(run.publish), changed=run.publish.published)
    if "refresh_readers" in wanted:
        run.readers_error = refresh_readers(settings)
        done("refresh_readers", {}, changed=False)
    if "queue_review" in wanted and store_exists(settings, code):
        run.queued = queue_review(settings, code)
        done("queue_review", {"queued": run.queued}, changed=run.queued > 0)
    return run


def run_regions(settings: Settings, regions: Iterable[str], **kwargs) -> list[RegionRun]:
    """`run_region` for each region; one region's failure is recorded on its run and the others still run."""
    runs = []
    for code in regions:
        try:
            runs.append(run_region(settings, code, **kwargs))
        except Exception as exc:  # isolation: report this region by name, go on with the healthy ones
            log.warning("%s: region run failed: %s: %s", code, type(exc).__name__, exc)
            runs.append(RegionRun(code.upper(), error=f"{type(exc).__name__}: {exc}"))
    return runs


def reprocess_region(
    settings: Settings, region: str, *, observers: Sequence[Observer] = (), actor: str | None = None
) -> ReprocessResult:
    """A steward's reprocess: the flow after ingestion, so approved fixes are published by the same steps.
    `actor` is recorded in the audit of what it loaded or rejected (default: the system)."""
    run = run_region(settings, region, steps=AFTER_REVIEW, observers=observers, actor=actor)
    assert run.fixes is not None
    return run.fixes


# --- reporting ---------------------------------------------------------------------------------------------------


def ingest_metadata(report: IngestReport) -> dict:
    """Totals over the files of one ingest step, the per-file results, and why any file was refused whole."""
    counts = ("rows_in", "loaded", "quarantined", "duplicates", "ignored")
    return {
        "files": len(report.files),
        **{name: sum(getattr(f, name) for f in report.files) for name in counts},
        "already_ingested": sum(f.status == "already_ingested" for f in report.files),
        "released_held": report.released.loaded if report.released else 0,
        "rejected": {f.file: f.reason for f in report.files if f.status == "rejected"},
        "file_results": [f.as_json() for f in report.files],
    }


def publish_metadata(result: PublishResult) -> dict:
    return {
        "publish_id": result.publish_id,
        "days": [d.isoformat() for d in result.days],
        "rows": result.rows,
    }


def installed_observers() -> list[Observer]:
    """Observers registered by installed packages (`kanda.observers` entry points). Each is loaded when it is first
    told of a step, not before: Dagster's observer costs about a second to import, which a command that changes
    nothing (no waiting files) should not pay. One that fails to load is skipped with a warning, so a broken
    optional integration never stops a region run."""
    return [_LazyObserver(entry) for entry in entry_points(group="kanda.observers")]


class _LazyObserver:
    """An entry point's observer, loaded on its first event."""

    def __init__(self, entry: EntryPoint) -> None:
        self.entry = entry
        self.loaded: Observer | None = None
        self.broken = False

    def __call__(self, event: StepEvent) -> None:
        if self.loaded is None and not self.broken:
            try:
                self.loaded = self.entry.load()
            except Exception as exc:
                self.broken = True
                log.warning("observer %s not loaded: %s: %s", self.entry.name, type(exc).__name__, exc)
        if self.loaded is not None:
            self.loaded(event)

    def __repr__(self) -> str:
        return f"observer {self.entry.name}"


def _tell(observer: Observer, event: StepEvent) -> None:
    try:
        observer(event)
    except Exception as exc:  # the step has happened; an observer's failure must not make it look failed
        log.warning("observer %r failed on %s/%s: %s: %s", observer, event.region, event.step, type(exc).__name__, exc)
