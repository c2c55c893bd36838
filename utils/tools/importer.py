"""Importing images from a web page into a collection (an order of kind ``import``).

Two steps for the dashboard: :func:`preview_page` scans the page and fetches its images (every limit of
:mod:`utils.tools.web_import`: guarded client, robots.txt, caps, decode limits) into a staging folder with a
thumbnail each, so the user picks from a grid without anything held in the session; :func:`import_staged` keeps the
chosen ones in the collection with their source URL. The HTTP API does both at once (:func:`import_page`).
Staging folders live in ``EXPORT_DIR/.capture/import-staging`` and are removed after the import or a day later.
"""

from __future__ import annotations

import io
import logging
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from utils.config import Settings
from utils.storage import PRIVATE_FOLDER, ImageRecord, Store, StorageError, utc_now
from utils.tools.web_import import FetchedCandidate, fetch_candidates, scan_page

logger = logging.getLogger(__name__)

STAGING_FOLDER = "import-staging"
STAGING_MAX_AGE_S = 86400
THUMB_SIDE = 240
_SUFFIX = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif",
           "image/bmp": ".bmp", "image/tiff": ".tif", "image/avif": ".avif"}


@dataclass(frozen=True)
class Candidate:
    """One image the page names: where it was found, and either its size and staged file or why it failed."""

    url: str
    source: str
    width: int | None = None
    height: int | None = None
    size: int | None = None
    content_type: str | None = None
    error: str | None = None
    thumbnail: bytes | None = None  # JPEG, THUMB_SIDE pixels at most
    staged: Path | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.staged is not None


@dataclass(frozen=True)
class PagePreview:
    """What a page offers: its images (fetched and staged, or failed) and a message when it offers none."""

    page_url: str
    final_url: str
    message: str | None
    candidates: list[Candidate]
    staging: Path | None


@dataclass
class ImportResult:
    """What an import kept and what it left, with why."""

    collection_id: int | None
    saved: list[ImageRecord] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (url, reason)


def staging_root(store: Store) -> Path:
    return store.export_dir / PRIVATE_FOLDER / STAGING_FOLDER


def _thumbnail(data: bytes) -> bytes | None:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (THUMB_SIDE, THUMB_SIDE))
            img.thumbnail((THUMB_SIDE, THUMB_SIDE))
            out = io.BytesIO()
            img.convert("RGB").save(out, format="JPEG", quality=80)
            return out.getvalue()
    except Exception:  # noqa: BLE001 - the image decoded before (fetch_candidates); a thumbnail is optional
        return None


def _fetch(settings: Settings, urls: list[str]) -> list[FetchedCandidate]:
    return fetch_candidates(urls, timeout=settings.URL_FETCH_TIMEOUT, max_bytes=settings.UPLOAD_MAX_BYTES,
                            max_total_bytes=settings.IMPORT_MAX_TOTAL_BYTES, allow_private=settings.URL_ALLOW_PRIVATE,
                            parallel=settings.IMPORT_PARALLEL, respect_robots=settings.IMPORT_RESPECT_ROBOTS)


def _scan(settings: Settings, url: str):  # noqa: ANN202 - web_import.PageScan
    return scan_page(url, timeout=settings.URL_FETCH_TIMEOUT, allow_private=settings.URL_ALLOW_PRIVATE,
                     max_images=settings.IMPORT_MAX_IMAGES)


def clean_staging(store: Store, max_age_s: float = STAGING_MAX_AGE_S) -> int:
    """Remove staging folders older than ``max_age_s``; returns how many."""
    root = staging_root(store)
    removed = 0
    for folder in root.iterdir() if root.is_dir() else ():
        try:
            if time.time() - folder.stat().st_mtime > max_age_s:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


