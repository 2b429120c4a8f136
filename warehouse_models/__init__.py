"""SQL models shaped like dbt's, run inside each regional store in dependency order.

One model per SQL file, in a folder per layer (staging -> intermediate -> facts -> rollups). Each layer's
`models.yml` is the one description of its models: what each is for, what it depends on (explicit, so the run
order is a topological sort rather than an accident of file names), its grain and keys, which rollups are
published centrally, and every column with its unit. `kanda.regional.models` runs them; verify, the central
catalog and the analyst API read keys and descriptions from here. Seeds (small reference tables shipped as CSV,
like dbt's) live in `seeds/`; the store tables the staging models read are declared as `sources` in
`staging/models.yml`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

LAYERS = ("staging", "intermediate", "facts", "rollups")


@dataclass(frozen=True)
class Column:
    name: str
    description: str
    unit: str | None = None
    required: bool = False  # never NULL

    @property
    def doc(self) -> str:
        """The description with its unit: one line wherever a column is documented (Iceberg, DuckDB, dictionary)."""
        return f"{self.description} (unit: {self.unit})" if self.unit else self.description


@dataclass(frozen=True)
class Model:
    name: str
    layer: str
    description: str
    depends_on: tuple[str, ...]
    columns: tuple[Column, ...]
    grain: str | None = None
    keys: tuple[str, ...] = ()
    published: bool = False
    materialized: str = "table"  # view, table or incremental (see MATERIALIZATIONS)
    unique_key: str | None = None  # incremental: the column whose changed values are replaced (INCREMENTAL_KEYS)
    #: incremental: conditions every row an incremental build replaces meets, added to its DELETE so that the
    #: DELETE reads only those rows' part of the table (dbt's `incremental_predicates`); filter macros allowed
    incremental_predicates: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        return root() / self.layer / f"{self.name}.sql"

    @property
    def sql(self) -> str:
        """The model's SELECT as written, filter macros included (see `compiled`)."""
        return self.path.read_text()

    def compiled(self, scope: Scope | None = None) -> str:
        """The model's SELECT with its filter macros resolved, like dbt's `is_incremental()` blocks.

        `{{ in_build_days(expr) }}` and `{{ in_build_payments(expr) }}` restrict a model's inputs to what an
        incremental build replaces. In a full build (`scope` None) they are TRUE; otherwise `scope` maps each macro
        to a function that makes the SQL condition "expr is in the build's set" (see `resolve`).
        """
        return resolve(self.sql, scope)


#: What an incremental build replaces: each filter macro -> the SQL condition "expr is in the build's set".
Scope = Mapping[str, Callable[[str], str]]


def resolve(sql: str, scope: Scope | None) -> str:
    """`sql` with its filter macros replaced: TRUE in a full build (`scope` None), else `scope[macro](expr)`."""

    def one(match: re.Match) -> str:
        macro, expr = match.group(1), match.group(2).strip()
        return "TRUE" if scope is None else f"({scope[macro](expr)})"

    return MACRO.sub(one, sql)


#: How a model is materialised by `kanda.regional.models`: a view (re-created, reads through), a table (rebuilt
#: whole on every build) or incremental (a table whose changed rows are deleted and inserted again; rebuilt whole
#: on a full refresh or when any model changed).
MATERIALIZATIONS = ("view", "table", "incremental")

#: An incremental model's `unique_key` -> the filter macro naming the set of its values a build replaces:
#: rows by local day (the build's days, which include every day a late event restates), or payments by id (every
#: payment with an event on a changed day).
INCREMENTAL_KEYS = {"local_date": "in_build_days", "transaction_id": "in_build_payments"}

#: A filter macro in a model's SQL: `{{ in_build_days(local_date) }}`.
MACRO = re.compile(r"\{\{\s*(in_build_days|in_build_payments)\((.+?)\)\s*\}\}")


def root() -> Path:
    return Path(str(resources.files("warehouse_models")))


def _column(data: dict) -> Column:
    return Column(
        name=data["name"],
        description=data["description"],
        unit=data.get("unit"),
        required=bool(data.get("required", False)),
    )


#: libyaml's safe loader when PyYAML was built with it: the same documents, parsed seven times faster (every process
#: that imports this module parses every models.yml, a one-shot `kanda query` too).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _layer(layer: str) -> dict:
    return yaml.load((root() / layer / "models.yml").read_text(), Loader=_LOADER) or {}


