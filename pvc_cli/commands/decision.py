"""``pvc decision list``: why the cluster did what it did (the decision log)."""

from __future__ import annotations

import argparse
import re
import time
from datetime import datetime
from typing import Any

from pvc_cli import output
from pvc_cli.commands.base import PvcLister, positive_int

LIST_COLUMNS = ("seq", "time", "kind", "outcome", "node", "vm", "by", "inputs")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")


def parse_time(text: str, now: float | None = None) -> float:
    """A Unix time from ``1700000000``, an age (``90s``, ``10m``, ``2h``, ``7d``, ``1w``)
    or an ISO 8601 date/time (local time unless it names a zone)."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    match = _AGO.match(text)
    if match:
        now = time.time() if now is None else now
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (Unix time, an age like 10m/2h/7d, or an ISO date)"
        ) from None


def _number(value: float | None) -> int | float | None:
    """Whole seconds as an integer (``1700000000``, not ``1700000000.0``)."""
    if value is not None and float(value).is_integer():
        return int(value)
    return value


class ListDecision(PvcLister):
    """List the decision log (oldest first)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--node", metavar="NODE", help="only decisions about this node")
        parser.add_argument("--vm", metavar="VM", help="only decisions about this VM")
        parser.add_argument("--since", metavar="TIME", type=parse_time,
                            help="from this time: Unix time, an age (10m, 2h, 7d) or ISO date")
        parser.add_argument("--until", metavar="TIME", type=parse_time,
                            help="up to this time (same forms as --since)")
        parser.add_argument("--kind", metavar="KIND", help="only decisions of this kind")
        parser.add_argument("--limit", metavar="N", type=positive_int,
                            help="only the newest N")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        reply = self.client.get("/decision", params={
            "node": parsed_args.node, "vm": parsed_args.vm, "since": _number(parsed_args.since),
            "until": _number(parsed_args.until), "kind": parsed_args.kind,
            "limit": parsed_args.limit})
        return output.rows(output.items(reply, "decisions"), LIST_COLUMNS, ("time",))
