"""Shared set-up for the API and CLI benchmarks: a private ZooKeeper, VMs
written straight into the keyspace, and an API server in this process."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from _cluster import new_root, zookeeper

from pvc_api.auth import hash_key, new_key
from pvc_api.server import ApiServer
from pvc_core.config import parse_config
from pvc_core.keyspace import Keyspace
from pvc_core.states import VMState
from pvc_core.store import Store
from pvc_core.store.codec import encode
from pvc_core.store.records import Placement, VmMeta, VmStateRecord
from pvc_core.store.zk import Op, ZkClient

BATCH = 200  # VMs per transaction while populating


@dataclass
class BenchApi:
    """What a benchmark gets: the store, the (not yet started) server, its
    read-only key, and a temporary directory."""

    store: Store
    server: ApiServer
    key: str
    tmp: Path

    def populate(self, count: int, start: int) -> None:
        """Write ``count`` VMs (as VmRepository.define would), BATCH per transaction."""
        ks = self.store.ks
        ops: list[Op] = []
        for i in range(start, start + count):
            u, name = str(uuid.uuid4()), f"bench{i:05d}"
            meta = {"name": name, "meta": VmMeta(tags=("b",)).to_dict(),
                    "resources": {"memory_mib": 512, "vcpus": 1}}
            ops += [Op.create(ks.vm(u), encode(meta)),
                    Op.create(ks.vm_state(u), encode(VmStateRecord(VMState.STOP).to_dict())),
                    Op.create(ks.vm_placement(u), encode(Placement("node1").to_dict())),
                    Op.create(ks.vm_xml(u), b"<domain/>"),
                    Op.create(ks.vm_name(name), u.encode())]
            if len(ops) >= BATCH * 5:
                self.store.zk.transaction(ops)
                ops = []
        if ops:
            self.store.zk.transaction(ops)

    def serve(self, vms: int) -> None:
        """Start the server (once) and wait until its cache holds ``vms`` VMs."""
        if self.server.cache is None:
            self.server.start()
        cache = self.server.cache
        assert cache is not None
        cache.wait_for(lambda: len(cache.vms()) == vms, 120)


@contextmanager
def api_cluster(zk_hosts: str | None) -> Iterator[BenchApi]:
    """A private ZooKeeper (unless ``zk_hosts``), a fresh root, an API server
    configured with one read-only key; everything removed afterwards."""
    key = new_key()
    with tempfile.TemporaryDirectory(prefix="pvc-bench-") as tmp, \
            zookeeper(Path(tmp), zk_hosts) as hosts:
        root = new_root()
        zk = ZkClient(hosts, op_timeout=60)
        zk.start()
        store = Store(zk, Keyspace(root))
        store.schema.initialise()
        config = parse_config({
            "cluster": {"name": "bench", "nodes": ["node1"], "coordinators": ["node1"]},
            "node": {"name": "node1"},
            "zookeeper": {"hosts": hosts.split(","), "root": root},
            "hypervisor": {"enabled": True, "driver": "fake"},
            "api": {"keys": [{"name": "bench", "hash": hash_key(key), "role": "read-only"}]},
        })
        server = ApiServer(config, port=0, threads=4)
        try:
            yield BenchApi(store, server, key, Path(tmp))
        finally:
            server.stop()
            zk.delete_tree(root)
            zk.stop()
