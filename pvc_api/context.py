"""What every request handler needs: the store, the cache, the keys, the audit log.

The context also owns the API server's :class:`~pvc_core.hooks.manager.HookManager`
(the hook plugins named in ``plugins``, loaded by :func:`pvc_api.app.make_app`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pecan

from pvc_api.auth import Caller, KeyRing
from pvc_core.config import Config
from pvc_core.hooks.manager import HookManager
from pvc_core.store import Store
from pvc_core.store.cache import ClusterCache


@dataclass
class ApiContext:
    """One API server's shared objects (no module globals: handlers reach it
    through :func:`current`)."""

    config: Config
    store: Store
    cache: ClusterCache
    keys: KeyRing
    audit: logging.Logger = field(default_factory=lambda: logging.getLogger("pvc.api.audit"))
    #: Per-server memo of serialised lists, keyed by (what, cache generation, filters).
    memo: dict[Any, bytes] = field(default_factory=dict)
    #: Seconds a ``?wait=true`` request may block at most.
    max_wait: float = 3600.0
    #: This server's hook plugins (no module-level manager).
    hooks: HookManager = field(
        default_factory=lambda: HookManager(logging.getLogger("pvc.api.hooks")))

    @property
    def cluster_name(self) -> str:
        return self.config.cluster.name


def current() -> ApiContext:
    """The context of the request being served."""
    ctx: ApiContext = pecan.request.pvc
    return ctx


def caller() -> Caller:
    """Who sent the request being served (set by the auth hook)."""
    who: Caller = pecan.request.pvc_caller
    return who


def by() -> str:
    """The ``by`` recorded with a change: ``api:<key name>``."""
    return f"api:{caller().name}"
