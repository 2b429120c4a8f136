"""Readers never see part of a publish: CLI, API and BI snapshot readers loop while regions publish new data.

One publisher thread alternates between two regions; each round ingests a new slice of sales and publishes it. The
regional store's own totals after each publish give the complete states any reader may see (state k: every region
as of publish k). Three readers loop meanwhile: `run_query` (the CLI's function), `POST /api/sql` and the BI
snapshot file opened read-only. Every answer must equal one complete state, never an older one than the reader
started at, with no errors; and after each publish the publisher waits until every reader has read once more, so
each reader really reads between publishes, not only before or after them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from kanda.analyst.snapshot import connect_snapshot
from kanda.central.publish import publish_region
from kanda.central.query import run_query
from kanda.flow import refresh_readers
from kanda.regional.ingest import ingest_files
from kanda.regional.store import open_store
from kanda.settings import Settings
from tests.support.analyst import client_for
from tests.support.files import make_files

REGIONS = ("NG", "PK")  # line-based rails (NDJSON, JSON lines): a file cut into slices is still a valid file
SLICES = 3
STATE = """
with c as (select region, sum(net_minor) as creator_net from rollups.creator_daily group by 1),
     p as (select region, sum(net_minor) as product_net from rollups.product_daily group by 1),
     r as (select region, sum(net_minor) as region_net, sum(rows_loaded) as loaded, count(*) as days
           from rollups.region_daily group by 1)
select region, creator_net, product_net, region_net, loaded, days
from r left join c using (region) left join p using (region) order by region
"""
Answer = dict[str, tuple[int, ...]]


def as_answer(rows: list[tuple]) -> Answer:
    return {row[0]: tuple(int(v) if v is not None else None for v in row[1:]) for row in rows}


def regional_state(settings: Settings, region: str) -> tuple[int, ...]:
    """What the region's own store says it published (the store's rollups are what publish sent)."""
    with open_store(settings, region, read_only=True) as con:
        return tuple(
            int(v) if v is not None else None
            for v in con.execute(
                "SELECT (SELECT sum(net_minor) FROM creator_daily), (SELECT sum(net_minor) FROM product_daily),"
                " sum(net_minor), sum(rows_loaded), count(*) FROM region_daily"
            ).fetchall()[0]
        )


def slices(settings: Settings, region: str, tmp: Path) -> list[Path]:
    (whole,) = make_files(settings, regions=[region], rows=300, days=2)
    lines = whole.path.read_text().splitlines(keepends=True)
    whole.path.unlink()
    size = -(-len(lines) // SLICES)
    parts = []
    for i in range(SLICES):
        part = tmp / f"{region.lower()}_slice{i}{whole.path.suffix}"
        part.write_text("".join(lines[i * size : (i + 1) * size]))
        parts.append(part)
    return parts


def test_readers_only_ever_see_complete_publications(settings: Settings, tmp_path: Path):
    pending = {region: slices(settings, region, tmp_path) for region in REGIONS}
    current: Answer = {}
    for region in REGIONS:  # the first slice of each region: the state readers start from
        ingest_files(settings, region, [pending[region].pop(0)])
        publish_region(settings, region)
        refresh_readers(settings)  # the BI snapshot, as the region flow refreshes it after a publish
        current[region] = regional_state(settings, region)
    states: list[Answer] = [dict(current)]

    client = client_for(settings, "consistency")

    def via_cli() -> Answer:
        return as_answer([tuple(r.values()) for r in run_query(settings, STATE).to_pylist()])

    def via_api() -> Answer:
        response = client.post("/api/sql", json={"sql": STATE})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["publication"]["publish_id"] == response.headers["x-kanda-publication"]
        return as_answer([tuple(r.values()) for r in body["rows"]])

    def via_snapshot() -> Answer:
        con = connect_snapshot(settings)
        try:
            return as_answer(con.execute(STATE).fetchall())
        finally:
            con.close()

    readers: dict[str, Callable[[], Answer]] = {"cli": via_cli, "api": via_api, "snapshot": via_snapshot}
    generation = 0  # how many publishes of the loop are complete
    done_at = dict.fromkeys(readers, -1)  # per reader: the generation its last finished read started at
    answers: list[tuple[str, int, Answer]] = []
    errors: list[str] = []
    changed = threading.Condition()
    stop = threading.Event()

    def read_loop(name: str, read: Callable[[], Answer]) -> None:
        while not stop.is_set():
            with changed:
                started = generation
            try:
                answer = read()
            except Exception as exc:  # collected and reported: a reader must never fail
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
                answer = None
            with changed:
                if answer is not None:
                    answers.append((name, started, answer))
                done_at[name] = started
                changed.notify_all()
            stop.wait(0.02)  # let the publisher have the interpreter: readers hold the GIL in their Python parts

    threads = [threading.Thread(target=read_loop, args=item, daemon=True) for item in readers.items()]
    for thread in threads:
        thread.start()
    try:
        for round_ in range(SLICES - 1):
            for region in REGIONS:
                ingest_files(settings, region, [pending[region][round_]])
                assert publish_region(settings, region).published
                refresh_readers(settings)
                current[region] = regional_state(settings, region)
                with changed:
                    states.append(dict(current))
                    generation += 1
                    ready = changed.wait_for(
                        lambda target=generation: min(done_at.values()) >= target or bool(errors), 120
                    )
                assert ready, f"a reader did not finish a read within 120 s: {done_at}"
    finally:
        stop.set()
        for thread in threads:
            thread.join(120)

    assert not errors, errors[:5]
    assert len(set(map(repr, states))) == len(states), "each publish should change what readers see"
    seen: dict[str, set[int]] = {name: set() for name in readers}
    for name, started, answer in answers:
        assert answer in states, f"{name} saw a state no complete publication had: {answer}"
        index = states.index(answer)
        assert index >= started, f"{name} started at publication {started} but saw the older {index}"
        seen[name].add(index)
    for name, indexes in seen.items():
        assert indexes >= set(range(1, len(states))), f"{name} missed publications: saw {sorted(indexes)}"
    assert via_cli() == via_snapshot() == via_api() == states[-1]
