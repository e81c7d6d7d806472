"""A minimal HTTP client for the API tests (stdlib only)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]
    raw: bytes


class Http:
    """Calls one API server with a given key (or none)."""

    def __init__(self, base: str, key: str | None = None,
                 context: ssl.SSLContext | None = None) -> None:
        self.base = base.rstrip("/")
        self.key = key
        self.context = context

    def with_key(self, key: str | None) -> Http:
        return Http(self.base, key, self.context)

    def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
             raw: bytes | None = None, timeout: float = 90.0) -> Answer:
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(
                {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items()})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.key is not None:
            request.add_header("X-Api-Key", self.key)
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self.context) as r:
                status, payload, headers = r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as exc:
            status, payload, headers = exc.code, exc.read(), dict(exc.headers)
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = payload.decode(errors="replace")
        return Answer(status, parsed, headers, payload)

    def get(self, path: str, **params: Any) -> Answer:
        return self.call("GET", path, params=params or None)

    def post(self, path: str, body: Any = None, **params: Any) -> Answer:
        return self.call("POST", path, body, params or None)

    def put(self, path: str, body: Any = None, **params: Any) -> Answer:
        return self.call("PUT", path, body, params or None)

    def delete(self, path: str, **params: Any) -> Answer:
        return self.call("DELETE", path, params=params or None)
