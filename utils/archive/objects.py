"""Where image files live centrally: one ``ObjectStore`` interface over a local folder or an S3-compatible store.

Keys are relative, slash-separated paths (``station/2024/05/01/frame.png``); ``..``, ``.``, empty segments,
absolute keys, backslashes and control characters are refused with ``ValueError``. Uploads are integrity
checked: the MD5 of the file is computed first and S3 uploads send it as ``Content-MD5``, so the server refuses
bytes that do not match; the local store compares it with the bytes it wrote before the atomic rename.

Errors are ``ObjectStoreError`` with a message that says what to do; ``ObjectStoreUnavailable`` (a subclass)
means the store could not be reached or was not ready, which a caller treats as transient (back off, retry).
Secrets never appear in messages or logs.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit, urlunsplit

from utils.files import fsync_dir, is_temp_file, temp_path_for

log = logging.getLogger(__name__)

CHUNK = 1 << 20
MAX_KEY_BYTES = 1024
MAX_PRESIGN_S = 7 * 24 * 3600  # the longest a signature-v4 presigned URL may live
_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")
ACCEPTED_URLS = "s3://bucket[/prefix], file:///absolute/folder or a plain folder path"


class ObjectStoreError(RuntimeError):
    """The object store cannot do what was asked; the message says what to change."""


class ObjectStoreUnavailable(ObjectStoreError):
    """The object store could not be reached or was not ready: transient, back off and retry."""


class ObjectNotFound(ObjectStoreError):
    """No object under that key."""


@dataclass(frozen=True)
class ObjectInfo:
    """What the store knows about one object: its size and checksum."""

    key: str
    size: int
    etag: str
    md5: str | None  # hex MD5 of the bytes, None where the store cannot tell (e.g. a multipart ETag)
    content_type: str | None = None


def validate_key(key: str) -> str:
    """``key`` unchanged if it is a safe relative object key, else ``ValueError`` saying why."""
    if not isinstance(key, str) or not key:
        raise ValueError("an object key must be a non-empty string")
    if "\\" in key:
        raise ValueError(f"object key {key!r} contains a backslash: use '/' between folders")
    if key.startswith("/"):
        raise ValueError(f"object key {key!r} is absolute: keys are relative paths such as 'station/frame.png'")
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise ValueError(f"object key {key!r} contains control characters")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"object key is longer than {MAX_KEY_BYTES} bytes")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise ValueError(f"object key {key!r} has an empty, '.' or '..' segment")
    return key


def _file_md5(path: Path) -> bytes:
    """The MD5 digest of a file, read in chunks (the checksum an upload is verified against)."""
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.digest()


def _redact_url(url: str) -> str:
    """``url`` without any user:password part."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


class _ChunkReader(io.RawIOBase):
    """A read-only stream over an iterator of byte chunks (``ObjectStore.open`` on top of ``read_chunks``)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._rest:
            try:
                self._rest = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        super().close()


class ObjectStore(ABC):
    """Image files by key, in a local folder or an S3 bucket."""

    @abstractmethod
    def put_file(self, key: str, path: Path, content_type: str | None = None) -> str:
        """Store the file at ``path`` under ``key`` (replacing it) and return the stored bytes' MD5 hex.

        Idempotent: the same bytes under the same key again leave one identical object. The bytes are
        verified against the file's MD5; on a mismatch nothing new is stored and ``ObjectStoreError`` is raised.
        """

    @abstractmethod
    def head(self, key: str) -> ObjectInfo | None:
        """Size and checksum of the object under ``key``; None when there is none."""

    @abstractmethod
    def read_chunks(self, key: str, chunk: int = CHUNK) -> Iterator[bytes]:
        """The object's bytes, streamed in chunks of at most ``chunk`` bytes.

        Raises ``ObjectNotFound`` at once (not on the first chunk) when there is no such object.
        """

    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the object (close it after use)."""
        return io.BufferedReader(_ChunkReader(self.read_chunks(key)), buffer_size=CHUNK)  # type: ignore[return-value]

    def read_bytes(self, key: str) -> bytes:
        """The whole object in memory (small objects only)."""
        return b"".join(self.read_chunks(key))

    @abstractmethod
    def url(self, key: str, expires_s: int = 600) -> str | None:
        """A presigned GET URL valid for ``expires_s`` seconds; None where the store has no URLs (local)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object under ``key``; no error when there is none."""

    @abstractmethod
    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """The keys of all objects whose key starts with ``prefix``."""

    @abstractmethod
    def describe(self) -> str:
        """Where the objects are, for messages and logs (never with secrets)."""

    @abstractmethod
    def check(self) -> None:
        """Raise ``ObjectStoreError`` with a clear message when the store cannot be used."""

    def close(self) -> None:
        """Release connections (the store is not used afterwards)."""

    def __enter__(self) -> ObjectStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


