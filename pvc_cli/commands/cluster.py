"""``pvc cluster ...``: the cluster's status and maintenance mode."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from pvc_cli import output
from pvc_cli.commands.base import PvcShowOne

SHOW_FIRST = ("name", "health", "primary", "maintenance", "nodes", "vms", "resources",
              "faults", "jobs")


class ClusterStatus(PvcShowOne):
    """Show the cluster's status"""

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        return output.show(self.client.get("/cluster"), SHOW_FIRST)


class ClusterMaintenance(PvcShowOne):
    """Turn maintenance mode on (fencing disabled) or off"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("mode", choices=("on", "off"), help="on or off")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        reply = self.client.post("/cluster/maintenance", {"enabled": parsed_args.mode == "on"})
        if not isinstance(reply, Mapping):
            reply = self.client.get("/cluster")
        return output.show(reply, SHOW_FIRST)
