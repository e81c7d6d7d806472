"""The hook specifications: one module, documented, blocking ones marked."""

from __future__ import annotations

import inspect
import types

import pluggy

from pvc_core.hooks import specs

EXPECTED = {
    "pvc_node_started", "pvc_became_primary", "pvc_relinquishing_primary",
    "pvc_vm_about_to_start", "pvc_vm_stopped", "pvc_node_fenced",
    "pvc_collect_keepalive_stats", "pvc_collect_health_checks",
    "pvc_api_controllers",
}


def test_spec_names() -> None:
    assert set(specs.spec_names()) == EXPECTED


def test_every_spec_has_a_real_docstring() -> None:
    for name in specs.spec_names():
        doc = inspect.getdoc(getattr(specs, name)) or ""
        assert len(doc) > 60, name


def test_blocking_marks() -> None:
    assert specs.blocking_hooks() == EXPECTED - {"pvc_api_controllers"}


def test_specs_register_with_pluggy() -> None:
    pm = pluggy.PluginManager(specs.PROJECT)
    pm.add_hookspecs(specs)
    for name in EXPECTED:
        assert getattr(pm.hook, name).spec is not None


def test_introspection_of_another_module() -> None:
    mod = types.ModuleType("other_specs")

    @specs.hookspec
    @specs.may_block
    def pvc_other(node: str) -> None:
        """A hook."""

    @specs.hookspec
    def pvc_quick() -> None:
        """Another."""

    mod.pvc_other = pvc_other  # type: ignore[attr-defined]
    mod.pvc_quick = pvc_quick  # type: ignore[attr-defined]
    mod.helper = lambda: None  # type: ignore[attr-defined]
    assert specs.spec_names(mod) == ["pvc_other", "pvc_quick"]
    assert specs.blocking_hooks(mod) == {"pvc_other"}
