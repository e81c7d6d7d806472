"""The cluster's default placement selector: one place to read it, one to seed it.

DESIGN §6: "the cluster sets the default selector". It lives in the cluster
config znode (``{root}/cluster/config``, key ``default_selector``), so every
reader (a flush's dry run in the API, the flush job in a node daemon, VM
placement) sees the same value. A node daemon seeds it at start from its own
``migration.default_selector`` when the cluster has none yet (the first
daemon of a new cluster, or a cluster from before the key existed); after
that the cluster's value wins over any node's configuration.
"""

from __future__ import annotations

from pvc_core.errors import InvalidInput
from pvc_core.store import Store
from pvc_core.store.codec import update_json
from pvc_core.store.records import SELECTORS

#: The cluster config key holding the default selector.
CONFIG_KEY = "default_selector"
#: The selector used while the cluster config names none (the config schema's default).
FALLBACK_SELECTOR = "mem"


def resolve_selector(value: object) -> str:
    """The selector a cluster config value names (pure).

    None or "" mean "not set" (:data:`FALLBACK_SELECTOR`); anything that is
    not a selector is InvalidInput naming the config key.
    """
    if value is None or value == "":
        return FALLBACK_SELECTOR
    if not isinstance(value, str) or value not in SELECTORS:
        raise InvalidInput(f"must be one of: {', '.join(SELECTORS)}, got {value!r}",
                           f"cluster.config.{CONFIG_KEY}")
    return value


def default_selector(store: Store) -> str:
    """The cluster's default selector, as every flush, dry run and placement uses it."""
    return resolve_selector(store.cluster.get_config().value.get(CONFIG_KEY))


def seed_default_selector(store: Store, selector: str) -> str:
    """Make ``selector`` the cluster default unless the cluster already has one.

    Compare-and-set, so two daemons seeding at once leave exactly one value;
    nothing is written when a value is set. Returns the cluster's default
    afterwards. InvalidInput (nothing written) when ``selector`` is not one.
    """
    wanted = resolve_selector(selector)
    current = store.cluster.get_config().value.get(CONFIG_KEY)
    if current not in (None, ""):
        return resolve_selector(current)

    def seed(config: object) -> dict[str, object]:
        merged = dict(config) if isinstance(config, dict) else {}
        if merged.get(CONFIG_KEY) in (None, ""):
            merged[CONFIG_KEY] = wanted
        return merged

    written = update_json(store.zk, store.ks.cluster_config(), seed).value
    return resolve_selector(written.get(CONFIG_KEY))
