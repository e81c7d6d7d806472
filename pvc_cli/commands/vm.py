"""``pvc vm ...``: define, inspect, change the state of, migrate and remove VMs."""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from typing import Any

from pvc_cli import output
from pvc_cli.commands.base import (
    PvcCommand,
    PvcLister,
    PvcShowOne,
    act,
    add_wait,
    add_yes,
    confirm,
    non_negative_int,
    positive_int,
    read_file,
    split_list,
)
from pvc_cli.errors import UsageError

LIST_COLUMNS = ("name", "state", "node", "running", "memory_mib", "vcpus", "tags", "uuid")
SHOW_FIRST = ("name", "uuid", "state", "state_reason", "state_by", "node", "last_node",
              "running", "memory_mib", "vcpus", "wait_for", "meta")
META_FIELDS = ("node_limit", "selector", "autostart", "migration_method", "max_downtime_ms",
               "tags", "anti_affinity")
LOG_MAX_LINES = 10000
FOLLOW_LINES = 1000
FOLLOW_INTERVAL = 1.0


def show_vm(vm: Any) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    return output.show(vm, SHOW_FIRST)


def _tags(vm: Mapping[str, Any]) -> Any:
    meta = vm.get("meta")
    tags = meta.get("tags") if isinstance(meta, Mapping) else None
    return output.ListColumn(list(tags or []))


def add_vm(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("vm", metavar="VM", help="VM name or UUID")


def _optional_ms(text: str) -> int | str:
    return "" if text == "" else non_negative_int(text)


def add_meta_options(parser: argparse.ArgumentParser) -> None:
    """The metadata options of ``vm define`` and ``vm meta`` (an empty value unsets)."""
    g = parser.add_argument_group("metadata")
    g.add_argument("--node-limit", metavar="NODE[,NODE...]",
                   help="nodes the VM may run on ('': any node)")
    g.add_argument("--node-selector", metavar="SELECTOR",
                   help="how to choose a node: mem, memprov, load, vcpus, vms "
                        "('': the cluster default)")
    auto = g.add_mutually_exclusive_group()
    auto.add_argument("--autostart", dest="autostart", action="store_true", default=None,
                      help="start the VM again when its node comes back")
    auto.add_argument("--no-autostart", dest="autostart", action="store_false",
                      help="do not start it again automatically")
    g.add_argument("--migration-method", metavar="METHOD",
                   help="auto, live or shutdown")
    g.add_argument("--max-downtime", metavar="MS", type=_optional_ms,
                   help="live migration: the longest pause allowed, in milliseconds "
                        "('': the default)")
    g.add_argument("--tag", metavar="TAG", action="append", dest="tags",
                   help="a tag (repeatable; replaces the tags; --tag '' clears them)")
    g.add_argument("--anti-affinity", metavar="GROUP",
                   help="keep apart from other VMs of this group ('': none)")


def meta_body(args: argparse.Namespace) -> dict[str, Any]:
    """The metadata fields given on the command line, named as the API names them."""
    body: dict[str, Any] = {}
    if args.node_limit is not None:
        body["node_limit"] = split_list(args.node_limit)
    if args.node_selector is not None:
        body["selector"] = args.node_selector or None
    if args.autostart is not None:
        body["autostart"] = args.autostart
    if args.migration_method is not None:
        body["migration_method"] = args.migration_method
    if args.max_downtime is not None:
        body["max_downtime_ms"] = args.max_downtime if args.max_downtime != "" else None
    if args.tags is not None:
        body["tags"] = [t for t in args.tags if t]
    if args.anti_affinity is not None:
        body["anti_affinity"] = args.anti_affinity or None
    return body


class DefineVm(PvcShowOne):
    """Define a VM from a libvirt domain XML file"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("xmlfile", metavar="XMLFILE", help="domain XML file ('-': stdin)")
        add_meta_options(parser)
        parser.add_argument("--target", metavar="NODE", help="place it on this node")
        parser.add_argument("--start", action="store_true", help="start it once defined")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        body: dict[str, Any] = {"xml": read_file(parsed_args.xmlfile, "XML file")}
        body.update(meta_body(parsed_args))
        if parsed_args.target:
            body["target"] = parsed_args.target
        if parsed_args.start:
            body["start"] = True
        return show_vm(self.client.post("/vm", body))


class ListVm(PvcLister):
    """List VMs"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--node", metavar="NODE", help="only VMs on this node")
        parser.add_argument("--state", metavar="STATE", help="only VMs in this state")
        parser.add_argument("--tag", metavar="TAG", help="only VMs with this tag")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        reply = self.client.get("/vm", params={"node": parsed_args.node,
                                               "state": parsed_args.state,
                                               "tag": parsed_args.tag})
        return output.rows(output.items(reply, "vms"), LIST_COLUMNS, getters={"tags": _tags})


