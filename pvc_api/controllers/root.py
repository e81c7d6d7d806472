"""The URL tree: ``/api/v1/<resource>``, ``/api/v1/openapi.json`` and ``/metrics``."""

from __future__ import annotations

from typing import Any

import pecan
from webob import Response

from pvc_api.context import current
from pvc_api.operation import encode_json, json_response, operation
from pvc_api.schemas import cluster as cs
from pvc_core import __version__


class V1Controller:
    """``/api/v1``: the resources, each an attribute (plugins add theirs)."""

    def __init__(self, resources: dict[str, object]) -> None:
        self._resources = dict(resources)
        self._openapi: bytes | None = None
        for name, controller in resources.items():
            setattr(self, name, controller)

    @operation("GET", "/", summary="API version and cluster name", tag="cluster",
               responses={200: cs.ROOT})
    def index(self) -> dict[str, Any]:
        return {"api": "v1", "version": __version__, "cluster": current().cluster_name}

    @pecan.expose(route="openapi.json")
    def openapi(self, *args: Any, **kwargs: Any) -> Response:
        """The OpenAPI document (no key needed)."""
        if args:
            pecan.abort(404)
        if self._openapi is None:
            from pvc_api.openapi import document

            self._openapi = encode_json(document(
                {"": self, **self._resources}, __version__, current().cluster_name))
        return json_response(self._openapi, 200)


class ApiController:
    def __init__(self, v1: V1Controller) -> None:
        self.v1 = v1


class RootController:
    """``/``: the API and the metrics."""

    def __init__(self, resources: dict[str, object]) -> None:
        self.api = ApiController(V1Controller(resources))

    @pecan.expose()
    def metrics(self, *args: Any, **kwargs: Any) -> Response:
        """Prometheus text format (authenticated unless api.metrics_auth is false)."""
        from pvc_api import metrics

        if args:
            pecan.abort(404)
        ctx = current()
        body = metrics.render(metrics.registry(ctx))
        return Response(body=body, status=200, content_type="text/plain", charset="utf-8",
                        headerlist=[("Content-Type", metrics.CONTENT_TYPE)])
