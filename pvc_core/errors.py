"""One exception hierarchy for all of PVC.

Every error a user can cause or see derives from :class:`PVCError` and carries
an HTTP status, so the API translates it in one place and the CLI prints its
message as one line. Nothing else in PVC should raise a bare ``Exception``.
"""

from __future__ import annotations


class PVCError(Exception):
    """Base of every PVC error. ``status`` is the HTTP code the API returns."""

    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(PVCError):
    """Bad input from a user: a config key, a name, a request body (400)."""

    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class ConfigError(InvalidInput):
    """The configuration file is missing, unreadable or invalid."""


class Unauthorized(PVCError):
    """No API key, or one that matches no configured key (401)."""

    status = 401


class Forbidden(PVCError):
    """The API key's role does not allow this request (403)."""

    status = 403


class NotFound(PVCError):
    """The named object does not exist (404)."""

    status = 404


class Conflict(PVCError):
    """The request conflicts with current state: a name taken, a version moved (409)."""

    status = 409


class VersionConflict(Conflict):
    """A compare-and-set write lost: the znode changed since it was read."""


class AlreadyExists(Conflict):
    """An object with this key already exists."""


class LockTimeout(Conflict):
    """A lock or lease could not be taken before its deadline (409)."""


class LeaseHeld(Conflict):
    """A VM run-lease is held by another node."""


class Unavailable(PVCError):
    """A dependency is temporarily unavailable: ZooKeeper lost quorum, a timeout (503)."""

    status = 503


class StoreUnavailable(Unavailable):
    """A ZooKeeper operation did not complete within its timeout."""


class SchemaTooNew(PVCError):
    """The cluster's keyspace schema is newer than this code knows: refuse to act."""

    status = 503


class DriverError(PVCError):
    """A driver failed to load, validate, or perform an operation."""

    status = 500


class DriverLoadError(DriverError):
    """An enabled driver is missing or failed to import."""


class DriverTimeout(DriverError):
    """A driver operation exceeded its deadline."""


class NotSupported(DriverError):
    """The driver does not implement this optional capability."""

    status = 501
