"""Instance plumbing referenced from the repo-root `dagster.yaml` (not used by the code location itself).

Dagster's YAML can read an environment variable but not append a folder to it, and its local compute-log
manager writes one folder per run straight into its base directory. Pointed at `KANDA_HOME`, that would scatter
run-id folders among the stores; this manager puts them in `KANDA_HOME/storage`, where Dagster's default layout
would (`<instance dir>/storage`), beside the run history in `KANDA_HOME/history`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dagster import Field
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager
from dagster._serdes import ConfigurableClassData


class KandaComputeLogManager(LocalComputeLogManager):
    """Step stdout/stderr under `$KANDA_HOME/<subdir>` (default `storage`), kept across `dagster dev` restarts."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"subdir": Field(str, is_required=False, default_value="storage")}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> KandaComputeLogManager:
        home = Path(os.environ.get("KANDA_HOME", ".kanda")).resolve()
        return cls(base_dir=str(home / config_value["subdir"]), inst_data=inst_data)
