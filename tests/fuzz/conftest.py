"""The fuzz suite gets its own cluster and API server (the fuzzer changes
things), with VMs in it so that listings have records to validate."""

from __future__ import annotations

import pytest

from pvc_core.ops.vms import define_vm
from pvc_local.cluster import LocalCluster
from tests.api.conftest import api_server, cluster, keys  # noqa: F401 - fixtures
from tests.cluster.conftest import domain_xml


@pytest.fixture(scope="package", autouse=True)
def seeded(cluster: LocalCluster) -> None:  # noqa: F811 - the imported fixture
    store = cluster.store()
    try:
        define_vm(store, domain_xml("fuzz-running"), meta={"tags": ["fuzz"]}, start=True)
        define_vm(store, domain_xml("fuzz-stopped"))
        store.faults.raise_fault("fuzz", "node1", "a fault to list")
    finally:
        store.close()
