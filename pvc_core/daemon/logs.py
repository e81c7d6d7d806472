"""Daemon logging: timestamped, levelled, naming the node and subsystem.

Loggers are named ``pvc.<subsystem>.<node>`` (see :func:`logger`), so several
daemons in one process keep their lines apart. Colour is used only when the
stream is a terminal (or ``logging.color: always``).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO

_COLOURS = {"DEBUG": "\033[2m", "INFO": "\033[32m", "WARNING": "\033[33m",
            "ERROR": "\033[31m", "CRITICAL": "\033[1;31m"}
_RESET = "\033[0m"


def logger(subsystem: str, node: str) -> logging.Logger:
    """The logger of one subsystem (keepalive, vm, migration, flush, fence, ...) of a node."""
    return logging.getLogger(f"pvc.{subsystem}.{node}")


class DaemonFormatter(logging.Formatter):
    """``2026-11-21 17:30:01.123 INFO    node1 [keepalive] message``."""

    def __init__(self, colour: bool) -> None:
        super().__init__()
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        parts = record.name.split(".")
        subsystem, node = (parts[1], ".".join(parts[2:])) if len(parts) >= 3 else (
            parts[-1], "-")
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        level = f"{record.levelname:<7}"
        if self.colour:
            level = f"{_COLOURS.get(record.levelname, '')}{level}{_RESET}"
        line = (f"{stamp}.{int(record.msecs):03d} {level} {node} [{subsystem}] "
                f"{record.getMessage()}")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup(level: str = "info", colour: str = "auto", file: str | None = None,
          stream: IO[str] | None = None) -> logging.Handler:
    """Attach one handler to the ``pvc`` logger (idempotent per process)."""
    root = logging.getLogger("pvc")
    for h in list(root.handlers):
        if getattr(h, "_pvc_daemon", False):
            root.removeHandler(h)
            h.close()  # a FileHandler's file; a StreamHandler leaves its stream open
    if file:
        handler: logging.Handler = logging.FileHandler(file)
        use_colour = colour == "always"
    else:
        out = stream or sys.stderr
        handler = logging.StreamHandler(out)
        use_colour = colour == "always" or (colour == "auto" and out.isatty())
    handler.setFormatter(DaemonFormatter(use_colour))
    handler._pvc_daemon = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
    # kazoo's own connection chatter only when debugging
    logging.getLogger("pvc.kazoo").setLevel(max(root.level, logging.WARNING))
    return handler


def flush() -> None:
    """Flush every PVC log handler (before exec or exit)."""
    for handler in logging.getLogger("pvc").handlers:
        handler.flush()
