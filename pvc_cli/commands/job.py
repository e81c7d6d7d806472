"""``pvc job ...``: long operations (flush, ready, migrations) and their progress."""

from __future__ import annotations

import argparse
from typing import Any

from pvc_cli import output
from pvc_cli.commands.base import PvcLister, PvcShowOne, add_yes, confirm
from pvc_cli.commands.node import JOB_TIMES, show_job

LIST_COLUMNS = ("id", "kind", "state", "params", "progress", "by", "created", "updated")


class ListJob(PvcLister):
    """List jobs"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--kind", metavar="KIND", help="only jobs of this kind (flush, ...)")
        parser.add_argument("--state", metavar="STATE",
                            help="only jobs in this state (queued, running, succeeded, ...)")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        reply = self.client.get("/job", params={"kind": parsed_args.kind,
                                                "state": parsed_args.state})
        return output.rows(output.items(reply, "jobs"), LIST_COLUMNS, JOB_TIMES,
                           getters={"progress": lambda j: output.ProgressColumn(
                               j.get("progress"))})


class ShowJob(PvcShowOne):
    """Show one job with its plan and progress"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("id", metavar="ID", help="job id")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        return show_job(self.client.get(self.client.path("job", parsed_args.id)))


class CancelJob(PvcShowOne):
    """Cancel a queued or running job"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("id", metavar="ID", help="job id")
        add_yes(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        confirm(self.app, f"cancel job {parsed_args.id}", parsed_args.yes)
        path = self.client.path("job", parsed_args.id)
        reply = self.client.post(path + "/cancel")
        if not isinstance(reply, dict):
            reply = self.client.get(path)
        return show_job(reply)
