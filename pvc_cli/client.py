"""A small JSON client of the PVC REST API (docs/api.md), over urllib (stdlib only).

Every request carries ``X-Api-Key``; the key is never printed, logged or put in
an error message. Requests go straight to the API: environment proxies are
ignored and redirects are refused (a redirect would carry the key elsewhere).
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from pvc_cli.connections import Connection
from pvc_cli.errors import ApiError

__all__ = ["ApiClient", "ApiError"]

API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT = 30.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None  # the 3xx becomes an HTTPError


def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    if verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return ssl.create_default_context()


def _query(params: dict[str, Any] | None) -> str:
    if not params:
        return ""
    items: list[tuple[str, str]] = []
    for name, value in params.items():
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            if v is None:
                continue
            items.append((name, ("true" if v else "false") if isinstance(v, bool) else str(v)))
    return "?" + urllib.parse.urlencode(items) if items else ""


def _reason(err: BaseException) -> str:
    """A short human reason for a transport failure."""
    reason: Any = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {reason.verify_message or reason}"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error: {reason.reason or reason}"
    if isinstance(reason, OSError) and reason.strerror:
        return str(reason.strerror)
    text = str(reason)
    return text or type(reason).__name__


class ApiClient:
    """JSON in, JSON out; an :class:`ApiError` for every failure."""

    def __init__(self, connection: Connection, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.connection = connection
        self.timeout = timeout
        self.base = connection.url
        self.last_status: int | None = None
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({}),
                                                      _NoRedirect()]
        if connection.tls:
            handlers.append(urllib.request.HTTPSHandler(context=_ssl_context(connection.verify)))
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:
        return f"ApiClient({self.base})"

    @staticmethod
    def path(*parts: str) -> str:
        """``/a/b/c`` with each part quoted (names may hold any character)."""
        return "".join("/" + urllib.parse.quote(str(p), safe="") for p in parts)

    def request(self, method: str, path: str, body: Any = None,
                params: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        """Send one request; the decoded JSON reply (None for an empty one)."""
        url = f"{self.base}{API_PREFIX}{path}{_query(params)}"
        data = None
        # No Accept header: the API answers JSON only, and the Pecan server in progress
        # answers 400 to "Accept: application/json" (reported to the lead).
        headers = {"User-Agent": "pvc-cli"}
        if self.connection.key:
            headers["X-Api-Key"] = self.connection.key
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self._opener.open(req, timeout=timeout or self.timeout) as resp:
                self.last_status = resp.status
                raw = resp.read()
        except urllib.error.HTTPError as e:
            self.last_status = e.code
            raise self._http_error(e) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            raise ApiError(None, f"cannot reach {self.base}: {_reason(e)}") from None
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(self.last_status, f"{method} {path}: the server did not answer "
                                             f"JSON (HTTP {self.last_status})") from None

    @staticmethod
    def _http_error(e: urllib.error.HTTPError) -> ApiError:
        try:
            raw = e.read()
        except (OSError, http.client.HTTPException):
            raw = b""
        finally:
            e.close()
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("message"), str):
            field = doc.get("field")
            return ApiError(e.code, doc["message"], field if isinstance(field, str) else None)
        return ApiError(e.code, f"HTTP {e.code} {e.reason}".rstrip())

    def get(self, path: str, body: Any = None, params: dict[str, Any] | None = None,
            timeout: float | None = None) -> Any:
        return self.request("GET", path, body, params, timeout)

    def post(self, path: str, body: Any = None, params: dict[str, Any] | None = None,
             timeout: float | None = None) -> Any:
        return self.request("POST", path, body, params, timeout)

    def put(self, path: str, body: Any = None, params: dict[str, Any] | None = None,
            timeout: float | None = None) -> Any:
        return self.request("PUT", path, body, params, timeout)

    def delete(self, path: str, body: Any = None, params: dict[str, Any] | None = None,
               timeout: float | None = None) -> Any:
        return self.request("DELETE", path, body, params, timeout)
