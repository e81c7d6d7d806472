"""API keys: hashing, constant-time lookup, roles.

Keys are stored in the configuration as ``sha256:<hex>`` of the key; the key
itself is never stored. Every configured hash is compared (with
``hmac.compare_digest``) whatever matched earlier, so the time taken does not
depend on which key, or how much of one, was right.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from pvc_core.config.model import ApiKey
from pvc_core.errors import Forbidden, Unauthorized

ROLES = ("read-only", "admin")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Caller:
    """Who made a request: the key's name and role."""

    name: str
    role: str

    @property
    def admin(self) -> bool:
        return self.role == "admin"


def hash_key(key: str) -> str:
    """The stored form of ``key``: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh random API key (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


class KeyRing:
    """The configured keys; ``authenticate`` maps a presented key to a Caller."""

    def __init__(self, keys: tuple[ApiKey, ...] | list[ApiKey]) -> None:
        self._keys: list[tuple[bytes, Caller]] = []
        for key in keys:
            algo, _, digest = key.hash.partition(":")
            if algo != "sha256" or len(digest) != 64:
                raise ValueError(f"api.keys[{key.name}].hash: must be sha256:<64 hex digits>")
            self._keys.append((digest.lower().encode(), Caller(key.name, key.role)))

    def authenticate(self, presented: str | None) -> Caller:
        """Return the caller, or raise Unauthorized (no key, or no match)."""
        if not presented:
            raise Unauthorized("an API key is required (X-Api-Key header)")
        digest = hashlib.sha256(presented.encode()).hexdigest().encode()
        found: Caller | None = None
        for stored, caller in self._keys:
            if hmac.compare_digest(stored, digest) and found is None:
                found = caller
        if found is None:
            raise Unauthorized("the API key is not valid")
        return found

    @staticmethod
    def authorize(caller: Caller, method: str) -> None:
        """Raise Forbidden unless ``caller`` may use ``method``."""
        if method.upper() not in READ_METHODS and not caller.admin:
            raise Forbidden(f"key {caller.name!r} is read-only: {method} needs an admin key")
