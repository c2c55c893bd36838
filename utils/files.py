"""Crash-safe file writes: a temporary file in the same folder, fsync, then an atomic rename."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

TMP_MARK = ".tmp-"


def temp_path_for(path: Path) -> Path:
    """A hidden temporary name beside ``path`` with the same suffix (recognised and cleaned by recovery)."""
    return path.with_name(f".{path.stem}{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")


def is_temp_file(path: Path) -> bool:
    return path.name.startswith(".") and TMP_MARK in path.name


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` so that readers see the old state or the whole new file, never a part.

    Raises ``FileExistsError`` if ``path`` exists and ``overwrite`` is false; on any error
    the temporary file is removed.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists already")
    tmp = temp_path_for(path)
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if path appeared meanwhile: never clobbers a kept image
            except FileExistsError:
                raise
            except OSError:  # file systems without hard links
                os.replace(tmp, path)
            else:
                os.unlink(tmp)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)
