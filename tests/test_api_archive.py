"""The HTTP API's /archive routes on a real central database and object store filled by real syncs (SQLite and a
folder; PostgreSQL and SeaweedFS), served by a real uvicorn on loopback, in APP_MODE=central."""

from __future__ import annotations

import io
import zipfile

import pytest
import requests

import api
from tests.archive_fixtures import Archive
from tests.test_api import TOKEN, serve, settings_for
from tests.test_archive_sync import capture, drain, station_store
from utils.archive.indexer import stop_all_central_indexers


@pytest.fixture(autouse=True)
def _stop_indexers():
    """The central API starts the archive's statistics thread: stopped after each test."""
    yield
    stop_all_central_indexers()


def fill(archive: Archive, tmp_path) -> dict:
    """pack-1 and pack-2 both ran ORD-1 (2 and 3 images); returns the stores."""
    stores = {}
    for name, n, start in (("pack-1", 2, 0), ("pack-2", 3, 10)):
        stores[name] = station_store(tmp_path, name)
        capture(stores[name], "ORD-1", n, start)
        drain(archive.syncer(stores[name], name))
    return stores


def central_settings(archive: Archive, tmp_path, **extra):
    kw = archive.objects_kw
    env = {"APP_MODE": "central", "CENTRAL_DATABASE_URL": archive.url, "STORAGE_URL": archive.storage_url,
           "API_TOKEN": TOKEN, **extra}
    if kw:
        env |= {"S3_ENDPOINT_URL": kw["endpoint_url"], "S3_ACCESS_KEY_ID": kw["access_key"],
                "S3_SECRET_ACCESS_KEY": kw["secret_key"]}
    return settings_for(tmp_path / "central-export", **env)


def test_every_station_of_an_order_and_its_files_over_the_api(archive, tmp_path):
    stores = fill(archive, tmp_path)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with serve(api.create_app(central_settings(archive, tmp_path))) as (base, _):
        assert requests.get(f"{base}/archive/stations", timeout=10).status_code == 401  # same auth rules
        names = [s["name"] for s in requests.get(f"{base}/archive/stations", headers=auth, timeout=10).json()]
        assert names == ["pack-1", "pack-2"]
        runs = requests.get(f"{base}/archive/orders", params={"order_number": "ORD-1"}, headers=auth,
                            timeout=10).json()
        assert sorted((r["station"], r["n_images"]) for r in runs) == [("pack-1", 2), ("pack-2", 3)]
        order = requests.get(f"{base}/archive/orders/by-number/ORD-1", headers=auth, timeout=10).json()
        assert order["stations"] == ["pack-1", "pack-2"] and len(order["images"]) == 5
        local = {(name, r.file_name): r.path.read_bytes() for name, s in stores.items()
                 for o in s.list_orders() for r in s.images(o.id)}
        for img in order["images"]:
            r = requests.get(base + img["file_url"], headers=auth, timeout=10)
            assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
            assert r.content == local[(img["station"], img["file_name"])]
        r = requests.get(f"{base}/archive/images/{order['images'][0]['id']}/file", params={"redirect": "true"},
                         headers=auth, timeout=10, allow_redirects=False)
        if archive.s3_server is None:
            assert r.status_code == 409  # a folder has no presigned URLs
        else:
            assert r.status_code == 307 and requests.get(r.headers["location"], timeout=10).content == \
                local[(order["images"][0]["station"], order["images"][0]["file_name"])]
        z = requests.get(f"{base}/archive/orders/by-number/ORD-1/zip", headers=auth, timeout=30)
        with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
            assert sorted(n.split("/")[0] for n in zf.namelist() if n != "images.csv") == ["pack-1"] * 2 + \
                ["pack-2"] * 3
        assert requests.get(f"{base}/archive/orders/by-number/NOPE", headers=auth, timeout=10).status_code == 404
        assert requests.get(f"{base}/archive/images/999999", headers=auth, timeout=10).status_code == 404
        station_route = requests.get(f"{base}/orders", headers=auth, timeout=10)  # no station's orders here
        assert station_route.status_code == 404 and "/archive/orders" in station_route.json()["detail"]
        if archive.db_server is not None:  # the central database down: 503 with the reason, back when it is
            archive.db_server.stop()
            try:
                r = requests.get(f"{base}/archive/orders", headers=auth, timeout=30)
                assert r.status_code == 503 and "cannot reach the central database" in r.json()["detail"]
            finally:
                archive.db_server.start()
            assert requests.get(f"{base}/archive/orders", headers=auth, timeout=30).status_code == 200
