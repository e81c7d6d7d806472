"""Fixtures for configuration tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pvc_core.config import Config, parse_config

from .stubs import RecordingLookup


@pytest.fixture
def lookup() -> RecordingLookup:
    return RecordingLookup()


@pytest.fixture
def parse(lookup: RecordingLookup) -> Callable[..., Config]:
    """Parse data with the stub lookup and node1 as this host's name."""

    def _parse(data: object, **kwargs: Any) -> Config:
        kwargs.setdefault("driver_lookup", lookup)
        kwargs.setdefault("hostname", "node1")
        return parse_config(data, **kwargs)

    return _parse
