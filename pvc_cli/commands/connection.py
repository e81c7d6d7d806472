"""``pvc connection ...``: the named API connections in the user's client configuration.

API keys never appear on a command line: ``connection add`` reads the key from
``--key-file`` (``-``: standard input), else the environment variable
``PVC_API_KEY``, else a hidden prompt on a terminal. Listings never show keys.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from pvc_cli import connections, output
from pvc_cli.commands.base import PvcCommand, PvcLister, PvcShowOne, positive_int
from pvc_cli.errors import CliError, UsageError

COLUMNS = ("name", "address", "port", "tls", "verify", "key", "default", "source")


def describe(conn: connections.Connection, default: str | None) -> dict[str, Any]:
    """A connection as shown to the user: the key only as ``set`` or ``not set``."""
    return {"name": conn.name, "address": conn.address, "port": conn.port, "tls": conn.tls,
            "verify": conn.verify, "key": "set" if conn.key else "not set",
            "default": conn.name == default, "source": conn.source}


def read_key(app: Any, key_file: str | None) -> str:
    if key_file == "-":
        key = app.stdin.readline()
    elif key_file is not None:
        try:
            with open(key_file, encoding="utf-8") as f:
                key = f.read()
        except OSError as e:
            raise CliError(f"cannot read key file {key_file}: {e.strerror or e}") from None
    elif os.environ.get(connections.ENV_API_KEY):
        key = os.environ[connections.ENV_API_KEY]
    elif hasattr(app.stdin, "isatty") and app.stdin.isatty():
        import getpass

        key = getpass.getpass("API key: ", stream=app.stderr)
    else:
        raise CliError(f"no API key: use --key-file FILE, set {connections.ENV_API_KEY}, "
                       f"or run on a terminal to be prompted")
    key = str(key).strip()
    if not key:
        raise CliError("the API key is empty")
    return key


class _RefuseKey(argparse.Action):
    """``--key``: refused without echoing its value (secrets never on a command line)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        raise argparse.ArgumentError(self, "is not accepted: a secret on the command line "
                                           "leaks; use --key-file or PVC_API_KEY")


class AddConnection(PvcShowOne):
    """Add (or replace) a named connection to a PVC API"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("name", metavar="NAME", help="connection name")
        parser.add_argument("--address", required=True, metavar="ADDRESS",
                            help="API host name or IP address")
        parser.add_argument("--port", type=positive_int, default=connections.DEFAULT_PORT,
                            help=f"API port (default {connections.DEFAULT_PORT})")
        parser.add_argument("--key-file", metavar="FILE",
                            help=f"read the API key from FILE ('-': stdin; default: "
                                 f"${connections.ENV_API_KEY}, else a prompt)")
        parser.add_argument("--key", action=_RefuseKey, help=argparse.SUPPRESS)
        parser.add_argument("--tls", action="store_true", help="use HTTPS")
        verify = parser.add_mutually_exclusive_group()
        verify.add_argument("--no-verify", action="store_true",
                            help="do not verify the server's TLS certificate")
        verify.add_argument("--ca-file", metavar="FILE",
                            help="verify the server's certificate against this CA file")
        parser.add_argument("--default", action="store_true",
                            help="make it the default connection")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        if (parsed_args.no_verify or parsed_args.ca_file) and not parsed_args.tls:
            raise UsageError("--no-verify and --ca-file need --tls")
        key = read_key(self.app, parsed_args.key_file)
        verify: bool | str = parsed_args.ca_file or not parsed_args.no_verify
        conn = connections.add_connection(
            parsed_args.name, parsed_args.address, parsed_args.port, key,
            tls=parsed_args.tls, verify=verify, default=parsed_args.default)
        cfg = connections.load(conn.source)
        return output.show(describe(conn, cfg.default), COLUMNS)


class ListConnection(PvcLister):
    """List the configured connections (keys are never shown)"""

    def take_action(self, parsed_args: argparse.Namespace) -> Any:
        cfg = connections.load()
        objs = [describe(c, cfg.default) for _, c in sorted(cfg.connections.items())]
        return output.rows(objs, COLUMNS)


class RemoveConnection(PvcCommand):
    """Remove a named connection"""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("name", metavar="NAME", help="connection name")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        connections.remove_connection(parsed_args.name)
        return 0
