"""models.yml is the truth about the SQL models: every file is described, dependencies are real and complete, and
the built tables have exactly the columns the descriptions promise."""

from __future__ import annotations

import re

import pytest

import warehouse_models as wm
from kanda.regional.ingest import ingest_landing
from kanda.regional.models import build_models
from kanda.regional.store import open_store
from kanda.settings import Settings
from tests.support.files import make_files


def referenced_tables(model: wm.Model) -> set[str]:
    """The models and sources a model's SQL names (comments aside): what dbt's ref() would have listed."""
    code = re.sub(r"--[^\n]*", "", model.sql)
    known = {m.name for m in wm.models()} | set(wm.sources())
    return {word for word in re.findall(r"\b\w+\b", code) if word in known} - {model.name}


def test_every_model_file_has_a_models_yml_entry_and_every_entry_a_file():
    files = {(path.parent.name, path.stem) for layer in wm.LAYERS for path in (wm.root() / layer).glob("*.sql")}
    described = {(m.layer, m.name) for m in wm.models()}
    assert files == described


def test_dependencies_are_explicit_complete_and_in_build_order():
    built: set[str] = set()
    for model in wm.models():
        assert set(model.depends_on) == referenced_tables(model), model.name
        for dependency in model.depends_on:
            assert dependency in built or dependency in wm.sources(), f"{model.name} runs before {dependency}"
        built.add(model.name)


def test_only_staging_reads_the_store_tables():
    for model in wm.models():
        reads_sources = set(model.depends_on) & set(wm.sources())
        assert bool(reads_sources) == (model.layer == "staging"), model.name


def test_published_rollups_have_keys_that_are_their_columns():
    assert list(wm.published()) == ["creator_daily", "product_daily", "region_daily", "channel_daily"]
    for name, keys in wm.published().items():
        assert keys and set(keys) <= set(wm.column_docs(name)), name
        assert wm.model(name).layer == "rollups"


def test_every_column_says_what_it_is_and_money_says_its_unit():
    for model in wm.models():
        assert model.description and model.grain, model.name
        for column in model.columns:
            assert column.description, f"{model.name}.{column.name}"
            if column.name.endswith("_minor"):
                assert column.unit in {"minor units of the row's currency", "USD cents"}, f"{model.name}.{column.name}"


def test_a_circle_of_dependencies_is_refused(monkeypatch: pytest.MonkeyPatch):
    circle = (
        wm.Model("a", "facts", "a", ("b",), ()),
        wm.Model("b", "facts", "b", ("a",), ()),
    )
    monkeypatch.setattr(wm, "_declared", lambda: circle)
    wm.models.cache_clear()
    try:
        with pytest.raises(ValueError, match="circle"):
            wm.models()
    finally:
        monkeypatch.undo()
        wm.models.cache_clear()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """One real store with a few days of dirty synthetic sales, built."""
    from kanda.settings import load_settings

    home = load_settings(tmp_path_factory.mktemp("models") / "home")
    home.ensure_dirs()
    make_files(home, regions=["KE"], rows=400, days=2)
    ingest_landing(home, "KE")
    with open_store(home, "KE") as con:
        build_models(con)
    return home


def test_built_tables_have_exactly_the_described_columns_and_required_ones_are_filled(built: Settings):
    with open_store(built, "KE", read_only=True) as con:
        for model in wm.models():
            columns = [row[0] for row in con.execute(f"DESCRIBE {model.name}").fetchall()]
            assert columns == [c.name for c in model.columns], model.name
            required = [c.name for c in model.columns if c.required]
            if required:
                nulls = con.execute(
                    f"SELECT {', '.join(f'count(*) FILTER (WHERE {c} IS NULL)' for c in required)} FROM {model.name}"
                ).fetchall()[0]
                assert dict(zip(required, nulls, strict=True)) == dict.fromkeys(required, 0), model.name
            rows = con.execute(f"SELECT count(*) FROM {model.name}").fetchall()[0][0]
            assert rows > 0, model.name


def test_models_yml_reads_the_same_with_libyaml_as_with_pure_python_yaml():
    import yaml

    for layer in wm.LAYERS:
        text = (wm.root() / layer / "models.yml").read_text()
        assert yaml.load(text, Loader=wm._LOADER) == yaml.safe_load(text), layer
