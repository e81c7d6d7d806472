"""``pvc``: the cliff application, its global options and its error reporting.

Commands are cliff command classes registered as entry points in the
``pvc.cli`` group (and ``pvc.cli.<object>`` groups), named
``<object>_<action>`` (cliff turns ``_`` into a space). A third-party package
adds commands by registering its own entry points there.

Every failure prints one line, ``Error: <message>``, to stderr and exits 1
(2 for a bad command line); ``--debug`` adds the traceback. Global options go
before the command (``pvc -c lab vm list``), so they never collide with the
command's own (``-c COLUMN``); ``--debug`` is also accepted after it.

Start-up stays cheap: the HTTP client, YAML, tqdm and TLS are imported only by
the commands that need them.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any

from cliff import _argparse
from cliff.app import App
from cliff.commandmanager import CommandManager
from cliff.help import HelpCommand, HelpExit

from pvc_cli.errors import EXIT_ERROR, EXIT_USAGE, CliError, UsageError

if TYPE_CHECKING:
    from cliff.command import Command

    from pvc_cli.client import ApiClient

GROUP = "pvc.cli"
DESCRIPTION = "PVC command-line client: manage a PVC cluster through its REST API."
EPILOG_HINT = "See 'pvc help <object> <action>' or 'pvc <object> <action> --help'."
EXIT_SIGINT = 130
EXIT_SIGPIPE = 141
# Global options that take a value (to find where the command starts).
_VALUE_OPTIONS = ("-c", "--connection", "--log-file")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pvc")
    except PackageNotFoundError:
        return "unknown"


def split_global(argv: list[str]) -> tuple[list[str], list[str]]:
    """``argv`` split into the global options and the rest (the command and its options)."""
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--" or tok == "-" or not tok.startswith("-"):
            break
        i += 2 if tok in _VALUE_OPTIONS else 1
    return argv[:i], argv[i:]


class _GlobalParser(_argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise UsageError(f"{message} (see 'pvc --help')")


def _one_line_usage_error(prog: str) -> Any:
    def error(message: str) -> None:
        raise UsageError(f"{message} (see '{prog} --help')")
    return error


class PvcHelp(HelpCommand):
    """print detailed help for another command"""

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        if not parsed_args.cmd:
            app: PVCApp = self.app  # type: ignore[assignment]
            app.print_app_help()
            return 0
        try:
            return int(super().take_action(parsed_args) or 0)
        except ValueError:
            raise UsageError(f"unknown command '{' '.join(parsed_args.cmd)}' "
                             f"(see 'pvc --help')") from None


class PVCCommandManager(CommandManager):
    """Commands of ``pvc.cli`` plus those of every ``pvc.cli.<object>`` group.

    cliff also reads ``pvc.cli.<object>_<action>`` groups as command hooks,
    so a command group's suffix has no underscore.
    """

    def _load_commands(self) -> None:
        super()._load_commands()
        singles = {name for name in self.commands if " " not in name}
        for group in self._subgroups():
            if group.rpartition(".")[2] not in singles:
                self.load_commands(group)

    def _subgroups(self) -> list[str]:
        prefix = f"{self.namespace}."
        groups: Any
        try:  # stevedore has just read every group into its cache
            from stevedore import _cache

            groups = _cache._c._get_data_for_path(None)["groups"]
        except Exception:  # a private API: fall back to the public one
            from importlib.metadata import entry_points

            groups = entry_points().groups
        return sorted(g for g in groups if g.startswith(prefix)
                      and g[len(prefix):] and not set(g[len(prefix):]) & {"_", "."})


class PVCApp(App):
    """The ``pvc`` application."""

    NAME = "pvc"
    LOG = logging.getLogger("pvc_cli")
    CONSOLE_MESSAGE_FORMAT = "%(levelname)s: %(message)s"

    def __init__(self, stdin: Any = None, stdout: Any = None, stderr: Any = None,
                 command_manager: CommandManager | None = None) -> None:
        super().__init__(description=DESCRIPTION, version=_version(),
                         command_manager=command_manager or PVCCommandManager(GROUP),
                         stdin=stdin, stdout=stdout, stderr=stderr, deferred_help=True)
        self._client: ApiClient | None = None
        self.command_manager.add_command("help", PvcHelp)

    def build_option_parser(self, description: str | None, version: str | None,
                            argparse_kwargs: dict[str, Any] | None = None,
                            ) -> argparse.ArgumentParser:
        parser = _GlobalParser(description=description, epilog=EPILOG_HINT, add_help=False,
                               prog=self.NAME, allow_abbrev=False, **(argparse_kwargs or {}))
        parser.add_argument("--version", action="version", version=f"pvc {version}")
        parser.add_argument(
            "-c", "--connection", metavar="NAME", default=None,
            help="connection to use (default: $PVC_CONNECTION, else the default connection, "
                 "else the only one)")
        verbose = parser.add_mutually_exclusive_group()
        verbose.add_argument("-v", "--verbose", action="count", dest="verbose_level",
                             default=self.DEFAULT_VERBOSE_LEVEL,
                             help="more log output (repeatable)")
        verbose.add_argument("-q", "--quiet", action="store_const", dest="verbose_level",
                             const=0, help="only errors")
        parser.add_argument("--log-file", default=None, help="also log to this file")
        parser.add_argument("-h", "--help", dest="deferred_help", action="store_true",
                            help="show this help (or a command's) and exit")
        parser.add_argument("--debug", default=False, action="store_true",
                            help="show tracebacks on errors")
        return parser

    def configure_logging(self) -> None:
        """Log to stderr (WARNING; -v INFO, -vv DEBUG; -q ERROR) and to --log-file."""
        root = logging.getLogger("")
        self._root_level = root.level
        root.setLevel(logging.DEBUG)
        handlers: list[logging.Handler] = []
        if self.options.log_file:
            log_file = logging.FileHandler(filename=self.options.log_file)
            log_file.setFormatter(logging.Formatter(self.LOG_FILE_MESSAGE_FORMAT))
            handlers.append(log_file)
        console = logging.StreamHandler(self.stderr)
        console.setLevel({0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO}.get(
            self.options.verbose_level, logging.DEBUG))
        console.setFormatter(logging.Formatter(self.CONSOLE_MESSAGE_FORMAT))
        handlers.append(console)
        for handler in handlers:
            root.addHandler(handler)
        self._log_handlers = handlers

    def _remove_log_handlers(self) -> None:
        root = logging.getLogger("")
        for handler in getattr(self, "_log_handlers", []):
            root.removeHandler(handler)
            handler.close()
        self._log_handlers = []
        if hasattr(self, "_root_level"):
            root.setLevel(self._root_level)

    # -- the client -------------------------------------------------------------

    @property
    def client(self) -> ApiClient:
        """The API client of the chosen connection (made on first use)."""
        if self._client is None:
            from pvc_cli import connections
            from pvc_cli.client import ApiClient

            self._client = ApiClient(connections.resolve(self.options.connection))
        return self._client

    # -- running ----------------------------------------------------------------

    def report(self, err: BaseException) -> int:
        """Print ``err`` as one ``Error:`` line (after its traceback with --debug)."""
        if getattr(getattr(self, "options", None), "debug", False):
            traceback.print_exception(err, file=self.stderr)
        message = str(err) or type(err).__name__
        self.stderr.write(f"Error: {' '.join(message.split())}\n")
        self.stderr.flush()
        return err.exit_code if isinstance(err, CliError) else EXIT_ERROR

    def command_descriptions(self) -> list[tuple[str, str]]:
        """``(name, one-line description)`` of every command, sorted."""
        out = []
        for name, ep in sorted(self.command_manager):
            try:
                factory = ep.load()
                text = getattr(factory, "_description", "") or inspect.getdoc(factory) or ""
                line = text.strip().split("\n")[0].rstrip(".")
                if getattr(factory, "deprecated", False):
                    continue
            except Exception as e:  # a broken plugin must not break the help
                line = f"(cannot load: {e})"
            out.append((name, line))
        return out

    def print_app_help(self) -> None:
        self.parser.print_help(self.stdout)
        commands = self.command_descriptions()
        width = max((len(name) for name, _ in commands), default=0)
        self.stdout.write("\nCommands:\n")
        for name, line in commands:
            self.stdout.write(f"  {name:<{width}}  {line}\n")
        self.stdout.flush()

    def run(self, argv: list[str]) -> int:
        head, tail = split_global(list(argv))
        if "--debug" in tail[:tail.index("--") if "--" in tail else len(tail)]:
            tail.remove("--debug")
            head.append("--debug")
        try:
            self.options, rest = self.parser.parse_known_args(head)
            if rest:
                raise UsageError(f"unknown global option {rest[0]!r}: global options go "
                                 "before the command, the command's options after it")
        except CliError as err:
            if not hasattr(self, "options"):
                self.options = argparse.Namespace(debug="--debug" in head)
            return self.report(err)
        self.configure_logging()
        try:
            self.interactive_mode = False
            if self.options.deferred_help:
                if not tail:
                    self.print_app_help()
                    return 0
                tail.insert(0, "help")
            if not tail:
                self.print_app_help()
                return EXIT_USAGE
            self.initialize_app(tail)
            return self.run_subcommand(tail)
        except BrokenPipeError:
            return EXIT_SIGPIPE
        except KeyboardInterrupt:
            return EXIT_SIGINT
        finally:
            self._remove_log_handlers()

    def _unknown_command(self, argv: list[str]) -> UsageError:
        import difflib

        words = [w for w in argv if not w.startswith("-")][:2]
        names = sorted(name for name, _ in self.command_manager)
        typed = " ".join(words)
        actions = [n.split(" ", 1)[1] for n in names if n.startswith(f"{words[0]} ")]
        if len(words) == 1 and actions:
            return UsageError(f"'{typed}' needs an action: {', '.join(actions)} "
                              f"(see 'pvc help {typed}')")
        close = difflib.get_close_matches(typed, names, n=3, cutoff=0.6)
        hint = f"; did you mean: {', '.join(close)}?" if close else ""
        return UsageError(f"unknown command '{typed}'{hint} (see 'pvc --help')")

    def run_subcommand(self, argv: list[str]) -> int:
        try:
            factory, cmd_name, sub_argv = self.command_manager.find_command(argv)
        except ValueError:
            return self.report(self._unknown_command(argv))
        kwargs = {}
        if "cmd_name" in inspect.getfullargspec(factory.__init__).args:
            kwargs["cmd_name"] = cmd_name
        cmd: Command = factory(self, self.options, **kwargs)
        result = EXIT_ERROR
        err: BaseException | None = None
        try:
            self.prepare_to_run_command(cmd)
            prog = f"{self.NAME} {cmd_name}"
            parser = cmd.get_parser(prog)
            parser.error = _one_line_usage_error(prog)  # type: ignore[method-assign]
            parser.allow_abbrev = False  # --key must never mean --key-file
            parsed_args = parser.parse_args(sub_argv)
            result = cmd.run(parsed_args) or 0
        except HelpExit:
            result = 0
        except (BrokenPipeError, KeyboardInterrupt) as e:
            err = e
            raise
        except Exception as e:  # every failure becomes one line
            err = e
            result = self.report(e)
        finally:
            try:
                self.clean_up(cmd, result, err)
            except Exception as e:
                self.report(e)
        return result


def main(argv: list[str] | None = None) -> int:
    """Run ``pvc`` with ``argv`` (default: the process arguments); the exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        code = PVCApp().run(args)
    except SystemExit as e:  # --help, --version
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_ERROR)
    except BrokenPipeError:
        code = EXIT_SIGPIPE
    if code == EXIT_SIGPIPE and argv is None:
        # The reader went away: do not let the interpreter complain when it flushes stdout.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return code


if __name__ == "__main__":
    sys.exit(main())
