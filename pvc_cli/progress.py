"""``--wait``: following a long operation until it ends.

Two ways, chosen by what the operation returns:

- a **job** (``node flush``, ``node ready``): the client polls
  ``GET /job/{id}`` every 0.5 s and shows its ``progress`` (``done``/``total``)
  on stderr: a tqdm bar when stderr is a terminal, otherwise a plain line
  each time the progress changes (``job 1234 flush node1: 3/6``);
- anything else (VM state changes, migrations, primary moves): the client
  asks the API to wait (``?wait=true&timeout=N``, N at most 3600) and reads
  the ``done`` flag of the reply; there is no progress to show, so it prints
  one ``waiting for ...`` line.

Either way, stdout receives only the final object, and running out of time
is an error (exit 1) that says the operation goes on. tqdm is imported only
when a bar is shown.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from pvc_cli.errors import CliError

POLL_INTERVAL = 0.5
FINISHED = frozenset({"succeeded", "failed", "cancelled"})
API_MAX_TIMEOUT = 3600


def job_label(job: Mapping[str, Any], short: bool = False) -> str:
    """``job <id> <kind> <node>`` (``short``: the id's first 8 characters, for a bar)."""
    params = job.get("params") if isinstance(job.get("params"), Mapping) else {}
    job_id = str(job.get("id", "?"))
    parts = ["job", job_id[:8] if short else job_id, str(job.get("kind") or "")]
    target = (params.get("node") or params.get("vm")) if params else None
    if target:
        parts.append(str(target))
    return " ".join(p for p in parts if p)


def _counts(job: Mapping[str, Any]) -> tuple[int, int]:
    prog = job.get("progress")
    if not isinstance(prog, Mapping):
        return 0, 0
    try:
        return int(prog.get("done") or 0), int(prog.get("total") or 0)
    except (TypeError, ValueError):
        return 0, 0


def progress_line(job: Mapping[str, Any]) -> str:
    """``job 1234 flush node1: 3/6``, with the state once it is not ``running``."""
    done, total = _counts(job)
    state = str(job.get("state") or "")
    line = f"{job_label(job)}: {done}/{total}"
    return line if state == "running" else f"{line} {state}".rstrip()


def note(text: str, stream: TextIO | None = None) -> None:
    """One status line on stderr (never stdout: it carries the result)."""
    stream = stream or sys.stderr
    stream.write(text + "\n")
    stream.flush()


def wait_job(fetch: Callable[[str], Mapping[str, Any]], job: Mapping[str, Any],
             timeout: float | None, stream: TextIO | None = None,
             interval: float = POLL_INTERVAL, sleep: Callable[[float], None] | None = None,
             clock: Callable[[], float] | None = None) -> Mapping[str, Any]:
    """Poll ``fetch(job_id)`` until the job has finished; the last job document.

    ``timeout`` None or 0 waits for ever. Raises CliError when the time runs out.
    """
    stream = stream or sys.stderr
    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    bar = None
    if stream.isatty():
        from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]

        bar = tqdm(total=_counts(job)[1] or None, desc=job_label(job, short=True), file=stream,
                   unit="vm", leave=True, dynamic_ncols=True)
    deadline = clock() + timeout if timeout else None
    last = ""
    try:
        while True:
            state = str(job.get("state") or "")
            if bar is not None:
                done, total = _counts(job)
                if total and bar.total != total:
                    bar.total = total
                bar.n = done
                bar.set_postfix_str(state, refresh=False)
                bar.refresh()
            else:
                line = progress_line(job)
                if line != last:
                    note(line, stream)
                    last = line
            if state in FINISHED:
                return job
            if deadline is not None and clock() >= deadline:
                raise CliError(f"gave up waiting after {timeout:g} s: {job_label(job)} is "
                               f"{state or 'unfinished'} and goes on "
                               f"(see 'pvc job show {job.get('id')}')")
            sleep(interval)
            job = fetch(str(job["id"]))
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
            bar = None
        note(f"stopped waiting: {job_label(job)} goes on", stream)
        raise
    finally:
        if bar is not None:
            bar.close()


def api_timeout(timeout: float | None) -> int:
    """The ``timeout`` query parameter for an API-side wait (1 to 3600 s)."""
    if not timeout:
        return API_MAX_TIMEOUT
    return max(1, min(API_MAX_TIMEOUT, int(round(timeout))))
