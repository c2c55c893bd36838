"""Video recording with OpenCV: codec fallback, correct colours, the real frame rate in the file."""

from __future__ import annotations

import logging
import os
import statistics
from collections import deque
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from utils.files import fsync_dir, temp_path_for

logger = logging.getLogger(__name__)

# Preference after the configured codec: browser-playable H.264 first, mp4v (always in
# opencv-python's FFmpeg build) as the last resort.
CODEC_ORDER = ("avc1", "h264", "X264", "HEVC", "mp4v")
RATE_TOLERANCE = 0.02  # rewrite the file when the real rate differs by more than 2 %

_codec_ok: dict[str, bool] = {}


OUTAGE_MIN_S = 1.0  # a gap between frames is a camera outage (filled as a freeze) when longer than this ...
OUTAGE_INTERVALS = 4.0  # ... and than this many of the recent intervals
MAX_FREEZE_S = 600.0  # longest freeze written for one gap (a longer outage is cut to this)


class VideoError(RuntimeError):
    """No codec works or the file cannot be written."""


def _open_writer(path: Path, codec: str, fps: float, size: tuple[int, int]) -> cv2.VideoWriter | None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), float(fps), size, True)
    if writer.isOpened():
        return writer
    writer.release()
    path.unlink(missing_ok=True)
    return None


def to_bgr(img: Image.Image | np.ndarray) -> np.ndarray:
    """An RGB/L Pillow image or RGB/mono array as the BGR array OpenCV writes."""
    arr = np.asarray(img)
    if arr.ndim == 2:
        return cv2.cvtColor(arr, cv2.COLOR_GRAY2BGR)
    if arr.shape[2] == 4:
        return cv2.cvtColor(arr, cv2.COLOR_RGBA2BGR)
    return cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)


