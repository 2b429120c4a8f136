"""`kanda orphans` on the scale-out shape: a PostgreSQL catalog and an S3 bucket (moto)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from kanda.central.catalog import NAMESPACE, open_catalog
from kanda.central.orphans import find_orphans, remove_orphans
from tests.central.test_orphans import every_publication, leave_orphan, published_twice
from tests.deploy.conftest import Installation


def test_orphans_in_the_bucket_of_a_postgresql_catalog(
    installation: Installation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """On S3 (moto) the age of a file is its upload time, which cannot be set: the check looks from two days on."""
    settings = installation.host(tmp_path / "host", monkeypatch)
    published_twice(settings)
    before = every_publication(settings)
    orphan = leave_orphan(settings, "killed.parquet")
    catalog = open_catalog(settings)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    assert find_orphans(catalog, older_than=dt.timedelta(days=3), now=later) == []  # not old enough yet
    (found,) = find_orphans(catalog, older_than=dt.timedelta(days=1), now=later)
    assert (found.table, f"s3://{found.path}") == (f"{NAMESPACE}.creator_daily", orphan)
    assert remove_orphans(catalog, [found]) == 1
    assert f"{orphan.removeprefix(f's3://{installation.store.bucket}/')}" not in installation.store.object_keys()
    assert find_orphans(catalog, older_than=dt.timedelta(days=1), now=later) == []
    assert every_publication(settings) == before
