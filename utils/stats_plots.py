"""Filters, key figures, plotly figures and the exports (CSV, ZIP of every plot) of the statistics pages.

Everything takes the per-image table of :mod:`utils.stats_store` (``load_images_frame`` for captured
images, ``analyze_items`` for uploads), so the statistics page and the upload analysis share it.

PNG export uses kaleido, which drives a Chrome/Chromium that must already be installed (kaleido never
downloads one here); :func:`png_export_available` probes it once. Without it every plot goes into the ZIP
as a self-contained HTML file (plotly.js included, opens offline).
"""

from __future__ import annotations

import io
import logging
import tempfile
import threading
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from dateutil.tz import tzlocal
from plotly.subplots import make_subplots

from utils.i18n import t

logger = logging.getLogger(__name__)

PLOT_SIZE = (1000, 550)  # width, height of exported PNGs
_TEMPLATE = "plotly_white"
_png_lock = threading.Lock()


# ----------------------------------------------------------------- filters and key figures


_DAY_MS = 86_400_000  # plotly measures date axes in milliseconds

def local_times(series: pd.Series) -> pd.Series:
    """UTC timestamps in this machine's time zone (for days, months and display)."""
    return pd.to_datetime(series, utc=True).dt.tz_convert(tzlocal())


def date_bounds(images: pd.DataFrame, orders: pd.DataFrame | None = None) -> tuple[date, date] | None:
    """First and last local capture date (and order start), or None without any time."""
    times = [local_times(images["captured_at"]).dropna()] if len(images) else []
    if orders is not None and len(orders):
        times.append(local_times(orders["started_at"]).dropna())
    times = [t for t in times if len(t)]
    if not times:
        return None
    every = pd.concat(times)
    return every.min().date(), every.max().date()


def filter_images(
    images: pd.DataFrame,
    start: date | None = None,
    end: date | None = None,
    orders: list[str] | None = None,
    order_column: str = "order_folder",
    kinds: list[str] | None = None,
) -> pd.DataFrame:
    """Images captured from ``start`` to ``end`` (local dates, inclusive) of the ``orders`` (folders) and of the
    ``kinds`` (capture, import, version); None: all."""
    mask = pd.Series(True, index=images.index)
    if kinds is not None and "kind" in images:
        mask &= images["kind"].isin(kinds)
    if start is not None or end is not None:
        days = local_times(images["captured_at"]).dt.date
        if start is not None:
            mask &= days.notna() & (days >= start)
        if end is not None:
            mask &= days.notna() & (days <= end)
    if orders:
        mask &= images[order_column].isin(orders)
    return images[mask].reset_index(drop=True)


