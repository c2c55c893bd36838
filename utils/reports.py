"""The nightly analytics snapshot: the statistics tables as CSV and the plots, one folder per day.

``REPORTS_DIR/YYYY-MM-DD/`` holds ``orders.csv``, ``images.csv`` (every kept image with its statistics, versions
and imports included), ``labels.csv`` (how many images carry each best label), ``summary.json`` (the key
figures) and ``plots/`` (PNG where kaleido can render, else HTML pages that share ``REPORTS_DIR/plotly.min.js``,
so a year of snapshots does not hold 365 copies of plotly). The folder is built under a temporary name and
renamed when complete: a snapshot is there whole or not at all. The newest :data:`KEEP_SNAPSHOTS` are kept.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from datetime import date
from pathlib import Path

import pandas as pd

from utils.files import atomic_write_bytes, fsync_dir
from utils.stats_plots import build_figures, figures_png, kpis, png_export_available, table_csv
from utils.stats_store import IMAGE_COLUMNS, load_images_frame, load_orders_frame
from utils.storage import Store

logger = logging.getLogger(__name__)

KEEP_SNAPSHOTS = 90
PLOTLY_JS = "plotly.min.js"


def _shared_plotly(reports: Path) -> None:
    target = reports / PLOTLY_JS
    if not target.is_file():
        from plotly.offline import get_plotlyjs

        atomic_write_bytes(target, get_plotlyjs().encode("utf-8"))


def write_snapshot(store: Store, reports: Path, day: date, *, png: bool | None = None) -> Path:
    """Write the snapshot of ``day`` into ``reports/<day>/`` (replacing one of the same day); returns the folder.

    ``png=None``: PNG plots when kaleido can render here, else HTML.
    """
    reports = Path(reports)
    reports.mkdir(parents=True, exist_ok=True)
    images = load_images_frame(store)
    orders = load_orders_frame(store)
    figs = build_figures(images)
    rendered = figures_png(figs) if (png_export_available() if png is None else png) else None
    tmp = Path(tempfile.mkdtemp(prefix=f".{day.isoformat()}-", dir=reports))
    try:
        (tmp / "orders.csv").write_bytes(table_csv(orders))
        (tmp / "images.csv").write_bytes(table_csv(images, IMAGE_COLUMNS))
        counts = store.label_counts(top=1)
        (tmp / "labels.csv").write_bytes(pd.DataFrame(counts, columns=["label", "images"]).to_csv(index=False)
                                         .encode("utf-8"))
        summary = {"day": day.isoformat(), **kpis(images, orders),
                   "by_kind": {str(k): int(v) for k, v in images["kind"].value_counts().items()},
                   "plots": sorted(figs)}
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
        plots = tmp / "plots"
        plots.mkdir()
        if rendered is not None:
            for name, data in rendered.items():
                (plots / f"{name}.png").write_bytes(data)
        else:
            _shared_plotly(reports)
            for name, fig in figs.items():
                fig.write_html(plots / f"{name}.html", include_plotlyjs=f"../../{PLOTLY_JS}", full_html=True)
        final = reports / day.isoformat()
        old = None
        if final.exists():
            old = final.rename(reports / f".{day.isoformat()}-old-{tmp.name[-8:]}")
        tmp.rename(final)
        fsync_dir(reports)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(reports)
    logger.info("Analytics snapshot written to %s (%d images, %d plots)", final, len(images), len(figs))
    return final


def _prune(reports: Path) -> None:
    days = sorted(p for p in reports.iterdir() if p.is_dir() and _is_day(p.name))
    for old in days[:-KEEP_SNAPSHOTS]:
        shutil.rmtree(old, ignore_errors=True)


def _is_day(name: str) -> bool:
    try:
        date.fromisoformat(name)
    except ValueError:
        return False
    return True
