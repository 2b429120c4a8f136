"""Instance plumbing referenced from the repo-root `dagster.yaml`, and the instance kanda's CLI reports to.

Dagster's YAML can read an environment variable but cannot default it, and `dagster dev` loads the repo's `.env`
over the shell's variables. So the storage classes here resolve the data directory the way kanda does
(`KANDA_HOME`, else `./.kanda`): the shell's `KANDA_HOME` wins, and no `.env` is needed. Run history, event logs,
schedules and step logs then live inside the same data directory as the stores they describe.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, Field
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager
from dagster._core.storage.root import LocalArtifactStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClassData

#: Where the instance config lives: the repo root (beside pyproject.toml), unless DAGSTER_HOME says otherwise.
REPO_ROOT = Path(__file__).resolve().parents[1]


def kanda_home() -> Path:
    """The data directory, resolved exactly like `kanda.settings.load_settings` does."""
    return Path(os.environ.get("KANDA_HOME", ".kanda")).expanduser().resolve()


class KandaStorage(DagsterSqliteStorage):
    """Runs, event logs and schedules in SQLite files under `$KANDA_HOME` (history/, schedules/)."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]) -> KandaStorage:
        return cls.from_local(str(kanda_home()), inst_data=inst_data)


class KandaArtifactStorage(LocalArtifactStorage):
    """Dagster's local artifacts under `$KANDA_HOME`."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> KandaArtifactStorage:
        return cls(str(kanda_home()), inst_data=inst_data)


class KandaComputeLogManager(LocalComputeLogManager):
    """Step stdout/stderr under `$KANDA_HOME/<subdir>` (default `storage`), kept across `dagster dev` restarts."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"subdir": Field(str, is_required=False, default_value="storage")}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> KandaComputeLogManager:
        return cls(base_dir=str(kanda_home() / config_value["subdir"]), inst_data=inst_data)


def config_dir() -> Path:
    """The folder holding the `dagster.yaml` that `dagster dev` uses: DAGSTER_HOME if set, else the repo root."""
    given = os.environ.get("DAGSTER_HOME")
    return Path(given) if given and (Path(given) / "dagster.yaml").exists() else REPO_ROOT


@cache
def kanda_instance(home: Path) -> DagsterInstance:
    """The Dagster instance whose storage is under `home`, as `dagster dev` would open it for that KANDA_HOME."""
    previous = os.environ.get("KANDA_HOME")
    os.environ["KANDA_HOME"] = str(home)
    try:
        instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home), config_dir=str(config_dir())))
        instance.get_runs(limit=1)  # storage classes are built lazily: build them while KANDA_HOME is `home`
        instance.get_dynamic_partitions("kanda_probe")
        return instance
    finally:
        if previous is None:
            os.environ.pop("KANDA_HOME", None)
        else:
            os.environ["KANDA_HOME"] = previous