@cache
def sources() -> dict[str, str]:
    """Store tables (written by ingestion and the store itself, not by a model) -> what they hold."""
    return {entry["name"]: entry["description"] for entry in _layer("staging").get("sources", [])}


@cache
def _declared() -> tuple[Model, ...]:
    declared = []
    for layer in LAYERS:
        for entry in _layer(layer).get("models", []):
            declared.append(
                Model(
                    name=entry["name"],
                    layer=layer,
                    description=entry["description"],
                    depends_on=tuple(entry.get("depends_on", [])),
                    columns=tuple(_column(c) for c in entry.get("columns", [])),
                    grain=entry.get("grain"),
                    keys=tuple(entry.get("keys", [])),
                    published=bool(entry.get("published", False)),
                    materialized=entry.get("materialized", "table"),
                    unique_key=entry.get("unique_key"),
                    incremental_predicates=tuple(entry.get("incremental_predicates", [])),
                )
            )
    for m in declared:
        if m.materialized not in MATERIALIZATIONS:
            raise ValueError(f"{m.name}: materialized must be one of {MATERIALIZATIONS}, not {m.materialized!r}")
        if (m.materialized == "incremental") != (m.unique_key is not None):
            raise ValueError(f"{m.name}: an incremental model, and only one, names its unique_key")
        if m.unique_key is not None and m.unique_key not in INCREMENTAL_KEYS:
            raise ValueError(f"{m.name}: unique_key must be one of {sorted(INCREMENTAL_KEYS)}")
        if m.incremental_predicates and m.materialized != "incremental":
            raise ValueError(f"{m.name}: only an incremental model has incremental_predicates")
    return tuple(declared)


@cache
def models() -> tuple[Model, ...]:
    """Every model in an order that builds each after what it depends on.

    Kahn's algorithm, always taking the first ready model in layer and file order, so the order is stable and
    reads like the folders. A dependency on a store table (a source) is satisfied from the start.
    """
    pending = list(_declared())
    names = {m.name for m in pending}
    unknown = {(m.name, d) for m in pending for d in m.depends_on if d not in names and d not in sources()}
    if unknown:
        raise ValueError(f"models depend on what is neither a model nor a source: {sorted(unknown)}")
    done: set[str] = set()
    ordered: list[Model] = []
    while pending:
        ready = next((m for m in pending if all(d in done or d not in names for d in m.depends_on)), None)
        if ready is None:
            raise ValueError(f"models depend on each other in a circle: {sorted(m.name for m in pending)}")
        pending.remove(ready)
        done.add(ready.name)
        ordered.append(ready)
    return tuple(ordered)


def model(name: str) -> Model:
    for candidate in models():
        if candidate.name == name:
            return candidate
    raise KeyError(f"no model {name!r}")


@cache
def published() -> dict[str, tuple[str, ...]]:
    """The rollups published to the central layer -> the key of a row within them, in models.yml order.

    The same dict object on every call (so that a test can take a rollup out of the whole installation for a
    while, as an older release would have had it); callers must not change it otherwise.
    """
    return {m.name: m.keys for m in _declared() if m.published}


def column_docs(table: str) -> dict[str, Column]:
    """A model's columns with their descriptions and units, in the table's column order."""
    return {c.name: c for c in model(table).columns}


@cache
def rules() -> dict[str, str]:
    """The rules every rollup follows (`rules.md`: the day rule, the USD rule, ...) by title, as Markdown.

    Kept beside the models rather than only in docs/models.md so that what is served to analysts (the data
    dictionary) is read from the package; a test keeps docs/models.md saying the same.
    """
    text = (root() / "rules.md").read_text()
    sections = re.split(r"^## (.+)$", text, flags=re.MULTILINE)[1:]
    return {title.strip(): body.strip() for title, body in zip(sections[::2], sections[1::2], strict=True)}


def model_files() -> list[Path]:
    """Every model's SQL file, in build order."""
    return [m.path for m in models()]


def seed(name: str) -> Path:
    return root() / "seeds" / f"{name}.csv"


def fingerprint() -> str:
    """A short hash of every model, models.yml and seed file: a changed model makes the next publish build again."""
    import hashlib

    digest = hashlib.sha256()
    files = [
        *(root() / layer / "models.yml" for layer in LAYERS),
        *model_files(),
        *sorted((root() / "seeds").glob("*.csv")),
    ]
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


#: The published rollups and their keys. An alias of `published()` (the same dict) for code written before
#: models.yml; new code calls `published()`.
PUBLISHED = published()
