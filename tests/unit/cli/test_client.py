"""ApiClient: errors, TLS, redirects, secrecy; the --wait progress display."""

from __future__ import annotations

import io
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pvc_cli import progress
from pvc_cli.client import ApiClient, ApiError
from pvc_cli.connections import Connection
from tests.unit.cli.conftest import KEY, FakeApi, Result

Run = Callable[..., Result]


def client_for(api: FakeApi, **kw: Any) -> ApiClient:
    return ApiClient(Connection("t", "127.0.0.1", api.port, KEY, **kw))


def test_json_round_trip_and_header(api: FakeApi) -> None:
    api.route("POST", "/vm/web1/start", (202, {"name": "web1", "done": False}))
    client = client_for(api)
    assert client.post("/vm/web1/start", {"force": True}, params={"wait": True, "timeout": 5,
                                                                  "skip": None}) == {
        "name": "web1", "done": False}
    assert client.last_status == 202
    seen = api.only()
    assert seen.headers["X-Api-Key"] == KEY and seen.body == {"force": True}
    assert seen.query == {"wait": ["true"], "timeout": ["5"]}


def test_empty_reply_is_none(api: FakeApi) -> None:
    api.route("DELETE", "/fault/f1", (204, None))
    assert client_for(api).delete("/fault/f1") is None


def test_error_body_becomes_api_error(api: FakeApi) -> None:
    api.route("GET", "/vm", (400, {"message": "must be one of: start, stop", "field": "state"}))
    with pytest.raises(ApiError) as info:
        client_for(api).get("/vm", params={"state": "bogus"})
    assert (info.value.status, info.value.message, info.value.field) == (
        400, "must be one of: start, stop", "state")
    assert str(info.value) == "must be one of: start, stop (field: state)"


def test_no_key_means_no_header(api: FakeApi) -> None:
    api.route("GET", "/cluster", (401, {"message": "no API key", "field": None}))
    client = ApiClient(Connection("t", "127.0.0.1", api.port, None))
    with pytest.raises(ApiError, match="no API key"):
        client.get("/cluster")
    assert "X-Api-Key" not in api.only().headers


def test_redirects_are_not_followed(api: FakeApi) -> None:
    api.route("GET", "/cluster", (302, {"message": "elsewhere", "field": None}))
    with pytest.raises(ApiError) as info:
        client_for(api).get("/cluster")
    assert info.value.status == 302
    assert len(api.requests) == 1


def test_invalid_json_is_an_error(api: FakeApi) -> None:
    api.route("GET", "/cluster", (200, b"{not json"))
    with pytest.raises(ApiError, match="did not answer JSON"):
        client_for(api).get("/cluster")


class _Silent(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # never answers in time
        threading.Event().wait(2)

    def log_message(self, *args: Any) -> None:
        pass


def test_timeout_is_cannot_reach() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Silent)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        client = ApiClient(Connection("t", "127.0.0.1", server.server_address[1], KEY),
                           timeout=0.2)
        with pytest.raises(ApiError) as info:
            client.get("/cluster")
        assert info.value.status is None
        assert str(info.value) == (f"cannot reach http://127.0.0.1:{server.server_address[1]}"
                                   f": timed out")
    finally:
        server.shutdown()
        server.server_close()


def test_secret_never_in_verbose_logs(api: FakeApi, pvc: Run) -> None:
    api.route("GET", "/vm", (200, []))
    r = pvc("-v", "-v", "-v", "vm", "list")
    assert r.code == 0, r.err
    assert KEY not in r.out + r.err


# -- TLS ----------------------------------------------------------------------------------


@pytest.fixture
def tls_api(api: FakeApi, tmp_path: Path) -> Iterator[tuple[FakeApi, Path]]:
    """The fake API, served over TLS with a fresh self-signed certificate for 127.0.0.1."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "api.crt", tmp_path / "api.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",  # noqa: S603
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    assert api.server is not None
    api.server.socket = ctx.wrap_socket(api.server.socket, server_side=True)
    yield api, cert


def test_tls_verification(tls_api: tuple[FakeApi, Path]) -> None:
    api, cert = tls_api
    api.route("GET", "/cluster", (200, {"name": "c1"}))
    with pytest.raises(ApiError) as info:
        client_for(api, tls=True).get("/cluster")  # not signed by a known CA
    assert info.value.status is None
    assert str(info.value).startswith(f"cannot reach https://127.0.0.1:{api.port}: "
                                      f"TLS certificate verification failed")
    assert client_for(api, tls=True, verify=str(cert)).get("/cluster") == {"name": "c1"}
    assert client_for(api, tls=True, verify=False).get("/cluster") == {"name": "c1"}
    assert len(api.requests) == 2  # the unverified server never saw the key


# -- progress -----------------------------------------------------------------------------


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


JOB = {"id": "j1", "kind": "flush", "params": {"node": "node1"}, "state": "queued",
       "progress": {"done": 0, "total": 0}}


def _jobs(*states: tuple[str, int, int]) -> Callable[[str], dict[str, Any]]:
    docs = iter([{**JOB, "state": s, "progress": {"done": d, "total": t}} for s, d, t in states])
    return lambda job_id: next(docs)


def test_progress_on_a_terminal_is_a_bar() -> None:
    stream = Tty()
    fetch = _jobs(("running", 1, 3), ("running", 2, 3), ("succeeded", 3, 3))
    final = progress.wait_job(fetch, JOB, 60, stream=stream, sleep=lambda s: None)
    assert final["state"] == "succeeded"
    text = stream.getvalue()
    assert "job j1 flush node1" in text and "3/3" in text and "\r" in text  # a redrawn bar


def test_progress_without_a_terminal_is_plain_lines() -> None:
    stream = io.StringIO()
    fetch = _jobs(("running", 1, 3), ("running", 1, 3), ("running", 2, 3), ("failed", 2, 3))
    final = progress.wait_job(fetch, JOB, 60, stream=stream, sleep=lambda s: None)
    assert final["state"] == "failed"
    assert stream.getvalue().splitlines() == [
        "job j1 flush node1: 0/0 queued", "job j1 flush node1: 1/3", "job j1 flush node1: 2/3",
        "job j1 flush node1: 2/3 failed"]


def test_ctrl_c_stops_waiting_and_says_the_job_goes_on() -> None:
    stream = io.StringIO()

    def fetch(job_id: str) -> dict[str, Any]:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        progress.wait_job(fetch, JOB, 60, stream=stream, sleep=lambda s: None)
    assert stream.getvalue().splitlines()[-1] == "stopped waiting: job j1 flush node1 goes on"


def test_api_timeout_is_bounded() -> None:
    assert progress.api_timeout(0) == 3600
    assert progress.api_timeout(7200) == 3600
    assert progress.api_timeout(90) == 90
