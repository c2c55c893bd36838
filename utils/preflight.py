"""What must hold beyond valid values before the dashboard or the API can serve: checked by ``python -m
utils.config`` (the services' ``ExecStartPre``), by the dashboard at its start and by the API's ``/health``.

Each check returns a list of problems, each naming the setting and what to do; an empty list means ready.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from utils.config import Settings


def logfile_problems(settings: Settings) -> list[str]:
    """LOGFILE can be opened for appending (its folder is created as the logging set-up would)."""
    if settings.LOGFILE is None:
        return []
    path = Path(settings.LOGFILE).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a"):
            pass
    except OSError as err:
        return [f"LOGFILE={path}: cannot write the log there ({err.strerror or err}). Choose a writable file, e.g. "
                "/var/log/extract-unique-images/dashboard.log owned by the service user."]
    return []


def store_problems(settings: Settings) -> list[str]:
    """EXPORT_DIR is writable and the database opens (schema in place)."""
    from utils.files import temp_path_for
    from utils.storage import StorageError, Store

    export = Path(settings.EXPORT_DIR)
    try:
        export.mkdir(parents=True, exist_ok=True)
        probe = temp_path_for(export / "write-check")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        return [f"EXPORT_DIR={export}: cannot write there ({err.strerror or err}). Make it writable by this user "
                "(and not on a read-only file system)."]
    try:
        path = settings.database_path
        store = Store(export, path, url=None if path is not None else settings.database_url)
    except StorageError as err:
        return [f"{err} (EXPORT_DIR / DATABASE_URL)"]
    store.close()
    return []


def _networks(values: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(v, strict=False) for v in values]


def forwarded_problems(settings: Settings, environ: dict[str, str] | None = None) -> list[str]:
    """The web servers must not believe X-Forwarded-For from more hosts than TRUSTED_PROXIES lists.

    uvicorn (under Streamlit too) reads ``FORWARDED_ALLOW_IPS`` from the environment; ``*`` there (common in
    container images) would let any client choose the address the dashboard and the API see.
    """
    env = os.environ if environ is None else environ
    raw = env.get("FORWARDED_ALLOW_IPS")
    if raw is None:
        return []
    listed = [v.strip() for v in raw.split(",") if v.strip()]
    trusted = _networks(settings.TRUSTED_PROXIES)
    extra = []
    for item in listed:
        try:
            net = ipaddress.ip_network(item, strict=False)
        except ValueError:
            extra.append(item)  # "*" or a host name: more than we can check
            continue
        if not any(net.subnet_of(t) for t in trusted if t.version == net.version):
            extra.append(item)
    if not extra:
        return []
    return [f"FORWARDED_ALLOW_IPS={raw} makes the web server believe X-Forwarded-For from {', '.join(extra)}, which "
            "TRUSTED_PROXIES does not list: any client there could choose the address the dashboard sees (and the "
            "API's loopback rule). Unset FORWARDED_ALLOW_IPS, and list your reverse proxy in TRUSTED_PROXIES."]


def all_problems(settings: Settings) -> list[str]:
    """Every problem that stops the dashboard or the API from serving."""
    return logfile_problems(settings) + store_problems(settings) + forwarded_problems(settings)