class VideoRecorder:
    """Writes frames to ``path``; the file appears complete on :meth:`close` (atomic rename).

    The first codec of ``[preferred] + CODEC_ORDER`` that OpenCV can open is used. Frames are
    written at the requested rate; at close, if the rate really achieved (from the frame
    timestamps) differs by more than 2 %, the file is rewritten with the real rate so that it
    plays at true speed.
    """

    def __init__(self, path: Path, fps: float, preferred_codec: str = "h264") -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.codecs = [preferred_codec] + [c for c in CODEC_ORDER if c != preferred_codec]
        self.codec: str | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0
        self._first: datetime | None = None
        self._last: datetime | None = None
        self._tmp = temp_path_for(self.path.with_suffix(".mp4"))
        self._writer: cv2.VideoWriter | None = None
        self._last_frame: np.ndarray | None = None
        self._gaps: deque[float] = deque(maxlen=25)  # the recent intervals between frames (outages left out)
        self.freeze_frames = 0  # repeated frames that fill camera outages

    def probe(self) -> str:
        """The codec that will be used; raises VideoError at once when none works (before any frame)."""
        probe_path = temp_path_for(self.path.with_suffix(".mp4"))
        try:
            for codec in self.codecs:
                if codec not in _codec_ok:
                    writer = _open_writer(probe_path, codec, self.fps, (64, 48))
                    _codec_ok[codec] = writer is not None
                    if writer is not None:
                        writer.release()
                if _codec_ok[codec]:
                    return codec
        finally:
            probe_path.unlink(missing_ok=True)
        raise VideoError(f"None of the video codecs {self.codecs} can be opened by OpenCV on this machine.")

    def _start(self, size: tuple[int, int]) -> None:
        for codec in self.codecs:
            if _codec_ok.get(codec) is False:
                continue
            writer = _open_writer(self._tmp, codec, self.fps, size)
            _codec_ok[codec] = writer is not None
            if writer is not None:
                if codec != self.codecs[0]:
                    logger.warning("Video codec %s is not available in OpenCV; using %s", self.codecs[0], codec)
                self._writer, self.codec, self.size = writer, codec, size
                return
        raise VideoError(f"None of the video codecs {self.codecs} can be opened by OpenCV on this machine.")

    def write(self, img: Image.Image | np.ndarray, timestamp: datetime) -> None:
        """Append one frame (RGB or mono); frames of another size are scaled to the first one's.

        A gap in the timestamps (the camera was gone: longer than :data:`OUTAGE_MIN_S` and than
        :data:`OUTAGE_INTERVALS` of the recent frame intervals) is filled with the last frame repeated at that
        cadence, so that the video shows a freeze of the right length and plays at real time (at most
        :data:`MAX_FREEZE_S` of it)."""
        frame = to_bgr(img)
        size = (frame.shape[1], frame.shape[0])
        if self._writer is None:
            self._start(size)
        if size != self.size:
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)  # type: ignore[arg-type]
        if self._last is not None and self._last_frame is not None:
            gap = (timestamp - self._last).total_seconds()
            cadence = statistics.median(self._gaps) if len(self._gaps) >= 3 else 1.0 / self.fps
            if gap > max(OUTAGE_MIN_S, OUTAGE_INTERVALS * cadence):
                missing = min(round(gap / cadence) - 1, round(MAX_FREEZE_S / cadence))
                for _ in range(missing):
                    self._writer.write(self._last_frame)  # type: ignore[union-attr]
                self.frames += missing
                self.freeze_frames += missing
                logger.info("Video %s: %.1f s without frames shown as a freeze (%d frames)", self.path.name, gap,
                            missing)
            elif gap > 0:
                self._gaps.append(gap)
        self._writer.write(frame)  # type: ignore[union-attr]
        self._last_frame = frame
        self.frames += 1
        self._first = self._first or timestamp
        self._last = timestamp

    @property
    def achieved_fps(self) -> float | None:
        if self.frames < 2 or self._first is None or self._last is None:
            return None
        span = (self._last - self._first).total_seconds()
        return (self.frames - 1) / span if span > 0 else None

    def close(self) -> tuple[Path | None, float | None]:
        """Finish the file; returns (path, frame rate written) or (None, None) when no frame came."""
        if self._writer is None:
            return None, None
        self._writer.release()
        self._writer = None
        fps = self.fps
        real = self.achieved_fps
        if real is not None and abs(real - self.fps) > RATE_TOLERANCE * self.fps and self._rewrite(round(real, 3)):
            fps = round(real, 3)
        os.replace(self._tmp, self.path)
        fsync_dir(self.path.parent)
        logger.info("Video %s: %d frames, %s fps, codec %s", self.path, self.frames, fps, self.codec)
        return self.path, fps

    def _rewrite(self, fps: float) -> bool:
        """Copy the frames into a new file that declares ``fps``; False if that failed."""
        src = cv2.VideoCapture(str(self._tmp))
        out_path = temp_path_for(self.path.with_suffix(".mp4"))
        out = _open_writer(out_path, self.codec or "mp4v", fps, self.size)  # type: ignore[arg-type]
        if out is None:  # keep the file with the requested rate rather than lose it
            logger.error("Could not rewrite %s with the real rate %.3f fps", self.path, fps)
            src.release()
            return False
        while True:
            ok, frame = src.read()
            if not ok:
                break
            out.write(frame)
        src.release()
        out.release()
        os.replace(out_path, self._tmp)
        return True

    def abort(self) -> None:
        """Drop the recording (nothing is left behind)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._tmp.unlink(missing_ok=True)


BROWSER_FOURCCS = {"avc1", "h264", "H264", "x264", "X264", "vp80", "VP80", "vp90", "VP90"}


def _fourcc(path: Path) -> str:
    cap = cv2.VideoCapture(str(path))
    code = int(cap.get(cv2.CAP_PROP_FOURCC))
    cap.release()
    return "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))


def browser_video(path: Path) -> Path:
    """A file of this video that browsers can play: the video itself (H.264) or a WebM (VP8) copy beside it.

    The copy ``<name>.preview.webm`` is made once, atomically, and reused.
    """
    path = Path(path)
    if _fourcc(path) in BROWSER_FOURCCS:
        return path
    preview = path.with_name(f"{path.stem}.preview.webm")
    if preview.exists() and preview.stat().st_mtime >= path.stat().st_mtime:
        return preview
    src = cv2.VideoCapture(str(path))
    fps = src.get(cv2.CAP_PROP_FPS) or 5.0
    size = (int(src.get(cv2.CAP_PROP_FRAME_WIDTH)), int(src.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    tmp = temp_path_for(preview)
    out = _open_writer(tmp, "VP80", fps, size)
    if out is None:
        src.release()
        raise VideoError(f"{path.name} uses a codec browsers cannot play and no WebM encoder is available.")
    try:
        while True:
            ok, frame = src.read()
            if not ok:
                break
            out.write(frame)
    finally:
        src.release()
        out.release()
    os.replace(tmp, preview)
    return preview