# ---------------------------------------------------------------------------------------------- local folder


class LocalObjectStore(ObjectStore):
    """Objects as files below ``root`` (keys are relative paths); writes are atomic and fsynced."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().absolute()
        self._md5_cache: dict[str, tuple[tuple[int, int, int], str]] = {}
        self._lock = threading.Lock()

    def _path(self, key: str) -> Path:
        validate_key(key)
        if is_temp_file(Path(key)):
            raise ValueError(f"object key {key!r} looks like one of the store's temporary files")
        return self.root / key

    def _inside(self, path: Path) -> None:
        """Refuse paths that leave ``root`` through a symbolic link."""
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(path)
        if real != real_root and not real.startswith(real_root + os.sep):
            raise ObjectStoreError(f"{path} leads outside the archive folder {self.root} (symbolic link)")

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> str:
        dest = self._path(key)
        try:
            expected = _file_md5(Path(path))
            dest.parent.mkdir(parents=True, exist_ok=True)
            self._inside(dest.parent)
            tmp = temp_path_for(dest)
            h = hashlib.md5()
            try:
                with open(path, "rb") as src, open(tmp, "xb") as out:
                    for block in iter(lambda: src.read(CHUNK), b""):
                        h.update(block)
                        out.write(block)
                    out.flush()
                    os.fsync(out.fileno())
                if h.digest() != expected:
                    raise ObjectStoreError(
                        f"the bytes written for {key} do not match their MD5 (the file changed or was damaged "
                        f"while it was copied into {self.root}): upload it again"
                    )
                os.replace(tmp, dest)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            fsync_dir(dest.parent)
        except OSError as exc:
            raise ObjectStoreError(f"cannot store {key} in the archive folder {self.root}: {exc}") from exc
        with self._lock:
            self._md5_cache.pop(key, None)
        return h.hexdigest()

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        self._inside(path)
        stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
        with self._lock:
            cached = self._md5_cache.get(key)
        if cached and cached[0] == stamp:
            md5 = cached[1]
        else:
            md5 = _file_md5(path).hex()
            with self._lock:
                self._md5_cache[key] = (stamp, md5)
        return ObjectInfo(key=key, size=st.st_size, etag=md5, md5=md5)

    def read_chunks(self, key: str, chunk: int = CHUNK) -> Iterator[bytes]:
        fh = self.open(key)

        def chunks() -> Iterator[bytes]:
            with fh:
                yield from iter(lambda: fh.read(chunk), b"")

        return chunks()

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            self._inside(path)
            return open(path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(f"no object {key} in {self.describe()}") from None

    def url(self, key: str, expires_s: int = 600) -> str | None:
        validate_key(key)
        return None

    def delete(self, key: str) -> None:
        path = self._path(key)
        self._inside(path.parent)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise ObjectStoreError(f"cannot delete {key} from the archive folder {self.root}: {exc}") from exc
        fsync_dir(path.parent)
        with self._lock:
            self._md5_cache.pop(key, None)

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        if not self.root.is_dir():
            return
        for folder, dirs, files in os.walk(self.root):
            dirs.sort()
            rel = Path(folder).relative_to(self.root)
            for name in sorted(files):
                if is_temp_file(Path(name)):
                    continue
                key = (rel / name).as_posix()
                if key.startswith(prefix):
                    yield key

    def describe(self) -> str:
        return f"local folder {self.root}"

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ObjectStoreError(f"cannot create the archive folder {self.root}: {exc}") from exc
        if not self.root.is_dir():
            raise ObjectStoreError(f"the archive folder {self.root} is not a folder: choose another path")
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise ObjectStoreError(f"the archive folder {self.root} is not writable: fix its permissions")


# ------------------------------------------------------------------------------------------ S3-compatible store

_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "InvalidToken",
    "ExpiredToken",
    "InvalidClientTokenId",
    "AuthorizationHeaderMalformed",
    "AllAccessDisabled",
    "AccountProblem",
    "403",
}
_TRANSIENT_CODES = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "OperationAborted"}
_DIGEST_CODES = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"}


def _transport_errors() -> tuple[type[Exception], ...]:
    """What botocore and urllib3 raise for refused requests and broken connections."""
    from botocore.exceptions import BotoCoreError, ClientError
    from urllib3.exceptions import HTTPError

    return (ClientError, BotoCoreError, HTTPError)


class S3ObjectStore(ObjectStore):
    """Objects in an S3 bucket (AWS or compatible: SeaweedFS, MinIO, Ceph, Garage), keys ``prefix/key``.

    Non-AWS endpoints use path-style addressing; requests are signed with signature v4 by botocore.
    ``create_bucket`` creates a missing bucket on ``check()`` or on the first upload.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        create_bucket: bool = False,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_attempts: int = 2,
    ) -> None:
        import boto3
        from botocore.config import Config

        if not bucket or "/" in bucket:
            raise ValueError(f"invalid bucket name {bucket!r}")
        prefix = (prefix or "").strip("/")
        if prefix:
            validate_key(prefix)
        if bool(access_key) != bool(secret_key):
            raise ObjectStoreError(
                "set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY (or neither, for the default AWS credentials)"
            )
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url or None
        self.region = region or "us-east-1"
        self.create_bucket = create_bucket
        self._secrets = tuple(s for s in (secret_key,) if s)
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if self.endpoint_url else "auto"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            # Content-MD5 is the integrity check; no streaming (aws-chunked) CRC trailers that S3-compatible
            # servers handle unevenly
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session(
            aws_access_key_id=access_key or None, aws_secret_access_key=secret_key or None, region_name=self.region
        )
        self._client = session.client("s3", endpoint_url=self.endpoint_url, config=config)
        self._bucket_lock = threading.Lock()

    # ----------------------------------------------------------------- helpers

    def _full(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self) -> str:
        return _redact_url(self.endpoint_url) if self.endpoint_url else f"AWS S3 ({self.region})"

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _bucket_missing(self) -> ObjectStoreError:
        return ObjectStoreError(
            f"bucket {self.bucket} does not exist at {self._where()}: create it or set S3_CREATE_BUCKET=true"
        )

    def _error(self, exc: Exception, action: str, key: str | None = None) -> ObjectStoreError:
        """The ``ObjectStoreError`` for a botocore/urllib3 exception raised while trying to ``action``."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError as BotoConnectionError,
            HTTPClientError,
            NoCredentialsError,
        )
        from urllib3.exceptions import HTTPError as Urllib3Error

        where = self._where()
        if isinstance(exc, (BotoConnectionError, HTTPClientError, Urllib3Error)):
            return ObjectStoreUnavailable(
                f"cannot reach the object store at {where} ({type(exc).__name__}) to {action}; will retry"
            )
        if isinstance(exc, NoCredentialsError):
            return ObjectStoreError(
                f"no credentials for the object store at {where}: set S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY"
            )
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code in _CREDENTIAL_CODES or status == 403:
                return ObjectStoreError(
                    f"the object store refused the credentials (S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY) at {where} "
                    f"for bucket {self.bucket} ({code or status}): check the key pair and that it may read and "
                    "write the bucket"
                )
            if code == "NoSuchBucket":
                return self._bucket_missing()
            if key is not None and (code in ("NoSuchKey", "404") or status == 404):
                return ObjectNotFound(f"no object {key} in {self.describe()}")
            if code in _DIGEST_CODES:
                return ObjectStoreError(
                    f"the object store refused the upload of {key}: its bytes do not match their MD5 "
                    f"(Content-MD5, {code}); the file changed or was damaged on the way: upload it again"
                )
            if code in _TRANSIENT_CODES or status >= 500:
                return ObjectStoreUnavailable(
                    f"the object store at {where} is not ready ({code or 'HTTP'} {status}) to {action}; will retry"
                )
            message = self._scrub(str(err.get("Message", "")))
            return ObjectStoreError(
                f"the object store at {where} refused to {action}: {code} (HTTP {status}) {message}".rstrip()
            )
        if isinstance(exc, BotoCoreError):
            return ObjectStoreError(f"object store at {where}, {action}: {self._scrub(str(exc))}")
        return ObjectStoreError(f"object store at {where}, {action}: {type(exc).__name__}")

    def _call(self, action: str, fn, /, *, key: str | None = None, **kwargs):
        """``fn(**kwargs)`` with botocore errors turned into ``ObjectStoreError``."""
        try:
            return fn(**kwargs)
        except _transport_errors() as exc:
            raise self._error(exc, action, key) from exc

    def _make_bucket(self) -> None:
        from botocore.exceptions import ClientError

        kwargs: dict = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._call(f"create bucket {self.bucket}", self._client.create_bucket, **kwargs)
        except ObjectStoreError as err:
            cause = err.__cause__
            code = cause.response.get("Error", {}).get("Code") if isinstance(cause, ClientError) else None
            if code == "BucketAlreadyOwnedByYou":
                return  # another station made it meanwhile
            if code == "BucketAlreadyExists":
                raise ObjectStoreError(
                    f"bucket name {self.bucket} is taken by another account at {self._where()}: choose another"
                ) from cause
            raise
        log.info("created bucket %s at %s", self.bucket, self._where())

    # ----------------------------------------------------------------- interface

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        full = self._full(key)
        path = Path(path)
        try:
            digest = _file_md5(path)
            size = path.stat().st_size
        except OSError as exc:
            raise ObjectStoreError(f"cannot read {path} to upload it as {key}: {exc}") from exc
        extra = {"ContentType": content_type} if content_type else {}
        for attempt in (1, 2):
            try:
                with open(path, "rb") as body:
                    self._client.put_object(
                        Bucket=self.bucket,
                        Key=full,
                        Body=body,
                        ContentLength=size,
                        ContentMD5=base64.b64encode(digest).decode("ascii"),
                        Metadata={"md5": digest.hex()},
                        **extra,
                    )
                break
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code == "NoSuchBucket" and self.create_bucket and attempt == 1:
                    with self._bucket_lock:
                        self._make_bucket()
                    continue
                raise self._error(exc, f"upload {key}", key) from exc
            except BotoCoreError as exc:
                raise self._error(exc, f"upload {key}", key) from exc
            except OSError as exc:
                raise ObjectStoreError(f"cannot read {path} to upload it as {key}: {exc}") from exc
        return digest.hex()

    def head(self, key: str) -> ObjectInfo | None:
        """Size and MD5 (from the ``md5`` metadata written by ``put_file``, else a plain ETag); None when absent
        (also when the bucket is: a HEAD answer has no body to tell them apart; ``check()`` does)."""
        from botocore.exceptions import ClientError

        full = self._full(key)
        try:
            resp = self._client.head_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404 or exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return None
            raise self._error(exc, f"look up {key}", key) from exc
        except _transport_errors() as exc:
            raise self._error(exc, f"look up {key}", key) from exc
        return self._info(key, resp)

    @staticmethod
    def _info(key: str, resp: dict) -> ObjectInfo:
        etag = str(resp.get("ETag", "")).strip('"')
        md5 = (resp.get("Metadata") or {}).get("md5") or (etag if _MD5_HEX.match(etag) else None)
        return ObjectInfo(
            key=key,
            size=int(resp.get("ContentLength", 0)),
            etag=etag,
            md5=md5 if md5 and _MD5_HEX.match(md5) else None,
            content_type=resp.get("ContentType"),
        )

    def read_chunks(self, key: str, chunk: int = CHUNK) -> Iterator[bytes]:
        """Streamed download; the bytes are checked against the stored MD5 at the end when it is known."""
        full = self._full(key)
        resp = self._call(f"download {key}", self._client.get_object, key=key, Bucket=self.bucket, Key=full)
        expected = self._info(key, resp).md5
        body = resp["Body"]

        def chunks() -> Iterator[bytes]:
            h = hashlib.md5()
            try:
                for part in body.iter_chunks(chunk):
                    h.update(part)
                    yield part
            except _transport_errors() as exc:
                raise self._error(exc, f"download {key}", key) from exc
            finally:
                body.close()
            if expected and h.hexdigest() != expected:
                raise ObjectStoreError(f"the downloaded bytes of {key} do not match their MD5: download it again")

        return chunks()

    def url(self, key: str, expires_s: int = 600) -> str | None:
        full = self._full(key)
        if not 1 <= int(expires_s) <= MAX_PRESIGN_S:
            raise ValueError(f"expires_s must be between 1 and {MAX_PRESIGN_S} seconds")
        return self._call(
            f"sign a URL for {key}",
            self._client.generate_presigned_url,
            ClientMethod="get_object",
            Params={"Bucket": self.bucket, "Key": full},
            ExpiresIn=int(expires_s),
        )

    def delete(self, key: str) -> None:
        full = self._full(key)
        try:
            self._call(f"delete {key}", self._client.delete_object, Bucket=self.bucket, Key=full)
        except ObjectNotFound:
            pass

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=base + prefix)
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(base):]
        except _transport_errors() as exc:
            raise self._error(exc, "list objects") from exc

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return f"{where} at {self._where()}"

    def check(self) -> None:
        """The bucket exists (created when ``create_bucket``) and the credentials may use it."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = exc.response.get("Error", {}).get("Code")
            if status != 404 and code != "NoSuchBucket":
                raise self._error(exc, f"open bucket {self.bucket}") from exc
        except BotoCoreError as exc:
            raise self._error(exc, f"open bucket {self.bucket}") from exc
        if not self.create_bucket:
            raise self._bucket_missing()
        with self._bucket_lock:
            self._make_bucket()

    def close(self) -> None:
        close = getattr(self._client, "close", None)
        if close is not None:
            close()


