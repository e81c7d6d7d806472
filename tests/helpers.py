"""Helpers shared by tests (not fixtures)."""

from __future__ import annotations

from pvc_core.store.zk import ZkClient


def snapshot(client: ZkClient, path: str = "/") -> dict[str, bytes]:
    """Every znode under ``path`` with its data, to show that nothing changed."""
    out: dict[str, bytes] = {}
    stack = [path]
    while stack:
        p = stack.pop()
        data, _ = client.get(p)
        out[p] = data
        for kid in client.children(p):
            stack.append(f"{p.rstrip('/')}/{kid}")
    return out
