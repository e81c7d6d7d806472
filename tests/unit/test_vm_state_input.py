"""An unknown VM state is refused before the store is touched."""

from __future__ import annotations

from typing import Any, cast

import pytest

from pvc_core.errors import InvalidInput
from pvc_core.ops.vms import set_vm_state
from pvc_core.store import Store


class Untouchable:
    """A store stand-in that fails the test on any use: nothing may be read or written."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the store was used ({name})")


@pytest.mark.parametrize("state", ["sleep", "", "START", "migrate-live-ish"])
def test_unknown_state_is_invalid_input_and_changes_nothing(state: str) -> None:
    with pytest.raises(InvalidInput) as err:
        set_vm_state(cast(Store, Untouchable()), "vm1", state)
    assert err.value.field == "state" and err.value.status == 400
    assert f"unknown VM state {state!r}" in str(err.value)
    assert "must be one of: start, restart, shutdown, stop, disable, fail, provision" in str(
        err.value)


def test_migration_states_are_refused_before_the_store_is_touched() -> None:
    with pytest.raises(InvalidInput, match="use migrate, unmigrate or move"):
        set_vm_state(cast(Store, Untouchable()), "vm1", "migrate")