def filter_orders(
    orders: pd.DataFrame,
    start: date | None = None,
    end: date | None = None,
    selected: list[str] | None = None,
    images: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Orders among ``selected`` (folders; None: all) that started from ``start`` to ``end`` (local dates) or have
    an image in ``images`` (the images already filtered to that period)."""
    mask = pd.Series(True, index=orders.index)
    days = local_times(orders["started_at"]).dt.date
    if start is not None:
        mask &= days >= start
    if end is not None:
        mask &= days <= end
    if images is not None and len(images):
        mask |= orders["order_folder"].isin(images["order_folder"])
    if selected:
        mask &= orders["order_folder"].isin(selected)
    return orders[mask].reset_index(drop=True)


def kpis(images: pd.DataFrame, orders: pd.DataFrame) -> dict[str, Any]:
    """Orders, images, images per order, capture duration (s) and bytes of the images shown."""
    n_orders, n_images = len(orders), len(images)
    durations = orders["duration_s"].copy() if len(orders) else pd.Series(dtype=float)
    if len(orders) and durations.isna().any() and len(images):  # open orders: until their last image
        last = images.groupby("order_folder")["captured_at"].max()
        ends = orders["order_folder"].map(last)
        open_d = (pd.to_datetime(ends, utc=True) - orders["started_at"]).dt.total_seconds()
        durations = durations.fillna(open_d.clip(lower=0))
    return {
        "orders": n_orders,
        "images": n_images,
        "images_per_order": (n_images / n_orders) if n_orders else 0.0,
        "capture_seconds": float(durations.fillna(0).sum()) if len(durations) else 0.0,
        "storage_bytes": int(pd.to_numeric(images["file_size"], errors="coerce").fillna(0).sum()) if n_images else 0,
    }


def human_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s"


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # pragma: no cover


# ----------------------------------------------------------------- figures


def time_series(images: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per day, per month) counts of images with a capture time: ``count``, day ``trend`` (7-day mean),
    month ``total`` (running sum); local calendar days and months, gaps filled with 0."""
    times = local_times(images["captured_at"]).dropna()
    if not len(times):
        empty = pd.DataFrame(columns=["period", "count"])
        return empty.assign(trend=[]), empty.assign(total=[])
    naive = times.dt.tz_localize(None)
    days = naive.dt.floor("D").value_counts().sort_index()
    days = days.reindex(pd.date_range(days.index.min(), days.index.max(), freq="D"), fill_value=0)
    per_day = pd.DataFrame({"period": days.index, "count": days.to_numpy()})
    per_day["trend"] = per_day["count"].rolling(7, min_periods=1).mean()
    months = naive.dt.to_period("M").value_counts().sort_index()
    months = months.reindex(pd.period_range(months.index.min(), months.index.max(), freq="M"), fill_value=0)
    per_month = pd.DataFrame({"period": months.index.to_timestamp(), "count": months.to_numpy()})
    per_month["total"] = per_month["count"].cumsum()
    return per_day, per_month


def _layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    fig.update_layout(title=title, template=_TEMPLATE, xaxis_title=x, yaxis_title=y, bargap=0.1,
                      legend={"orientation": "h", "y": -0.2}, margin={"t": 60, "b": 40})
    return fig


def _histogram(values: pd.Series, title: str, x: str, color: str) -> go.Figure:
    fig = go.Figure(go.Histogram(x=pd.to_numeric(values, errors="coerce").dropna(), nbinsx=40, marker_color=color))
    return _layout(fig, title, x, t("images"))


def label_counts(images: pd.DataFrame) -> pd.Series:
    """How many images have each label as their best one (most frequent first); empty without labels."""
    if "labels" not in images or not images["labels"].notna().any():
        return pd.Series(dtype=int)
    best = images["labels"].dropna().str.split("; ").str[0].str.rsplit(" ", n=1).str[0]
    return best.value_counts()


def build_figures(images: pd.DataFrame, *, uploads: bool = False) -> dict[str, go.Figure]:
    """The plots of the statistics page (or the upload analysis), by name; plots without data are left out.

    Names: ``images_per_day``, ``images_per_month``, ``images_per_order`` (captured only), ``distance``
    (captured only), ``labels`` (where images are labelled), ``brightness``, ``sharpness``, ``dominant_colors``.
    """
    figs: dict[str, go.Figure] = {}
    per_day, per_month = time_series(images)
    if len(per_day):
        fig = go.Figure()
        fig.add_bar(x=per_day["period"], y=per_day["count"], name=t("images per day"), marker_color="#4c78a8",
                    width=0.8 * _DAY_MS)
        fig.add_scatter(x=per_day["period"], y=per_day["trend"], name=t("trend (7-day mean)"),
                        mode="lines+markers",
                        line={"color": "#f58518", "width": 3})
        fig.update_xaxes(type="date", tickformat="%Y-%m-%d", dtick=_DAY_MS)  # whole days, also for one day
        if len(per_day) == 1:  # a single bar would otherwise fill the axis with sub-second ticks
            day = pd.Timestamp(per_day["period"].iloc[0])
            fig.update_xaxes(range=[day - pd.Timedelta(days=3), day + pd.Timedelta(days=3)])
        figs["images_per_day"] = _layout(fig, t("Images per day"), t("day (capture time)"), t("images"))
        fig = make_subplots(specs=[[{"secondary_y": True}]])
        fig.add_bar(x=per_month["period"], y=per_month["count"], name=t("images per month"),
                    marker_color="#54a24b",
                    width=25 * _DAY_MS, offset=0)
        fig.add_scatter(x=per_month["period"], y=per_month["total"], name=t("total so far"), mode="lines+markers",
                        line={"color": "#e45756", "width": 3}, secondary_y=True)
        _layout(fig, t("Images per month and running total"), t("month (capture time)"), t("images per month"))
        fig.update_yaxes(title_text=t("total images"), secondary_y=True)
        fig.update_xaxes(type="date", dtick="M1", tickformat="%Y-%m")
        if len(per_month) == 1:
            month = pd.Timestamp(per_month["period"].iloc[0])
            fig.update_xaxes(range=[month - pd.DateOffset(months=2), month + pd.DateOffset(months=3)])
        figs["images_per_month"] = fig
    if not uploads and len(images):
        per_order = images.groupby("order_folder", sort=False).size()
        fig = go.Figure(go.Bar(x=per_order.index.astype(str), y=per_order.to_numpy(), marker_color="#72b7b2"))
        figs["images_per_order"] = _layout(fig, t("Images per order"), t("order"), t("images"))
        fig.update_xaxes(type="category")
        if "distance" in images and images["distance"].notna().any():
            figs["distance"] = _histogram(images["distance"], t("Distance to the nearest kept image"),
                                          t("distance"),
                                          "#b279a2")
    counts = label_counts(images)
    if len(counts):
        top = counts.head(20).iloc[::-1]
        fig = go.Figure(go.Bar(x=top.to_numpy(), y=top.index, orientation="h", marker_color="#4c78a8",
                               hovertemplate="%{y}: %{x} " + t("image(s)")))
        figs["labels"] = _layout(fig, t("Objects recognised (best label of each image)"), t("images"), t("label"))
        fig.update_yaxes(type="category")
    ok = images[images["stats_status"] == "ok"] if "stats_status" in images else images
    if len(ok) and ok["brightness"].notna().any():
        figs["brightness"] = _histogram(ok["brightness"], t("Brightness (mean luminance, 0..1)"), t("brightness"),
                                        "#eeca3b")
    if len(ok) and ok["sharpness"].notna().any():
        figs["sharpness"] = _histogram(ok["sharpness"], t("Sharpness (variance of the Laplacian)"),
                                       t("sharpness"),
                                       "#9d755d")
    if len(ok) and ok["dominant_hex"].notna().any():
        counts = ok["dominant_hex"].dropna().value_counts().head(40)
        fig = go.Figure(go.Bar(x=counts.index, y=counts.to_numpy(), marker_color=list(counts.index),
                               marker_line={"color": "#444", "width": 1},
                               hovertemplate="%{x}: %{y} " + t("image(s)")))
        figs["dominant_colors"] = _layout(fig, t("Dominant colours"), t("colour"), t("images"))
        fig.update_xaxes(type="category")
    return figs


# ----------------------------------------------------------------- exports


def table_csv(frame: pd.DataFrame, columns: list[str] | None = None) -> bytes:
    """The table as UTF-8 CSV (header row; times in ISO 8601 UTC; the ``exif`` dicts left out)."""
    cols = [c for c in (columns or list(frame.columns)) if c in frame and c != "exif"]
    out = frame[cols].copy()
    for col in cols:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].map(lambda t: t.isoformat() if pd.notna(t) else "")
    return out.to_csv(index=False).encode("utf-8")


