"""``pvc fault ...``: conditions an operator must see, and their acknowledgement."""

from __future__ import annotations

import argparse
from typing import Any

from pvc_cli import output
from pvc_cli.commands.base import PvcCommand, PvcLister, PvcShowOne, add_yes, confirm

LIST_COLUMNS = ("id", "severity", "kind", "subject", "message", "count", "first_seen",
                "last_seen", "acknowledged")
TIMES = ("first_seen", "last_seen")


class ListFault(PvcLister):
    """List faults"""

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        return output.rows(output.items(self.client.get("/fault"), "faults"), LIST_COLUMNS,
                           TIMES)


class AckFault(PvcShowOne):
    """Acknowledge a fault"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("id", metavar="ID", help="fault id")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        reply = self.client.post(self.client.path("fault", parsed_args.id, "ack"))
        if not isinstance(reply, dict):
            reply = {"id": parsed_args.id, "acknowledged": True}
        return output.show(reply, LIST_COLUMNS, TIMES)


class DeleteFault(PvcCommand):
    """Delete a fault"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("id", metavar="ID", help="fault id")
        add_yes(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        confirm(self.app, f"delete fault {parsed_args.id}", parsed_args.yes)
        self.client.delete(self.client.path("fault", parsed_args.id))
        return 0
