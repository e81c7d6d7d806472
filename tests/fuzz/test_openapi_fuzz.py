"""Property-based fuzz of the API from its own OpenAPI document (schemathesis).

Every operation gets a fixed budget of generated requests (PVC_FUZZ_EXAMPLES,
default 25) with the admin key, against real daemons and ZooKeeper. Each
answer must not be a server error, must use a status the document declares
for the operation, must be JSON, and must match the declared schema.
"""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from pvc_api.server import ApiServer

EXAMPLES = int(os.environ.get("PVC_FUZZ_EXAMPLES", "25"))
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance]


def test_api_conforms_to_its_document(api_server: ApiServer, keys: dict[str, str]) -> None:
    assert api_server.ctx is not None
    api_server.ctx.max_wait = 2.0  # generated ?wait=true&timeout=N must not stall the run
    schema = schemathesis.openapi.from_url(f"{api_server.url}/api/v1/openapi.json")
    headers = {"X-Api-Key": keys["admin"]}
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=api_server.url, headers=headers, checks=CHECKS,
                                   timeout=30)

        try:
            fuzz()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure
            failures[operation.label] = str(exc)[:2000]
    assert operations >= 30
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
