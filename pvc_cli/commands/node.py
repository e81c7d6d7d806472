"""``pvc node ...``: list, inspect, drain (flush) and undrain (ready) nodes, move the primary."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from pvc_cli import output
from pvc_cli.commands.base import PvcLister, PvcShowOne, add_wait, job_act
from pvc_cli.commands.base import act as _act

LIST_COLUMNS = ("name", "daemon_state", "coordinator_state", "domain_state", "alive", "health",
                "vms_running", "load", "memory_total_mib", "memory_free_mib",
                "memory_allocated_mib", "vcpus_allocated", "job")
SHOW_FIRST = ("name", "daemon_state", "coordinator_state", "domain_state", "alive", "health", "job")
JOB_FIRST = ("id", "kind", "state", "params", "progress", "by", "created", "updated")
JOB_TIMES = ("created", "updated", "started", "finished")


def show_job(job: Any) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """A job (or any action reply) for ShowOne, its ``progress`` as ``n/m`` in a table."""
    cols, vals = output.show(job, JOB_FIRST, JOB_TIMES)
    if "progress" in cols:
        i = cols.index("progress")
        vals = vals[:i] + (output.ProgressColumn(job["progress"]),) + vals[i + 1:]
    return cols, vals


class ListNode(PvcLister):
    """List nodes"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--daemon-state", metavar="STATE",
                            help="only nodes in this daemon state (run, dead, ...)")
        parser.add_argument("--coordinator-state", metavar="STATE",
                            help="only nodes in this coordinator state (primary, ...)")
        parser.add_argument("--domain-state", metavar="STATE",
                            help="only nodes in this domain state (ready, flushed, ...)")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        reply = self.client.get("/node", params={
            "daemon_state": parsed_args.daemon_state,
            "coordinator_state": parsed_args.coordinator_state,
            "domain_state": parsed_args.domain_state})
        return output.rows(output.items(reply, "nodes"), LIST_COLUMNS)


class ShowNode(PvcShowOne):
    """Show one node"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("node", metavar="NODE", help="node name")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        node = self.client.get(self.client.path("node", parsed_args.node))
        return output.show(node, SHOW_FIRST)


class FlushNode(PvcShowOne):
    """Drain a node: migrate its VMs away (--dry-run: show the plan only)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("node", metavar="NODE", help="node name")
        parser.add_argument("--dry-run", action="store_true",
                            help="show what the flush would do now, change nothing")
        add_wait(parser, "the flush job has ended")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        path = self.client.path("node", parsed_args.node, "flush")
        if parsed_args.dry_run:
            reply = self.client.post(path, params={"dry_run": True})
            if isinstance(reply, list):  # a bare plan
                reply = {"node": parsed_args.node, "plan": reply}
            return output.show(reply, ("node", "plan"))
        return show_job(job_act(self, path, None, parsed_args))


class ReadyNode(PvcShowOne):
    """Undrain a node: let VMs come back (cancels a running flush)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("node", metavar="NODE", help="node name")
        add_wait(parser, "the ready job has ended")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        path = self.client.path("node", parsed_args.node, "ready")
        return show_job(job_act(self, path, None, parsed_args))


class _CoordinatorMove(PvcShowOne):
    action = ""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("node", metavar="NODE", help="coordinator name")
        add_wait(parser, f"the node is {self.action}")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        path = self.client.path("node", parsed_args.node, self.action)
        reply = _act(self, path, None, parsed_args, f"node {parsed_args.node} to become "
                                                  f"{self.action}")
        if isinstance(reply, Mapping) and "progress" in reply and "kind" in reply:
            return show_job(reply)
        return output.show(reply, SHOW_FIRST)


class PrimaryNode(_CoordinatorMove):
    """Make a coordinator the primary (a planned move)"""

    action = "primary"


class SecondaryNode(_CoordinatorMove):
    """Make the primary coordinator step down"""

    action = "secondary"