class ShowVm(PvcShowOne):
    """Show one VM"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_vm(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        return show_vm(self.client.get(self.client.path("vm", parsed_args.vm)))


class _StateVm(PvcShowOne):
    action = ""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_vm(parser)
        parser.add_argument("--force", action="store_true",
                            help="accept the change from any state (e.g. from fail)")
        add_wait(parser, f"the {self.action} is done")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        path = self.client.path("vm", parsed_args.vm, self.action)
        return show_vm(act(self, path, {"force": parsed_args.force}, parsed_args,
                           f"{self.action} of vm {parsed_args.vm}"))


class StartVm(_StateVm):
    """Start a VM"""

    action = "start"


class StopVm(_StateVm):
    """Stop a VM (hard power off)"""

    action = "stop"


class ShutdownVm(_StateVm):
    """Shut a VM down gracefully"""

    action = "shutdown"


class RestartVm(_StateVm):
    """Restart a VM"""

    action = "restart"


class DisableVm(_StateVm):
    """Disable a VM: stop it and keep it stopped"""

    action = "disable"


class MigrateVm(PvcShowOne):
    """Migrate a VM to another node (temporarily: unmigrate brings it back)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_vm(parser)
        parser.add_argument("--target", metavar="NODE", help="target node (default: chosen)")
        parser.add_argument("--force-live", action="store_true",
                            help="live migration only: fail rather than shut down")
        add_wait(parser, "the migration is done")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        body: dict[str, Any] = {"force_live": parsed_args.force_live}
        if parsed_args.target:
            body["target"] = parsed_args.target
        path = self.client.path("vm", parsed_args.vm, "migrate")
        return show_vm(act(self, path, body, parsed_args, f"migration of vm {parsed_args.vm}"))


class UnmigrateVm(PvcShowOne):
    """Migrate a VM back to its previous node"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_vm(parser)
        add_wait(parser, "the migration is done")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        path = self.client.path("vm", parsed_args.vm, "unmigrate")
        return show_vm(act(self, path, None, parsed_args, f"unmigration of vm {parsed_args.vm}"))


class MoveVm(PvcShowOne):
    """Move a VM to another node permanently"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_vm(parser)
        parser.add_argument("--target", metavar="NODE", help="target node (default: chosen)")
        add_wait(parser, "the move is done")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        body = {"target": parsed_args.target} if parsed_args.target else {}
        path = self.client.path("vm", parsed_args.vm, "move")
        return show_vm(act(self, path, body, parsed_args, f"move of vm {parsed_args.vm}"))


class MetaVm(PvcShowOne):
    """Show a VM's metadata, or set it with options"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_vm(parser)
        add_meta_options(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        body = meta_body(parsed_args)
        if not body:
            meta = self.client.get(self.client.path("vm", parsed_args.vm, "meta"))
        else:
            reply = self.client.post(self.client.path("vm", parsed_args.vm), body)
            meta = reply.get("meta", reply) if isinstance(reply, Mapping) else reply
        if isinstance(meta, Mapping) and isinstance(meta.get("meta"), Mapping):
            meta = meta["meta"]
        return output.show(meta, META_FIELDS)


class ModifyVm(PvcShowOne):
    """Replace a VM's domain XML (applies at its next start)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_vm(parser)
        parser.add_argument("xmlfile", metavar="XMLFILE", help="domain XML file ('-': stdin)")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        xml = read_file(parsed_args.xmlfile, "XML file")
        path = self.client.path("vm", parsed_args.vm)
        reply = self.client.put(path + "/xml", {"xml": xml})
        if not isinstance(reply, Mapping) or "name" not in reply:
            reply = self.client.get(path)
        return show_vm(reply)


class UndefineVm(PvcCommand):
    """Undefine a stopped VM (its disks stay)"""

    with_disks = False
    verb = "undefine"

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_vm(parser)
        add_yes(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        extra = " and delete its disks" if self.with_disks else ""
        confirm(self.app, f"{self.verb} vm {parsed_args.vm}{extra}", parsed_args.yes)
        params = {"disks": True} if self.with_disks else None
        self.client.delete(self.client.path("vm", parsed_args.vm), params=params)
        return 0


class RemoveVm(UndefineVm):
    """Undefine a stopped VM and delete its disks"""

    with_disks = True
    verb = "remove"


def new_lines(prev: list[str], cur: list[str]) -> list[str]:
    """The lines at the end of ``cur`` (a later tail of the log) that ``prev`` did not have.

    The API sends a tail without positions, so the old tail is matched against
    the new one: the latest place where ``cur`` continues ``prev``'s end.
    """
    for end in range(len(cur), 0, -1):
        overlap = min(end, len(prev))
        if overlap and cur[end - overlap:end] == prev[len(prev) - overlap:]:
            return cur[end:]
    return cur


class LogVm(PvcCommand):
    """Show a VM's console log (--follow: keep printing new lines until Ctrl-C)"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        add_vm(parser)
        parser.add_argument("--lines", "-n", type=positive_int, default=100, metavar="N",
                            help=f"how many of the last lines (1-{LOG_MAX_LINES}, default 100)")
        parser.add_argument("--follow", action="store_true",
                            help="keep polling and printing new lines until Ctrl-C")
        return parser

    def _fetch(self, vm: str, lines: int) -> list[str]:
        reply = self.client.get(self.client.path("vm", vm, "log"), params={"lines": lines})
        got = reply.get("lines") if isinstance(reply, Mapping) else reply
        return [str(line) for line in got] if isinstance(got, list) else []

    def _print(self, lines: list[str]) -> None:
        for line in lines:
            self.app.stdout.write(line.rstrip("\n") + "\n")
        self.app.stdout.flush()

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        if parsed_args.lines > LOG_MAX_LINES:
            raise UsageError(f"argument --lines: at most {LOG_MAX_LINES}")
        prev = self._fetch(parsed_args.vm, parsed_args.lines)
        self._print(prev)
        if not parsed_args.follow:
            return 0
        window = max(parsed_args.lines, FOLLOW_LINES)
        try:
            while True:
                time.sleep(FOLLOW_INTERVAL)
                cur = self._fetch(parsed_args.vm, window)
                self._print(new_lines(prev, cur))
                prev = cur
        except KeyboardInterrupt:
            return 0
