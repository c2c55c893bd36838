"""Logging set-up: to stdout (for services and containers) and optionally to a rotating file."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"
_HANDLER_MARK = "_extract_unique_images"


def setup_logging(level: str = "INFO", logfile: Path | None = None) -> None:
    """Configure the root logger once per process (safe to call on every Streamlit rerun)."""
    root = logging.getLogger()
    root.setLevel(level)
    if any(getattr(h, _HANDLER_MARK, False) for h in root.handlers):
        return
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if logfile is not None:
        Path(logfile).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(logfile, maxBytes=10_000_000, backupCount=5))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT))
        setattr(handler, _HANDLER_MARK, True)
        root.addHandler(handler)
    # libraries that are chatty at DEBUG
    for name in ("PIL", "urllib3", "matplotlib", "watchdog", "fsevents", "asyncio", "tornado", "choreographer", "kaleido"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