def _probe_png(timeout: float) -> bool:
    try:
        import kaleido  # noqa: F401
        import plotly.io as pio
    except ImportError:
        return False
    result: list[bool] = []

    def run() -> None:
        try:
            data = pio.to_image(go.Figure(go.Bar(x=[1], y=[1])), format="png", width=60, height=40)
            result.append(data[:8] == b"\x89PNG\r\n\x1a\n")
        except Exception as err:  # noqa: BLE001 - no browser, sandbox, ...: fall back to HTML
            logger.info("PNG export unavailable (%s); plots are exported as HTML", err)

    worker = threading.Thread(target=run, name="kaleido-probe", daemon=True)
    with _png_lock:
        worker.start()
        worker.join(timeout)
    return bool(result and result[0])


_png_works: dict[str, bool] = {}  # "ok": known once probed or once an export tried PNG


def png_export_available(timeout: float = 60.0) -> bool:
    """Whether kaleido can render PNGs here (a Chrome/Chromium is installed); found out once per process."""
    if "ok" not in _png_works:
        _png_works["ok"] = _probe_png(timeout)
    return _png_works["ok"]


def figures_png(figs: dict[str, go.Figure], timeout: float = 60.0) -> dict[str, bytes] | None:
    """PNG bytes of every figure, rendered in one browser session; None when that fails or takes too long."""
    if not figs:
        return {}
    import plotly.io as pio

    names = list(figs)
    result: dict[str, bytes] = {}

    def run(tmp: Path) -> None:
        paths = [tmp / f"{i}.png" for i in range(len(names))]
        try:
            pio.write_images([figs[n] for n in names], paths, format="png", width=PLOT_SIZE[0], height=PLOT_SIZE[1])
            for name, path in zip(names, paths):
                result[name] = path.read_bytes()
        except Exception as err:  # noqa: BLE001
            logger.warning("PNG export failed (%s); exporting HTML instead", err)
            result.clear()

    with tempfile.TemporaryDirectory() as tmp, _png_lock:
        worker = threading.Thread(target=run, args=(Path(tmp),), name="kaleido-export", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive() or len(result) != len(names):
            return None
        return dict(result)


def figure_html(fig: go.Figure) -> bytes:
    """A self-contained HTML page of the figure (plotly.js inlined: opens without a network)."""
    return fig.to_html(include_plotlyjs=True, full_html=True).encode("utf-8")


def export_zip(
    figs: dict[str, go.Figure], csv: bytes, *, csv_name: str = "images.csv", png: bool | None = None
) -> bytes:
    """A ZIP with the CSV and every plot as ``plots/<name>.png`` (or ``.html`` where PNG export is unavailable).

    ``png=None``: PNG unless PNG export already failed in this process. Built in memory: nothing half-written.
    """
    rendered = figures_png(figs) if (png if png is not None else _png_works.get("ok", True)) else None
    if png is None and figs:
        _png_works["ok"] = rendered is not None
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(csv_name, csv)
        for name, fig in figs.items():
            if rendered is not None:
                zf.writestr(f"plots/{name}.png", rendered[name], compress_type=zipfile.ZIP_STORED)
            else:
                zf.writestr(f"plots/{name}.html", figure_html(fig))
    return buf.getvalue()


def swatch_table(images: pd.DataFrame, top: int = 12) -> list[tuple[str, int]]:
    """The ``top`` most frequent dominant colours (hex, count)."""
    if not len(images) or "dominant_hex" not in images:
        return []
    counts = images["dominant_hex"].dropna().value_counts().head(top)
    return [(str(h), int(n)) for h, n in counts.items()]


def preview(frame: pd.DataFrame, columns: list[str], rows: int = 500) -> pd.DataFrame:
    """The first ``rows`` rows of the table for display (local times, no EXIF dicts)."""
    cols = [c for c in columns if c in frame and c != "exif"]
    out = frame[cols].head(rows).copy()
    if "captured_at" in out:
        out["captured_at"] = local_times(out["captured_at"]).dt.tz_localize(None)
    return out


__all__ = [
    "build_figures", "date_bounds", "export_zip", "figure_html", "figures_png", "filter_images", "filter_orders",
    "human_bytes", "human_duration", "kpis", "local_times", "png_export_available", "preview", "swatch_table",
    "table_csv", "time_series",
]  # fmt: skip