def preview_page(store: Store, settings: Settings, url: str) -> PagePreview:
    """Scan the page at ``url`` and fetch its images into a new staging folder. Raises
    :class:`utils.tools.web_import.WebImportError` when the page itself cannot be used."""
    clean_staging(store)
    scan = _scan(settings, url)
    if not scan.found:
        return PagePreview(scan.page_url, scan.final_url, scan.message, [], None)
    fetched = _fetch(settings, [f.url for f in scan.found])
    staging = staging_root(store) / secrets.token_hex(8)
    staging.mkdir(parents=True)
    candidates = []
    for i, (found, got) in enumerate(zip(scan.found, fetched)):
        if got.error or got.data is None:
            candidates.append(Candidate(found.url, found.source, error=got.error or "no data"))
            continue
        path = staging / f"{i:04d}{_SUFFIX.get(got.content_type or '', '.img')}"
        path.write_bytes(got.data)
        candidates.append(Candidate(found.url, found.source, got.width, got.height, got.size, got.content_type,
                                    None, _thumbnail(got.data), path))
    logger.info("Web import: %s offers %d image(s), %d fetched", scan.final_url, len(candidates),
                sum(c.ok for c in candidates))
    return PagePreview(scan.page_url, scan.final_url, scan.message, candidates, staging)


def _known_urls(store: Store, collection_id: int) -> set[str]:
    return {r.source_url for r in store.images(collection_id) if r.source_url}


def _keep(store: Store, result: ImportResult, order, url: str, data: bytes,  # noqa: ANN001 - OrderRecord
          content_type: str | None, width: int | None, height: int | None, known: set[str]) -> None:
    if url in known:
        result.skipped.append((url, "already in the collection"))
        return
    try:
        rec = store.save_image(order, data, None, utc_now(), width=width, height=height,
                               suffix=_SUFFIX.get(content_type or "", ".jpg"), kind="import", source_url=url)
    except StorageError as err:
        result.skipped.append((url, str(err)))
        return
    known.add(url)
    result.saved.append(rec)


def import_staged(store: Store, collection: str, preview: PagePreview, chosen: list[str],
                  max_length: int = 64) -> ImportResult:
    """Keep the chosen staged images (by URL) in the collection ``collection``; the staging folder is removed.

    Raises :class:`utils.storage.OrderNumberError` for a bad collection name."""
    order, _ = store.open_order(collection, kind="import", max_length=max_length)
    result = ImportResult(order.id)
    known = _known_urls(store, order.id)
    by_url = {c.url: c for c in preview.candidates}
    try:
        for url in chosen:
            cand = by_url.get(url)
            if cand is None or not cand.ok:
                result.skipped.append((url, cand.error if cand and cand.error else "not offered by the page"))
                continue
            try:
                data = cand.staged.read_bytes()  # type: ignore[union-attr]
            except OSError as err:
                result.skipped.append((url, f"the fetched copy is gone ({err.strerror}); find the images again"))
                continue
            _keep(store, result, order, url, data, cand.content_type, cand.width, cand.height, known)
    finally:
        if preview.staging is not None:
            shutil.rmtree(preview.staging, ignore_errors=True)
    logger.info("Web import into %s: %d kept, %d skipped", collection, len(result.saved), len(result.skipped))
    return result


def import_page(store: Store, settings: Settings, url: str, collection: str,
                select: list[str] | None = None) -> tuple[PagePreview, ImportResult]:
    """Scan ``url`` and keep its images (``select``: only these URLs among those found) in ``collection``, in one
    call (the HTTP API). Raises WebImportError for the page, OrderNumberError for the name."""
    from utils.storage import validate_order_number

    validate_order_number(collection, settings.ORDER_NUMBER_MAX_LENGTH)
    scan = _scan(settings, url)
    wanted = [f for f in scan.found if select is None or f.url in set(select)]
    result = ImportResult(None)
    if select is not None:
        offered = {f.url for f in scan.found}
        result.skipped += [(u, "not offered by the page") for u in select if u not in offered]
    if not wanted:
        return PagePreview(scan.page_url, scan.final_url, scan.message, [], None), result
    fetched = _fetch(settings, [f.url for f in wanted])
    order, _ = store.open_order(collection, kind="import", max_length=settings.ORDER_NUMBER_MAX_LENGTH)
    result.collection_id = order.id
    known = _known_urls(store, order.id)
    candidates = []
    for found, got in zip(wanted, fetched):
        candidates.append(Candidate(found.url, found.source, got.width, got.height, got.size, got.content_type,
                                    got.error))
        if got.error or got.data is None:
            result.skipped.append((found.url, got.error or "no data"))
            continue
        _keep(store, result, order, found.url, got.data, got.content_type, got.width, got.height, known)
    return PagePreview(scan.page_url, scan.final_url, scan.message, candidates, None), result
