"""Fixtures of the pvc client tests: a private connections file and a canned HTTP API."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from pvc_cli import connections
from pvc_cli.app import main
from tests.unit.fake_dist import fake_dist  # noqa: F401  (a fixture)

KEY = "s3cret-key-0123456789"


@dataclass
class Seen:
    """One request the fake API received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeApi:
    """A ThreadingHTTPServer answering canned JSON per ``(method, path)``.

    A route's answer is ``(status, body)``; a list of answers is served in
    order, the last one repeating. Unknown routes answer the API's 404.
    """

    server: ThreadingHTTPServer | None = None
    routes: dict[tuple[str, str], Any] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def route(self, method: str, path: str, *answers: tuple[int, Any]) -> None:
        self.routes[(method, "/api/v1" + path)] = list(answers)

    def answer(self, method: str, path: str) -> tuple[int, Any]:
        answers = self.routes.get((method, path))
        if not answers:
            return 404, {"message": f"no route {method} {path}", "field": None}
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def only(self) -> Seen:
        assert len(self.requests) == 1, self.requests
        return self.requests[0]


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            api.requests.append(Seen(self.command, parts.path, parse_qs(parts.query),
                                     dict(self.headers.items()), body))
            status, reply = api.answer(self.command, parts.path)
            data = reply if isinstance(reply, bytes) else (
                b"" if reply is None else json.dumps(reply).encode())
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

    return Handler


@pytest.fixture
def client_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private connections file (not yet created); no server config, no env choices."""
    path = tmp_path / "home" / "pvc" / "client.yaml"
    monkeypatch.setenv(connections.ENV_CLIENT_CONFIG, str(path))
    monkeypatch.setenv(connections.ENV_SERVER_CONFIG, str(tmp_path / "no-such-pvc.yaml"))
    monkeypatch.delenv(connections.ENV_CONNECTION, raising=False)
    monkeypatch.delenv(connections.ENV_API_KEY, raising=False)
    return path


@pytest.fixture
def api(client_config: Path) -> Iterator[FakeApi]:
    """A running fake API, registered as the connection ``test`` (the only one)."""
    fake = FakeApi()
    server = fake.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    connections.add_connection("test", "127.0.0.1", fake.port, KEY)
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(5)


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


@pytest.fixture
def pvc(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """``pvc(*argv)``: run the client in-process; its exit code, stdout and stderr."""
    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)
    return run
