"""What the pvc commands share: base classes, --wait, --yes, reading files.

Third-party commands may subclass :class:`PvcCommand`, :class:`PvcLister` or
:class:`PvcShowOne` to get ``self.client`` (the API client of the chosen
connection) and the same error behaviour.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from cliff.command import Command
from cliff.lister import Lister
from cliff.show import ShowOne

from pvc_cli import progress
from pvc_cli.errors import CliError

if TYPE_CHECKING:
    from pvc_cli.client import ApiClient

DEFAULT_WAIT_TIMEOUT = 600


class _PvcMixin:
    """``client``, and an error raised after the output was printed (a failed --wait)."""

    app: Any
    _after_output: CliError | None = None

    @property
    def client(self) -> ApiClient:
        return self.app.client  # type: ignore[no-any-return]

    def fail_after_output(self, err: CliError) -> None:
        """Show the result, then fail with ``err`` (exit 1)."""
        self._after_output = err

    def run(self, parsed_args: argparse.Namespace) -> int:
        result = super().run(parsed_args)  # type: ignore[misc]
        if self._after_output is not None:
            raise self._after_output
        return int(result or 0)


class PvcCommand(_PvcMixin, Command):
    """A command that prints nothing or free text."""


class PvcLister(_PvcMixin, Lister):
    """A command that lists objects (``-f``, ``-c``, ``--sort-column``)."""


class PvcShowOne(_PvcMixin, ShowOne):
    """A command that shows one object (``-f``, ``-c``)."""


# -- argument types and options ---------------------------------------------------


def int_at_least(minimum: int, reason: str) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``, else ``reason: <value>``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{reason}: {value}")
        return value
    return parse


positive_int = int_at_least(1, "must be at least 1")
non_negative_int = int_at_least(0, "must not be negative")


def add_wait(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--wait", action="store_true",
                        help=f"wait until {what} (progress on stderr)")
    parser.add_argument("--timeout", type=non_negative_int, default=DEFAULT_WAIT_TIMEOUT,
                        metavar="SECONDS",
                        help=f"with --wait: give up after this long (default "
                             f"{DEFAULT_WAIT_TIMEOUT}; 0: as long as allowed)")


def add_yes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yes", "-y", action="store_true",
                        help="do not ask for confirmation (needed without a terminal)")


def confirm(app: Any, action: str, yes: bool) -> None:
    """Ask ``Really <action>? [y/N]`` on a terminal; without one, refuse unless ``yes``."""
    if yes:
        return
    stdin = app.stdin
    if not (hasattr(stdin, "isatty") and stdin.isatty()):
        raise CliError(f"refusing to {action} without confirmation (no terminal): "
                       f"add --yes")
    app.stderr.write(f"Really {action}? [y/N] ")
    app.stderr.flush()
    answer = stdin.readline()
    if not answer.endswith("\n"):  # end of input: end the prompt's line
        app.stderr.write("\n")
    if answer.strip().lower() not in ("y", "yes"):
        raise CliError(f"not confirmed: did not {action}")


def read_file(path: str, what: str) -> str:
    """The text of ``path`` (``-``: standard input), or a CliError."""
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise CliError(f"cannot read {what} {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise CliError(f"cannot read {what} {path}: not UTF-8 text") from None


def split_list(text: str) -> list[str]:
    """``a,b, c`` -> ``["a", "b", "c"]``; ``""`` -> ``[]``."""
    return [part.strip() for part in text.split(",") if part.strip()]


# -- actions ------------------------------------------------------------------------


def act(cmd: _PvcMixin, path: str, body: dict[str, Any] | None, parsed_args: argparse.Namespace,
        what: str) -> Any:
    """POST an action; with --wait, let the API wait (``?wait=true``) and check ``done``."""
    if not getattr(parsed_args, "wait", False):
        return cmd.client.post(path, body)
    timeout = progress.api_timeout(parsed_args.timeout)
    progress.note(f"waiting for {what} (at most {timeout} s)", cmd.app.stderr)
    reply = cmd.client.post(path, body, params={"wait": True, "timeout": timeout},
                            timeout=timeout + 30)
    if isinstance(reply, Mapping) and reply.get("done") is False:
        cmd.fail_after_output(CliError(
            f"gave up waiting after {timeout} s: {what} is not done yet and goes on"))
    return reply


def job_act(cmd: _PvcMixin, path: str, body: dict[str, Any] | None,
            parsed_args: argparse.Namespace) -> Any:
    """POST an action that answers a job; with --wait, follow the job until it ends."""
    job = cmd.client.post(path, body)
    if not getattr(parsed_args, "wait", False):
        return job
    if not isinstance(job, Mapping) or "id" not in job:
        raise CliError("cannot wait: the API did not answer a job")
    client = cmd.client
    job = progress.wait_job(lambda jid: client.get(client.path("job", jid)), job,
                            parsed_args.timeout, stream=cmd.app.stderr)
    state = job.get("state")
    if state != "succeeded":
        result = job.get("result")
        detail = f": {result}" if isinstance(result, str) and result else ""
        if isinstance(result, Mapping) and result.get("error"):
            detail = f": {result['error']}"
        cmd.fail_after_output(CliError(f"{progress.job_label(job)} {state}{detail}"))
    return job
