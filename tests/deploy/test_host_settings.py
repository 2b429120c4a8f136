"""What a host is told through its environment: object-store properties and the regions it serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kanda.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_standard_aws_variables_reach_pyiceberg_and_kanda_catalog_properties_override_them(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://objects.internal:9000")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3.internal:9000")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("KANDA_CATALOG_PROPERTIES", json.dumps({"s3.region": "af-south-1", "s3.connect-timeout": 5}))
    properties = dict(load_settings().catalog_properties)
    assert properties == {
        "s3.endpoint": "http://s3.internal:9000",
        "s3.access-key-id": "key",
        "s3.secret-access-key": "secret",
        "s3.region": "af-south-1",
        "s3.connect-timeout": "5",
    }


def test_catalog_properties_that_are_not_a_json_object_are_named(monkeypatch):
    monkeypatch.setenv("KANDA_CATALOG_PROPERTIES", "s3.region=eu-west-1")
    with pytest.raises(ValueError, match="KANDA_CATALOG_PROPERTIES"):
        load_settings()


def test_a_code_location_offers_sensors_and_schedules_only_for_the_regions_its_host_serves(tmp_path: Path):
    script = (
        "from pipelines.definitions import defs\n"
        "import json\n"
        "print(json.dumps(sorted([s.name for s in defs.sensors] + [s.name for s in defs.schedules])))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KANDA_HOME": str(tmp_path / "home"), "KANDA_REGIONS": "ke"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    names = json.loads(out.stdout.strip().splitlines()[-1])
    regional = [n for n in names if n[:3].rstrip("_") in {"eg", "gh", "ke", "ng", "tz", "pk", "bd"}]
    assert regional and all(n.startswith("ke_") for n in regional), names
