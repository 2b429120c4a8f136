"""The regional sales overview notebook runs top to bottom on published demo data, so it cannot rot."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from kanda.central.publish import publish_region
from kanda.regional.ingest import ingest_landing
from kanda.settings import Settings
from tests.support.files import make_files

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "regional_sales_overview.ipynb"
REGIONS = ["EG", "KE", "NG"]
#: cell tag -> (charts it draws, words its table must show)
SECTIONS = {
    "usd-over-time": (1, ["gross_usd", "net_usd"]),
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


def test_the_notebook_runs_on_published_data_and_draws_every_chart(settings: Settings, tmp_path: Path):
    make_files(settings, regions=REGIONS, rows=300, days=3)
    for code in REGIONS:
        ingest_landing(settings, code)
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
