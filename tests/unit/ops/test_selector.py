"""The cluster default selector's resolution (pure)."""

from __future__ import annotations

import pytest

from pvc_core.errors import InvalidInput
from pvc_core.ops.selector import FALLBACK_SELECTOR, resolve_selector
from pvc_core.store.records import SELECTORS


@pytest.mark.parametrize("selector", SELECTORS)
def test_a_set_selector_is_used(selector: str) -> None:
    assert resolve_selector(selector) == selector


@pytest.mark.parametrize("unset", [None, ""])
def test_an_unset_selector_falls_back_to_the_schema_default(unset: object) -> None:
    assert resolve_selector(unset) == FALLBACK_SELECTOR == "mem"


@pytest.mark.parametrize("bad", ["random", "MEM", 3, ["mem"]])
def test_a_bad_value_is_a_clear_error_naming_the_key(bad: object) -> None:
    with pytest.raises(InvalidInput, match="must be one of: mem, memprov") as err:
        resolve_selector(bad)
    assert err.value.field == "cluster.config.default_selector"
