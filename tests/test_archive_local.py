"""A station's own copies of archived images (ARCHIVE_LOCAL_KEEP_DAYS): removed only when the archive has the same
bytes, read back from the archive by the gallery's readers, the ZIP and the tools, fetched back for the editor; on
SQLite + a folder and on PostgreSQL + SeaweedFS."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import pytest

from tests.archive_fixtures import Archive
from tests.test_archive_sync import capture, drain, jpeg
from utils.archive.local import key_of, remove_archived_copies
from utils.config import load_settings
from utils.exports import order_zip_chunks
from utils.jobs import default_jobs
from utils.storage import Store, _ts, store_for, utc_now
from utils.tools.service import edit


def station_settings(archive: Archive, tmp_path, **extra):
    kw = archive.objects_kw
    env = {"EXPORT_DIR": str(tmp_path / "pack-1"), "STATION_NAME": "pack-1", "CENTRAL_DATABASE_URL": archive.url,
           "STORAGE_URL": archive.storage_url, "JOBS_ENABLED": "false", **extra}
    if kw:
        env |= {"S3_ENDPOINT_URL": kw["endpoint_url"], "S3_ACCESS_KEY_ID": kw["access_key"],
                "S3_SECRET_ACCESS_KEY": kw["secret_key"]}
    return load_settings(env)


def age(store: Store, days: float) -> None:
    """Pretend the archive confirmed every image ``days`` ago."""
    with store._tx() as con:
        con.execute("UPDATE images SET synced_at = ? WHERE synced_at IS NOT NULL", (_ts(utc_now() - timedelta(days=days)),))


@pytest.fixture()
def station(archive, tmp_path):
    settings = station_settings(archive, tmp_path, ARCHIVE_LOCAL_KEEP_DAYS="7")
    store = store_for(settings)
    kept = capture(store, "OLD-1", 3)
    store.close_order(kept[0].order_id)
    running = capture(store, "RUN-1", 1, start=50)  # an open order: its copies stay
    drain(archive.syncer(store, "pack-1"))
    return settings, store, kept, running


def test_copies_go_only_after_the_days_and_come_back_from_the_archive(archive, station):
    settings, store, kept, running = station
    original = {r.id: r.path.read_bytes() for r in [*kept, *running]}
    assert remove_archived_copies(store, settings).startswith("0 local copies removed")  # sent just now
    age(store, 8)
    result = remove_archived_copies(store, settings)
    assert result.startswith("3 local copies removed") and "kept" not in result
    assert not any(r.path.exists() for r in kept) and running[0].path.exists()
    for rec in kept:
        now = store.get_image(rec.id)
        assert now.local_removed_at is not None and store.read_image(now) == original[rec.id]
    order = store.get_order(kept[0].order_id)
    with zipfile.ZipFile(io.BytesIO(b"".join(order_zip_chunks(store, order)))) as zf:
        assert {zf.read(f"OLD-1/{r.file_name}") for r in kept} == {original[r.id] for r in kept}
    # a tool reads it from the archive; the editor fetches the file back, kept here another 7 days
    version = edit(store, settings, kept[0].id, [{"op": "flip", "axis": "horizontal"}])
    assert version.path.is_file() and version.source_image_id == kept[0].id
    back = store.restore_local_copy(store.get_image(kept[1].id))
    assert back.path.read_bytes() == original[kept[1].id] and back.local_removed_at is None
    assert remove_archived_copies(store, settings).startswith("0 local copies removed")


def test_a_copy_stays_when_the_archive_lacks_it_or_differs(archive, station):
    settings, store, kept, _ = station
    objects = archive.objects()
    objects.delete(key_of(store, kept[0], "pack-1"))
    other = io.BytesIO(jpeg(99))
    path = store.export_dir / "other.jpg"
    path.write_bytes(other.getvalue())
    objects.put_file(key_of(store, kept[1], "pack-1"), path)  # a different object under its key
    age(store, 8)
    result = remove_archived_copies(store, settings)
    assert result.startswith("1 local copies removed") and "2 kept" in result
    assert kept[0].path.exists() and kept[1].path.exists() and not kept[2].path.exists()


def test_the_job_runs_only_where_it_is_set(archive, tmp_path):
    names = [j.name for j in default_jobs(Store(tmp_path / "a"), station_settings(archive, tmp_path))]
    assert "local_copies" not in names  # default: every local copy is kept
    on = station_settings(archive, tmp_path, ARCHIVE_LOCAL_KEEP_DAYS="30")
    assert "local_copies" in [j.name for j in default_jobs(Store(tmp_path / "b"), on)]


def test_an_unreachable_archive_is_a_clear_error_and_nothing_is_lost(real, tmp_path):
    settings = station_settings(real, tmp_path, ARCHIVE_LOCAL_KEEP_DAYS="1")
    store = store_for(settings)
    kept = capture(store, "OLD-2", 1)
    store.close_order(kept[0].order_id)
    drain(real.syncer(store, "pack-1"))
    age(store, 2)
    assert remove_archived_copies(store, settings).startswith("1 local copies removed")
    real.s3_server.stop()
    try:
        with pytest.raises(OSError, match="only in the central archive"):
            store.read_image(store.get_image(kept[0].id))
    finally:
        real.s3_server.start()
    assert store.read_image(store.get_image(kept[0].id)) == jpeg(0)