# ----------------------------------------------------------------------------------------------------- opening


def open_object_store(
    url: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    create_bucket: bool = False,
    local_root_base: Path | None = None,
) -> ObjectStore:
    """The store for ``url``: ``s3://bucket[/prefix]``, ``file:///absolute/folder`` or a folder path.

    A relative folder path is taken below ``local_root_base`` (else the working directory). Anything else is a
    ``ValueError`` that lists the accepted forms. Nothing is contacted here: call ``check()``.
    """
    text = (url or "").strip()
    if not text:
        raise ValueError(f"no object store URL given: use {ACCEPTED_URLS}")
    if "://" not in text:
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = Path(local_root_base or Path.cwd()) / path
        return LocalObjectStore(path)
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ValueError(f"unparsable object store URL: use {ACCEPTED_URLS}") from exc
    scheme = parts.scheme.lower()
    if "@" in parts.netloc:
        raise ValueError(
            "credentials do not belong in the object store URL: set S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"object store URL {_redact_url(text)!r} has a query or fragment: use {ACCEPTED_URLS}")
    if scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"object store URL {text!r} names no bucket: use {ACCEPTED_URLS}")
        return S3ObjectStore(
            bucket=parts.netloc,
            prefix=unquote(parts.path).strip("/"),
            endpoint_url=endpoint_url,
            region=region,
            access_key=access_key,
            secret_key=secret_key,
            create_bucket=create_bucket,
        )
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file URL {text!r} names a host: use file:///absolute/folder")
        path = Path(unquote(parts.path))
        if not path.is_absolute() or not parts.path:
            raise ValueError(f"file URL {text!r} is not absolute: use file:///absolute/folder")
        return LocalObjectStore(path)
    raise ValueError(f"unsupported object store URL {_redact_url(text)!r}: use {ACCEPTED_URLS}")


def object_store_for(settings: Any) -> ObjectStore:
    """The object store of the archive settings (STORAGE_URL, S3_*); nothing is contacted until it is used."""
    secret = settings.S3_SECRET_ACCESS_KEY.get_secret_value() if settings.S3_SECRET_ACCESS_KEY else None
    return open_object_store(settings.STORAGE_URL, endpoint_url=settings.S3_ENDPOINT_URL, region=settings.S3_REGION,
                             access_key=settings.S3_ACCESS_KEY_ID, secret_key=secret,
                             create_bucket=settings.S3_CREATE_BUCKET)
