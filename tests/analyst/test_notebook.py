"""The regional sales overview notebook runs top to bottom on published demo data, so it cannot rot."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from kanda.central.publish import publish_region
from kanda.central.query import run_query
from kanda.regional.ingest import ingest_files, ingest_landing
from kanda.settings import Settings
from tests.support.builders import paid, stripe_file
from tests.support.files import make_files

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "regional_sales_overview.ipynb"
REGIONS = ["EG", "KE", "NG"]
#: cell tag -> (charts it draws, words its table must show)
SECTIONS = {
    "usd-over-time": (1, ["gross_usd", "net_usd", "days_without_usd_rate", "days_fees_not_stated"]),
    # by region, by region and channel (channel_daily; KE's M-Pesa and NG's card), and the failure rate over time
    "rates": (3, ["payment_failure_rate", "reversal_rate", "channel", "mpesa", "card"]),
    "top-creators": (1, ["creator_id", "net_usd"]),
    "quarantine": (1, ["rows_quarantined", "quarantine_rate"]),
}


def execute(cwd: Path) -> nbformat.NotebookNode:
    """Run the notebook in a real kernel (the venv's python3), with this process's KANDA_HOME."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(cwd)}}).execute()
    return notebook


def by_tag(notebook: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return {tag: cell for cell in notebook.cells for tag in cell.metadata.get("tags", [])}


def tables(cell: nbformat.NotebookNode) -> list[str]:
    return [o["data"]["text/html"] for o in cell.outputs if "text/html" in o.get("data", {})]


class _Rows(HTMLParser):
    """The cell texts of each table row (th and td), in order."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None


def records(html: str) -> list[dict[str, str]]:
    """A displayed table (one header row, no index) as one dict per row, keyed by column name."""
    parser = _Rows()
    parser.feed(html)
    header, *rows = parser.rows
    return [dict(zip(header, row, strict=True)) for row in rows]


def dollars(cents: int) -> str:
    return f"{cents // 100:,}.{cents % 100:02d}"


def test_the_notebook_runs_on_published_data_and_draws_every_chart(settings: Settings, tmp_path: Path):
    make_files(settings, regions=REGIONS, rows=300, days=3)
    for code in REGIONS:
        ingest_landing(settings, code)
    # one Egyptian sale on a day before the first rate in the FX seed (2024-01-01): that day has no USD figure
    ingest_files(settings, "EG", [stripe_file(tmp_path / "in", "old.csv", [paid("ch_old", "2023-12-30 10:00:00")])])
    for code in REGIONS:
        publish_region(settings, code)

    notebook = execute(tmp_path)  # raises CellExecutionError, with the failing cell, on any error

    cells = by_tag(notebook)
    setup = "".join(o.get("text", "") for o in cells["setup"].outputs)
    assert str(settings.home) in setup and "reading publication" in setup and "running the demo" not in setup
    for tag, (charts, words) in SECTIONS.items():
        outputs = cells[tag].outputs
        assert not [o for o in outputs if o.output_type == "error"], tag
        images = [o for o in outputs if "image/png" in o.get("data", {})]
        assert len(images) == charts, tag
        shown = "".join(tables(cells[tag]))
        regions = [] if tag == "top-creators" else REGIONS  # the top ten need not span every region
        for word in [*words, *regions]:
            assert word in shown, (tag, word)

    # USD totals over a day without a rate are missing, with the days counted, never the sum of the other days;
    # the others are the published cents to the cent
    exact = {
        r["region"]: r["cents"]
        for r in run_query(
            settings, "SELECT region, CAST(sum(net_usd_minor) AS BIGINT) AS cents FROM rollups.region_daily GROUP BY 1"
        ).to_pylist()
    }
    (totals,) = (records(html) for html in tables(cells["usd-over-time"]))
    totals = {row["region"]: row for row in totals}
    assert {k: totals["EG"][k] for k in ("days_without_usd_rate", "gross_usd", "net_usd")} == {
        "days_without_usd_rate": "1",
        "gross_usd": "missing",
        "net_usd": "missing",
    }
    for code in ("KE", "NG"):
        assert totals[code]["days_without_usd_rate"] == "0" and totals[code]["gross_usd"] != "missing", code
        assert totals[code]["net_usd"] == dollars(exact[code]), code
    # KE's M-Pesa statements state no fees: its net is before them, on every day
    assert [totals[code]["days_fees_not_stated"] for code in REGIONS] == ["0", totals["KE"]["days"], "0"]
    said = "".join(o.get("text", "") for o in cells["usd-over-time"].outputs)
    assert "EG: no USD rate for 1 local day(s) with money (2023-12-30)" in said

    # the creator of that sale has no USD total: not ranked on a partial one, but counted beside the ranking
    ranked, unranked = (records(html) for html in tables(cells["top-creators"]))
    assert "EG-C0002" not in [row["creator_id"] for row in ranked]
    assert unranked == [{"region": "EG", "creators_not_ranked": "1", "days_without_usd_rate": "1"}]
    top = run_query(
        settings,
        "SELECT creator_id, CAST(sum(net_usd_minor) AS BIGINT) AS cents FROM rollups.creator_daily GROUP BY 1"
        " HAVING count(net_usd_minor) = count(*) ORDER BY cents DESC, creator_id LIMIT 10",
    ).to_pylist()
    assert [(row["creator_id"], row["net_usd"]) for row in ranked] == [
        (r["creator_id"], dollars(r["cents"])) for r in top
    ]


@pytest.mark.slow
def test_on_an_empty_home_the_notebook_runs_the_demo_first(settings: Settings, tmp_path: Path):
    notebook = execute(tmp_path)
    setup = "".join(o.get("text", "") for o in by_tag(notebook)["setup"].outputs)
    assert "running the demo pipeline first" in setup and "reading publication" in setup
    quarantine = "".join(tables(by_tag(notebook)["quarantine"]))
    assert all(code in quarantine for code in ("BD", "EG", "GH", "KE", "NG", "PK", "TZ"))


def test_the_notebook_is_committed_without_outputs():
    """Outputs are produced by running it; committing them would make every data change a binary diff."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)
