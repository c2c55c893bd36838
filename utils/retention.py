"""Retention: keep the order folders within a size or age budget, and say how full the disk is.

When the budget is exceeded (``RETENTION_MAX_GB`` for the size of the order folders, ``RETENTION_MAX_DAYS`` for
their age) the oldest *closed* orders go to the trash (``EXPORT_DIR/.capture/trash``), whole, oldest first, until
the rest fits; an order marked *keep*, an open (running) order and the trash itself are never touched. The trash
is emptied for good by the clean-up job after ``TRASH_DAYS`` (:meth:`utils.storage.Store.purge_trash`), so an
order removed by mistake can be brought back until then.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from utils.config import Settings
from utils.storage import TRASH_FOLDER, OrderRecord, Store, utc_now

logger = logging.getLogger(__name__)

GB = 1_000_000_000
RATE_DAYS = 7  # the fill rate is the bytes kept over this many days
WARN_DAYS_LEFT = 7  # warn when the disk would be full within this many days at that rate


def folder_size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (links are not followed, a vanishing file is skipped)."""
    total = 0
    stack = [Path(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(Path(entry.path))
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total


@dataclass(frozen=True)
class DiskUse:
    """How much the orders take, the trash, the disk; the budget and what to warn about."""

    orders_bytes: int
    trash_bytes: int
    disk_total: int
    disk_free: int
    budget_bytes: int | None
    max_days: float | None
    bytes_per_day: float
    warnings: list[str] = field(default_factory=list)

    @property
    def free_percent(self) -> float:
        return 100.0 * self.disk_free / self.disk_total if self.disk_total else 0.0

    @property
    def days_left(self) -> float | None:
        """Days until the disk is full at the recent rate (None: nothing was kept lately)."""
        return self.disk_free / self.bytes_per_day if self.bytes_per_day > 0 else None


def _recent_rate(store: Store, now: datetime) -> float:
    since = now - timedelta(days=RATE_DAYS)
    rows = store._query(  # noqa: SLF001 - one aggregate over the images table
        "SELECT COALESCE(SUM(size_bytes), 0) FROM images WHERE captured_at >= ? AND state = 'ok'",
        (since.isoformat(timespec="microseconds"),))
    return float(rows[0][0]) / RATE_DAYS


def disk_use(store: Store, settings: Settings, now: datetime | None = None) -> DiskUse:
    """Measure the order folders, the trash and the disk of EXPORT_DIR, with the warnings to show."""
    now = now or utc_now()
    orders = store.list_orders()
    order_bytes = sum(folder_size(o.folder) for o in orders)
    in_order_trash = sum(folder_size(o.folder / TRASH_FOLDER) for o in orders)
    trash = folder_size(store.trash_dir) + in_order_trash
    usage = shutil.disk_usage(store.export_dir)
    budget = int(settings.RETENTION_MAX_GB * GB) if settings.RETENTION_MAX_GB else None
    rate = _recent_rate(store, now)
    warnings = []
    free_pct = 100.0 * usage.free / usage.total if usage.total else 0.0
    if free_pct < settings.DISK_WARN_FREE_PERCENT:
        warnings.append(
            f"The disk of {store.export_dir} is {100 - free_pct:.0f} % full ({usage.free / GB:.1f} GB free, less "
            f"than DISK_WARN_FREE_PERCENT={settings.DISK_WARN_FREE_PERCENT:g} %). Free space, set a budget "
            "(RETENTION_MAX_GB / RETENTION_MAX_DAYS) or move EXPORT_DIR to a larger disk."
        )
    if rate > 0 and usage.free / rate < WARN_DAYS_LEFT:
        warnings.append(
            f"At the rate of the last {RATE_DAYS} days ({rate / GB:.2f} GB a day) the disk is full in about "
            f"{usage.free / rate:.1f} days."
        )
    if budget is not None and order_bytes - in_order_trash > budget:
        warnings.append(
            f"The orders take {(order_bytes - in_order_trash) / GB:.2f} GB, above the budget of {budget / GB:.2f} GB; "
            "the retention job moves the oldest closed orders not marked keep to the trash."
        )
    return DiskUse(order_bytes - in_order_trash, trash, usage.total, usage.free, budget, settings.RETENTION_MAX_DAYS,
                   rate, warnings)


@dataclass(frozen=True)
class RetentionPlan:
    """Orders to move to the trash (oldest first) with their sizes and why; what stays over the budget."""

    moves: list[tuple[OrderRecord, int, str]]
    orders_bytes: int  # live orders before the moves
    budget_bytes: int | None
    over_budget_after: int  # bytes still above the budget when every candidate is gone (0: fits)


def plan_retention(store: Store, max_bytes: int | None, max_days: float | None,
                   now: datetime | None = None) -> RetentionPlan:
    """Which closed orders (not marked keep) must go to the trash to meet the size and age budgets."""
    now = now or utc_now()
    orders = store.list_orders()
    sizes = {o.id: folder_size(o.folder) - folder_size(o.folder / TRASH_FOLDER) for o in orders}
    total = sum(sizes.values())
    candidates = sorted((o for o in orders if not o.is_open and not o.keep),
                        key=lambda o: (o.closed_at or o.started_at, o.id))
    moves: list[tuple[OrderRecord, int, str]] = []
    chosen: set[int] = set()
    if max_days is not None:
        cutoff = now - timedelta(days=max_days)
        for o in candidates:
            if (o.closed_at or o.started_at) < cutoff:
                moves.append((o, sizes[o.id], f"closed more than {max_days:g} days ago"))
                chosen.add(o.id)
    left = total - sum(size for _, size, _ in moves)
    if max_bytes is not None:
        for o in candidates:
            if left <= max_bytes:
                break
            if o.id in chosen:
                continue
            moves.append((o, sizes[o.id], f"orders above the budget of {max_bytes / GB:.2f} GB"))
            chosen.add(o.id)
            left -= sizes[o.id]
    over = max(0, left - max_bytes) if max_bytes is not None else 0
    return RetentionPlan(moves, total, max_bytes, over)


def apply_retention(store: Store, settings: Settings, now: datetime | None = None) -> str:
    """Move the orders :func:`plan_retention` names to the trash; returns a one-line summary (for the job)."""
    max_bytes = int(settings.RETENTION_MAX_GB * GB) if settings.RETENTION_MAX_GB else None
    if max_bytes is None and settings.RETENTION_MAX_DAYS is None:
        use = disk_use(store, settings, now)
        for warning in use.warnings:
            logger.warning("Disk: %s", warning)
        return f"no budget set; orders take {use.orders_bytes / GB:.2f} GB, disk {use.free_percent:.0f} % free"
    plan = plan_retention(store, max_bytes, settings.RETENTION_MAX_DAYS, now)
    moved, freed = [], 0
    for order, size, reason in plan.moves:
        store.trash_order(order.id)
        logger.info("Retention: order %s (%.1f MB) moved to the trash: %s", order.order_number, size / 1e6, reason)
        moved.append(order.order_number)
        freed += size
    if plan.over_budget_after:
        logger.warning("Retention: %.2f GB above the budget remain in open orders and orders marked keep",
                       plan.over_budget_after / GB)
    for warning in disk_use(store, settings, now).warnings:
        logger.warning("Disk: %s", warning)
    summary = f"{len(moved)} order(s) to the trash ({freed / GB:.2f} GB)"
    if moved:
        summary += ": " + ", ".join(moved[:10]) + (f" and {len(moved) - 10} more" if len(moved) > 10 else "")
    if plan.over_budget_after:
        summary += f"; still {plan.over_budget_after / GB:.2f} GB over the budget (open or keep orders)"
    return summary
