"""The central archive the archive tests sync into, as fixtures: ``archive`` (parametrized: SQLite + a folder, and
PostgreSQL + SeaweedFS from :mod:`tests.servers`) and ``real`` (PostgreSQL + SeaweedFS only, for fault tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from utils.archive.central import CentralArchive
from utils.archive.objects import open_object_store
from utils.archive.sync import Syncer
from utils.storage import Store


@dataclass
class Archive:
    """Where the stations sync to: a database URL and an object store, with their servers (for faults)."""

    url: str
    storage_url: str
    objects_kw: dict[str, Any]
    db_server: Any = None  # tests.servers.PostgresServer where real
    s3_server: Any = None  # tests.servers.S3Server where real

    def central(self) -> CentralArchive:
        return CentralArchive(self.url)

    def objects(self) -> Any:
        return open_object_store(self.storage_url, **self.objects_kw)

    def syncer(self, store: Store, station: str, **kw: Any) -> Syncer:
        return Syncer(store, archive=self.central, objects=self.objects, station=station,
                      interval_s=kw.pop("interval_s", 0.2), backoff_max_s=kw.pop("backoff_max_s", 1.0), **kw)


@pytest.fixture(params=["sqlite+folder", "postgresql+s3"])
def archive(request, tmp_path) -> Archive:
    if request.param == "sqlite+folder":
        return Archive(f"sqlite:///{tmp_path / 'central.sqlite3'}", str(tmp_path / "objects"), {})
    return real_archive(request)


def real_archive(request) -> Archive:
    """PostgreSQL and SeaweedFS, started by the fixtures of tests/servers.py (skipped where they cannot run)."""
    db = request.getfixturevalue("postgres_server")
    url = request.getfixturevalue("postgres_url")
    bucket = request.getfixturevalue("s3_bucket")
    s3 = bucket.server
    kw = {"endpoint_url": s3.endpoint, "access_key": s3.access_key, "secret_key": s3.secret_key,
          "region": "us-east-1"}
    return Archive(url, f"s3://{bucket.name}/plant", kw, db_server=db, s3_server=s3)


@pytest.fixture()
def real(request) -> Archive:
    return real_archive(request)
